package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/store"
)

func TestCreateThenCheck(t *testing.T) {
	f := newFixture(t, true)
	k, clear, err := f.mgr.Create(t.Context(), Spec{Name: "orders team", AllowedRoutes: []string{"orders", "billing"}})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if !strings.HasPrefix(clear, GeneratedPrefix) || len(clear) != 46 {
		t.Errorf("Create() key = %d chars starting %q, want 46 starting %q", len(clear), clear[:3], GeneratedPrefix)
	}
	if !validID(k.ID) {
		t.Errorf("Create() ID = %q, want 12 lowercase hex characters", k.ID)
	}
	if want := clear[:7]; k.Prefix != want {
		t.Errorf("Create() Prefix = %q, want %q", k.Prefix, want)
	}
	if sum := sha256.Sum256([]byte(clear)); k.Hash != hex.EncodeToString(sum[:]) || k.HashAlg != HashSHA256 {
		t.Errorf("Create() Hash, HashAlg = %s, %s; want the SHA-256 of the key, %s", k.Hash, k.HashAlg, HashSHA256)
	}
	if !k.CreatedAt.Equal(t0) {
		t.Errorf("Create() CreatedAt = %v, want %v (the injected clock)", k.CreatedAt, t0)
	}
	got, err := f.mgr.Get(t.Context(), k.ID)
	if err != nil || got.Hash != k.Hash || got.Name != k.Name || got.Revision != k.Revision {
		t.Errorf("Get(%s) = %+v, %v; want %+v", k.ID, got, err, k)
	}

	tweaked := clear[:len(clear)-1] + string(clear[len(clear)-1]^1)
	tests := []struct {
		name      string
		presented string
		want      Result
	}{
		{name: "the key", presented: clear, want: Valid},
		{name: "last character changed", presented: tweaked, want: Unknown},
		{name: "prefix only", presented: k.Prefix, want: Unknown},
		{name: "key with a trailing space", presented: clear + " ", want: Unknown},
		{name: "empty", presented: "", want: Unknown},
		{name: "too long", presented: strings.Repeat("a", MaxKeyLen+1), want: Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, got := f.idx.Check(tt.presented, t0)
			if got != tt.want {
				t.Fatalf("Check() = %v, want %v", got, tt.want)
			}
			if got == Unknown {
				if e != nil {
					t.Errorf("Check() entry = %+v, want nil for Unknown", e)
				}
				return
			}
			if e.ID != k.ID || !e.Routes.Allows("orders") || e.Routes.Allows("admin") {
				t.Errorf("Check() entry ID = %s, routes = %v; want %s allowing orders and billing only", e.ID, e.Routes.names, k.ID)
			}
		})
	}
}

// TestRevokeAppliesBeforeRevokeReturns runs no watch at all: only the
// Manager's call to its applier can make the revocation visible, so the
// first Check after Revoke returns proves there is no delay.
func TestRevokeAppliesBeforeRevokeReturns(t *testing.T) {
	f := newFixture(t, true)
	k, clear, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if _, got := f.idx.Check(clear, t0); got != Valid {
		t.Fatalf("Check() before Revoke = %v, want %v", got, Valid)
	}
	revoked, err := f.mgr.Revoke(t.Context(), k.ID)
	if err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	returned := time.Now()
	e, got := f.idx.Check(clear, t0)
	delay := time.Since(returned)
	if got != Revoked || e == nil || e.ID != k.ID {
		t.Fatalf("first Check() after Revoke returned = %v, %+v; want %v for key %s", got, e, Revoked, k.ID)
	}
	t.Logf("the first Check, %v after Revoke returned, saw the revocation", delay)
	if !revoked.Revoked || !revoked.RevokedAt.Equal(t0) {
		t.Errorf("Revoke() = revoked %t at %v, want true at %v", revoked.Revoked, revoked.RevokedAt, t0)
	}

	// The record stays for audit, and a second revocation writes nothing.
	again, err := f.mgr.Revoke(t.Context(), k.ID)
	if err != nil || again.Revision != revoked.Revision || !again.Revoked {
		t.Errorf("Revoke() again = revision %d, revoked %t, %v; want revision %d unchanged", again.Revision, again.Revoked, err, revoked.Revision)
	}
}

func TestExpiry(t *testing.T) {
	f := newFixture(t, true)
	expires := t0.Add(time.Hour)
	_, clear, err := f.mgr.Create(t.Context(), Spec{ExpiresAt: expires})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	tests := []struct {
		now  time.Time
		want Result
	}{
		{now: t0, want: Valid},
		{now: expires.Add(-time.Nanosecond), want: Valid},
		{now: expires, want: Expired},
		{now: expires.Add(24 * time.Hour), want: Expired},
	}
	for _, tt := range tests {
		t.Run(tt.now.Format(time.RFC3339Nano), func(t *testing.T) {
			if _, got := f.idx.Check(clear, tt.now); got != tt.want {
				t.Errorf("Check(now %v) = %v, want %v", tt.now, got, tt.want)
			}
		})
	}

	if _, _, err := f.mgr.Create(t.Context(), Spec{ExpiresAt: t0}); !isValidation(err) || !strings.HasPrefix(err.Error(), "expires_at: ") {
		t.Errorf("Create(ExpiresAt = now) error = %v, want a ValidationError on expires_at", err)
	}
}

func TestImport(t *testing.T) {
	f := newFixture(t, true)
	k, err := f.mgr.Import(t.Context(), Spec{Name: "bootstrap"}, "testkey")
	if err != nil {
		t.Fatalf("Import() error = %v", err)
	}
	sha := sha256.Sum256([]byte("testkey"))
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte("testkey"))
	if k.HashAlg != HashHMACSHA256 || k.Hash == hex.EncodeToString(sha[:]) || k.Hash != hex.EncodeToString(mac.Sum(nil)) {
		t.Errorf("Import() HashAlg, Hash = %s, %s; want %s of the secret and the value, not its plain SHA-256", k.HashAlg, k.Hash, HashHMACSHA256)
	}
	if k.Prefix != "" {
		t.Errorf("Import() of a 7-character value: Prefix = %q, want none", k.Prefix)
	}
	stored, err := f.mgr.Get(t.Context(), k.ID)
	if err != nil || stored.Hash != k.Hash || stored.HashAlg != HashHMACSHA256 {
		t.Errorf("Get() = %s %s, %v; want the stored record hashed with %s", stored.HashAlg, stored.Hash, err, HashHMACSHA256)
	}
	if e, got := f.idx.Check("testkey", t0); got != Valid || e.ID != k.ID {
		t.Errorf("Check(imported) = %v, want %v", got, Valid)
	}
	long, err := f.mgr.Import(t.Context(), Spec{}, "bootstrap-key-1")
	if err != nil || long.Prefix != "" {
		t.Errorf("Import() of a 15-character value: Prefix = %q, %v; want none (no part of a chosen key is shown)", long.Prefix, err)
	}

	// An Index with another secret, or none, cannot check imported keys;
	// generated keys do not depend on it.
	_, generated, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	for _, secret := range [][]byte{nil, []byte("another secret of 32 bytes.....!")} {
		x, err := NewIndex(f.st, Config{Secret: secret}, nil)
		if err != nil {
			t.Fatalf("NewIndex() error = %v", err)
		}
		if _, err := x.load(t.Context()); err != nil {
			t.Fatalf("load() error = %v", err)
		}
		if _, got := x.Check("testkey", t0); got != Unknown {
			t.Errorf("Check(imported) with secret %q = %v, want %v", secret, got, Unknown)
		}
		if _, got := x.Check(generated, t0); got != Valid {
			t.Errorf("Check(generated) with secret %q = %v, want %v", secret, got, Valid)
		}
	}

	noSecret, err := NewManager(f.st, nil, Config{}, nil)
	if err != nil {
		t.Fatalf("NewManager() error = %v", err)
	}
	if _, err := noSecret.Import(t.Context(), Spec{}, "otherkey"); !errors.Is(err, ErrNoSecret) {
		t.Errorf("Import() without a secret error = %v, want ErrNoSecret", err)
	}
}

func TestImportRejectsDuplicates(t *testing.T) {
	f := newFixture(t, true)
	first, err := f.mgr.Import(t.Context(), Spec{}, "testkey")
	if err != nil {
		t.Fatalf("Import() error = %v", err)
	}
	_, generated, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if _, err := f.mgr.Revoke(t.Context(), first.ID); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	for _, value := range []string{"testkey", generated} {
		_, err := f.mgr.Import(t.Context(), Spec{}, value)
		if !errors.Is(err, ErrDuplicate) {
			t.Errorf("Import() of a stored value error = %v, want ErrDuplicate", err)
		}
		if err != nil && strings.Contains(err.Error(), value) {
			t.Errorf("Import() error %q contains the key value", err)
		}
	}
	if keys, err := f.mgr.List(t.Context()); err != nil || len(keys) != 2 {
		t.Errorf("List() = %d keys, %v; want the 2 first ones only", len(keys), err)
	}
}

func TestImportRejectsBadValues(t *testing.T) {
	f := newFixture(t, true)
	tests := []struct {
		name    string
		value   string
		wantMsg string
	}{
		{name: "too short", value: "abc12", wantMsg: "key: is 5 characters long; at least 6 are required"},
		{name: "space", value: "test key", wantMsg: "key: has a space, control or non-ASCII character at byte 4; use visible ASCII characters only"},
		{name: "tab", value: "testkey\t", wantMsg: "key: has a space, control or non-ASCII character at byte 7; use visible ASCII characters only"},
		{name: "newline", value: "test\nkey", wantMsg: "key: has a space, control or non-ASCII character at byte 4; use visible ASCII characters only"},
		{name: "non-ASCII", value: "clé-secrète", wantMsg: "key: has a space, control or non-ASCII character at byte 2; use visible ASCII characters only"},
		{name: "too long", value: strings.Repeat("k", MaxKeyLen+1), wantMsg: "key: is 257 characters long; at most 256 are allowed"},
		{name: "bad spec too", value: "tiny", wantMsg: "key: is 4 characters long; at least 6 are required\nquota.period: \"week\" is not \"day\" or \"month\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := Spec{}
			if tt.name == "bad spec too" {
				spec.Quota = &Quota{Requests: 1, Period: "week"}
			}
			_, err := f.mgr.Import(t.Context(), spec, tt.value)
			if !isValidation(err) {
				t.Fatalf("Import() error = %v, want a ValidationError", err)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("Import() error = %q, want %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), tt.value) {
				t.Errorf("Import() error %q contains the rejected value", err)
			}
		})
	}
	if keys, err := f.mgr.List(t.Context()); err != nil || len(keys) != 0 {
		t.Errorf("List() = %d keys, %v; want none stored", len(keys), err)
	}
}

// TestClearKeyStoredNowhere searches every byte of the store and of the
// logs for the clear keys after their whole life cycle.
func TestClearKeyStoredNowhere(t *testing.T) {
	f := newFixture(t, true)
	stop := run(t, f.idx)
	defer stop()
	var clears []string
	for i := range 3 {
		k, clear, err := f.mgr.Create(t.Context(), Spec{Name: fmt.Sprint("key ", i), Metadata: map[string]string{"team": "a"}})
		if err != nil {
			t.Fatalf("Create() error = %v", err)
		}
		clears = append(clears, clear)
		if _, err := f.mgr.Update(t.Context(), k.ID, func(k *Key) error { k.Name += " renamed"; return nil }); err != nil {
			t.Fatalf("Update() error = %v", err)
		}
		if i == 0 {
			if _, err := f.mgr.Revoke(t.Context(), k.ID); err != nil {
				t.Fatalf("Revoke() error = %v", err)
			}
		}
	}
	imported := "bootstrap-testkey"
	if _, err := f.mgr.Import(t.Context(), Spec{}, imported); err != nil {
		t.Fatalf("Import() error = %v", err)
	}
	clears = append(clears, imported)
	for _, c := range clears {
		waitFor(t, "the index to follow", func() bool { _, r := f.idx.Check(c, t0); return r != Unknown })
	}

	kvs, _, err := f.st.List(t.Context(), "")
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	if len(kvs) != len(clears) {
		t.Errorf("store holds %d keys, want %d records", len(kvs), len(clears))
	}
	logs := f.logs.String()
	for _, c := range clears {
		for _, kv := range kvs {
			if strings.Contains(kv.Key, c) || strings.Contains(string(kv.Value), c) {
				t.Errorf("store key %s holds a clear key: %s", kv.Key, kv.Value)
			}
		}
		if strings.Contains(logs, c) {
			t.Errorf("the logs hold a clear key:\n%s", logs)
		}
	}
	if !strings.Contains(logs, "api key created") {
		t.Errorf("logs = %q, want the creations logged (else the search above proves nothing)", logs)
	}
}

func TestUpdate(t *testing.T) {
	f := newFixture(t, true)
	k, clear, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	errFn := errors.New("no thanks")
	tests := []struct {
		name    string
		fn      func(*Key) error
		wantErr func(error) bool
	}{
		{name: "fn error", fn: func(*Key) error { return errFn }, wantErr: func(err error) bool { return errors.Is(err, errFn) }},
		{name: "hash", fn: func(k *Key) error { k.Hash = strings.Repeat("0", 64); return nil }, wantErr: func(err error) bool { return errors.Is(err, ErrImmutable) }},
		{name: "created_at", fn: func(k *Key) error { k.CreatedAt = t0.Add(time.Hour); return nil }, wantErr: func(err error) bool { return errors.Is(err, ErrImmutable) }},
		{name: "bad policy", fn: func(k *Key) error { k.RateLimit = &Limit{Requests: 0, Per: 1}; return nil }, wantErr: isValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.mgr.Update(t.Context(), k.ID, tt.fn); !tt.wantErr(err) {
				t.Errorf("Update() error = %v, want the %s error", err, tt.name)
			}
			if got, err := f.mgr.Get(t.Context(), k.ID); err != nil || got.Revision != k.Revision {
				t.Errorf("Get() revision = %d, %v; want %d: nothing stored", got.Revision, err, k.Revision)
			}
		})
	}

	limit := &Limit{Requests: 10, Per: config.Duration(time.Second), Burst: 20}
	updated, err := f.mgr.Update(t.Context(), k.ID, func(k *Key) error { k.RateLimit = limit; return nil })
	if err != nil || updated.Revision <= k.Revision {
		t.Fatalf("Update() = revision %d, %v; want a new revision above %d", updated.Revision, err, k.Revision)
	}
	if e, r := f.idx.Check(clear, t0); r != Valid || e.RateLimit == nil || *e.RateLimit != *limit {
		t.Errorf("Check() after Update = %v, rate limit %+v; want %v with %+v", r, e.RateLimit, Valid, limit)
	}

	// Concurrent updates all land: each loser of a race re-reads and retries.
	const writers = 8
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			_, err := f.mgr.Update(t.Context(), k.ID, func(k *Key) error {
				if k.Metadata == nil {
					k.Metadata = map[string]string{}
				}
				k.Metadata[fmt.Sprint("w", i)] = "x"
				return nil
			})
			if err != nil {
				t.Errorf("concurrent Update() error = %v", err)
			}
		})
	}
	wg.Wait()
	if got, err := f.mgr.Get(t.Context(), k.ID); err != nil || len(got.Metadata) != writers {
		t.Errorf("Get() after %d concurrent updates: metadata = %v, %v; want %d entries", writers, got.Metadata, err, writers)
	}

	// Clearing Revoked un-revokes and clears RevokedAt.
	if _, err := f.mgr.Revoke(t.Context(), k.ID); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	back, err := f.mgr.Update(t.Context(), k.ID, func(k *Key) error { k.Revoked = false; return nil })
	if err != nil || !back.RevokedAt.IsZero() {
		t.Errorf("Update(Revoked = false) = revoked at %v, %v; want zero", back.RevokedAt, err)
	}
	if _, r := f.idx.Check(clear, t0); r != Valid {
		t.Errorf("Check() after un-revoking = %v, want %v", r, Valid)
	}
}

func TestDeleteAndUnknownIDs(t *testing.T) {
	f := newFixture(t, true)
	k, clear, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if err := f.mgr.Delete(t.Context(), k.ID); err != nil {
		t.Fatalf("Delete() error = %v", err)
	}
	if _, r := f.idx.Check(clear, t0); r != Unknown {
		t.Errorf("first Check() after Delete = %v, want %v", r, Unknown)
	}
	if f.idx.Len() != 0 {
		t.Errorf("Len() after Delete = %d, want 0", f.idx.Len())
	}
	tests := []struct {
		name string
		id   string
	}{
		{name: "deleted", id: k.ID},
		{name: "never existed", id: "0123456789ab"},
		{name: "path traversal", id: "../config/cu"},
		{name: "a clear key by mistake", id: clear},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for op, err := range map[string]error{
				"Get":    func() error { _, err := f.mgr.Get(t.Context(), tt.id); return err }(),
				"Revoke": func() error { _, err := f.mgr.Revoke(t.Context(), tt.id); return err }(),
				"Delete": f.mgr.Delete(t.Context(), tt.id),
			} {
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s(%q) error = %v, want store.ErrNotFound", op, tt.id, err)
				}
				if err != nil && tt.id == clear && strings.Contains(err.Error(), clear) {
					t.Errorf("%s() error %q echoes the clear key", op, err)
				}
			}
		})
	}
}

func TestList(t *testing.T) {
	f := newFixture(t, false)
	want := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		k, _, err := f.mgr.Create(t.Context(), Spec{Name: name})
		if err != nil {
			t.Fatalf("Create() error = %v", err)
		}
		want[k.ID] = name
	}
	if _, err := f.st.Put(t.Context(), Prefix+"aaaaaaaaaaaa", []byte("{not json"), store.PutOptions{}); err != nil {
		t.Fatalf("Put() error = %v", err)
	}
	keys, err := f.mgr.List(t.Context())
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	got := map[string]string{}
	for i, k := range keys {
		got[k.ID] = k.Name
		if i > 0 && keys[i-1].ID >= k.ID {
			t.Errorf("List() not sorted by ID: %s before %s", keys[i-1].ID, k.ID)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List() = %v, want %v (the unreadable record skipped)", got, want)
	}
	if !strings.Contains(f.logs.String(), "skipping an unreadable api key record") {
		t.Errorf("logs = %q, want the unreadable record reported", f.logs.String())
	}
}
