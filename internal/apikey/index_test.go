package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
)

// testKey returns a record for the clear key value with the given ID,
// hashed as a generated key (or as an imported one when imported is true),
// at store revision rev.
func testKey(id, value string, imported bool, rev int64) Key {
	k := Key{ID: id, HashAlg: HashSHA256, Revision: rev}
	if imported {
		h := hmac.New(sha256.New, testSecret)
		h.Write([]byte(value))
		k.Hash, k.HashAlg = hex.EncodeToString(h.Sum(nil)), HashHMACSHA256
	} else {
		sum := sha256.Sum256([]byte(value))
		k.Hash = hex.EncodeToString(sum[:])
	}
	return k
}

func newTestIndex(t testing.TB) *Index {
	t.Helper()
	x, err := NewIndex(openStore(t, boltstore.Options{}), Config{Secret: testSecret}, nil)
	if err != nil {
		t.Fatalf("NewIndex() error = %v", err)
	}
	return x
}

// TestApplyOrder replays the orders in which local applies and watch
// events can reach an Index.
func TestApplyOrder(t *testing.T) {
	const id, value = "00000000000a", "gh_ordering-key"
	revoked := func(rev int64) Key { k := testKey(id, value, false, rev); k.Revoked = true; return k }
	type step struct {
		apply  *Key // nil means Remove(id)
		want   Result
		reason string
	}
	ptr := func(k Key) *Key { return &k }
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "stale version after a newer one", steps: []step{
			{apply: ptr(revoked(7)), want: Revoked},
			{apply: ptr(testKey(id, value, false, 5)), want: Revoked, reason: "revision 5 is older than 7"},
			{apply: ptr(testKey(id, value, false, 9)), want: Valid, reason: "revision 9 is newer"},
		}},
		{name: "same version twice", steps: []step{
			{apply: ptr(revoked(7)), want: Revoked},
			{apply: ptr(revoked(7)), want: Revoked},
		}},
		{name: "late put after a local remove", steps: []step{
			{apply: ptr(testKey(id, value, false, 7)), want: Valid},
			{want: Unknown},
			{apply: ptr(testKey(id, value, false, 7)), want: Unknown, reason: "the watch delivering the put already applied"},
			{apply: ptr(testKey(id, value, false, 8)), want: Valid, reason: "a put after the removal"},
		}},
		{name: "damaged record fails closed", steps: []step{
			{apply: ptr(testKey(id, value, false, 3)), want: Valid},
			{apply: ptr(Key{ID: id, Hash: "zz", HashAlg: HashSHA256, Revision: 4}), want: Unknown},
		}},
		{name: "unknown algorithm fails closed", steps: []step{
			{apply: ptr(testKey(id, value, false, 3)), want: Valid},
			{apply: ptr(Key{ID: id, Hash: testKey(id, value, false, 0).Hash, HashAlg: "md5", Revision: 4}), want: Unknown},
		}},
		{name: "no revision always applies", steps: []step{
			{apply: ptr(revoked(7)), want: Revoked},
			{apply: ptr(testKey(id, value, false, 0)), want: Valid},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newTestIndex(t)
			for i, s := range tt.steps {
				if s.apply != nil {
					x.Apply(*s.apply)
				} else {
					x.Remove(id)
				}
				if _, got := x.Check(value, t0); got != s.want {
					t.Fatalf("step %d: Check() = %v, want %v %s", i, got, s.want, s.reason)
				}
			}
		})
	}
}

func TestSameHashTwoIDs(t *testing.T) {
	x := newTestIndex(t)
	x.Apply(testKey("00000000000a", "gh_shared", false, 1))
	x.Apply(testKey("00000000000b", "gh_shared", false, 2))
	if e, got := x.Check("gh_shared", t0); got != Valid || e.ID != "00000000000b" {
		t.Errorf("Check() = %v for %v, want %v for the newer 00000000000b", got, e, Valid)
	}
	if x.Len() != 2 {
		t.Errorf("Len() = %d, want 2", x.Len())
	}
	// Removing the shadowed one must not remove the one in use.
	x.Remove("00000000000a")
	if e, got := x.Check("gh_shared", t0); got != Valid || e.ID != "00000000000b" {
		t.Errorf("Check() after removing the other = %v for %v, want %v for 00000000000b", got, e, Valid)
	}
}

func TestCheckImported(t *testing.T) {
	x := newTestIndex(t)
	x.Apply(testKey("00000000000a", "gh_generated", false, 1))
	if x.macKeys.Load() != 0 {
		t.Fatalf("macKeys = %d, want 0", x.macKeys.Load())
	}
	x.Apply(testKey("00000000000b", "testkey", true, 2))
	tests := []struct {
		presented string
		wantID    string
		want      Result
	}{
		{presented: "gh_generated", wantID: "00000000000a", want: Valid},
		{presented: "testkey", wantID: "00000000000b", want: Valid},
		{presented: "testkez", want: Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.presented, func(t *testing.T) {
			e, got := x.Check(tt.presented, t0)
			if got != tt.want || (e != nil) != (tt.wantID != "") || (e != nil && e.ID != tt.wantID) {
				t.Errorf("Check(%q) = %v, %+v; want %v for %q", tt.presented, got, e, tt.want, tt.wantID)
			}
		})
	}
	// An imported key's HMAC is not a SHA-256: stored as the other kind,
	// the same digest does not match.
	k := testKey("00000000000c", "otherkey", true, 3)
	k.HashAlg = HashSHA256
	x.Apply(k)
	if _, got := x.Check("otherkey", t0); got != Unknown {
		t.Errorf("Check() of an HMAC digest labelled sha256 = %v, want %v", got, Unknown)
	}
	x.Remove("00000000000b")
	if n := x.macKeys.Load(); n != 0 {
		t.Errorf("macKeys after removing the only imported key = %d, want 0", n)
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	x := newTestIndex(t)
	x.Apply(testKey("00000000000a", "gh_"+strings.Repeat("x", 43), false, 1))
	x.Apply(testKey("00000000000b", "an-imported-key", true, 2))
	tests := []struct {
		name      string
		presented string
		pooled    bool // uses the HMAC pool, which the race detector randomly empties
	}{
		{name: "generated hit", presented: "gh_" + strings.Repeat("x", 43)},
		{name: "miss", presented: "gh_" + strings.Repeat("y", 43), pooled: true},
		{name: "imported hit", presented: "an-imported-key", pooled: true},
		{name: "long miss", presented: strings.Repeat("z", MaxKeyLen), pooled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pooled && raceEnabled {
				t.Skip("sync.Pool drops items at random under the race detector")
			}
			now := t0
			if got := testing.AllocsPerRun(100, func() { x.Check(tt.presented, now) }); got != 0 {
				t.Errorf("Check() allocates %v times, want 0", got)
			}
		})
	}
}

func TestSetAllows(t *testing.T) {
	tests := []struct {
		names []string
		name  string
		want  bool
	}{
		{names: nil, name: "anything", want: true},
		{names: []string{"b", "a", "b"}, name: "a", want: true},
		{names: []string{"b", "a"}, name: "b", want: true},
		{names: []string{"b", "a"}, name: "c", want: false},
		{names: []string{"b", "a"}, name: "", want: false},
	}
	for _, tt := range tests {
		if got := newSet(tt.names).Allows(tt.name); got != tt.want {
			t.Errorf("Set%v.Allows(%q) = %t, want %t", tt.names, tt.name, got, tt.want)
		}
	}
	if got := newSet([]string{"b", "a", "b"}).Len(); got != 2 {
		t.Errorf("Len() = %d, want 2 (duplicates collapse)", got)
	}
}

func TestResultString(t *testing.T) {
	for r, want := range map[Result]string{Unknown: "unknown", Valid: "valid", Revoked: "revoked", Expired: "expired", 42: "unknown"} {
		if got := r.String(); got != want {
			t.Errorf("Result(%d).String() = %q, want %q", r, got, want)
		}
	}
}

func TestShardSize(t *testing.T) {
	if got := unsafe.Sizeof(shard{}); got != 128 {
		t.Errorf("sizeof(shard) = %d, want 128 so that no two shard locks share a cache-line pair", got)
	}
}

func TestFarExpiry(t *testing.T) {
	x := newTestIndex(t)
	tests := []struct {
		expires time.Time
		now     time.Time
		want    Result
	}{
		{expires: time.Date(2600, 1, 1, 0, 0, 0, 0, time.UTC), now: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), want: Valid},
		{expires: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), now: t0, want: Expired},
	}
	for _, tt := range tests {
		k := testKey("00000000000a", "gh_far", false, 0)
		k.ExpiresAt = tt.expires
		x.Apply(k)
		if _, got := x.Check("gh_far", tt.now); got != tt.want {
			t.Errorf("Check(expiring %v, at %v) = %v, want %v", tt.expires, tt.now, got, tt.want)
		}
	}
}

// TestCheckDuringUpdates checks a key while its versions are replaced as
// fast as possible: every check must see one version or the other, never
// the key missing (which would turn a policy change into spurious 401s).
func TestCheckDuringUpdates(t *testing.T) {
	x := newTestIndex(t)
	const value = "gh_busy-key"
	x.Apply(testKey("00000000000a", value, false, 1))
	done := make(chan struct{})
	unknown := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				unknown <- n
				return
			default:
			}
			if _, r := x.Check(value, t0); r == Unknown {
				n++
			}
		}
	}()
	for rev := int64(2); rev < 5000; rev++ {
		k := testKey("00000000000a", value, false, rev)
		k.Revoked = rev%2 == 0
		x.Apply(k)
	}
	close(done)
	if n := <-unknown; n != 0 {
		t.Errorf("Check() = %v %d times while the key was being updated, want never", Unknown, n)
	}
}

func TestReserve(t *testing.T) {
	tests := []struct {
		name    string
		preload bool
	}{
		{name: "empty index"},
		{name: "index holding keys", preload: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newTestIndex(t)
			if tt.preload {
				x.Apply(testKey("00000000000a", "gh_kept", false, 1))
			}
			x.wmu.Lock()
			x.reserve(10 * shardCount)
			x.wmu.Unlock()
			x.Apply(testKey("00000000000b", "gh_added", false, 2))
			want := map[string]Result{"gh_kept": Unknown, "gh_added": Valid}
			if tt.preload {
				want["gh_kept"] = Valid
			}
			for key, w := range want {
				if _, got := x.Check(key, t0); got != w {
					t.Errorf("Check(%s) after reserve = %v, want %v", key, got, w)
				}
			}
			if wantLen := map[bool]int{false: 1, true: 2}[tt.preload]; x.Len() != wantLen {
				t.Errorf("Len() = %d, want %d", x.Len(), wantLen)
			}
		})
	}
}
