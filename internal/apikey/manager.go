package apikey

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// Errors returned by the Manager, besides store.ErrNotFound (wrapped) for
// an unknown ID and ValidationError for a bad Spec or key value.
var (
	// ErrDuplicate is returned by Import when a stored key already has the
	// imported value.
	ErrDuplicate = errors.New("apikey: a key with this value already exists")
	// ErrNoSecret is returned by Import when Config.Secret is empty.
	ErrNoSecret = errors.New("apikey: no server secret is configured; imported keys are hashed with it (set GATEHOUSE_KEY_SECRET)")
	// ErrImmutable is returned by Update when fn changed a field that
	// identifies the key: ID, Hash, HashAlg, Prefix or CreatedAt.
	ErrImmutable = errors.New("apikey: id, hash, hash_alg, prefix and created_at cannot be changed")
)

// casAttempts bounds the retries of a conditional write that lost a race:
// an ID clash on create, or a concurrent change on update.
const casAttempts = 16

// Applier receives every key the Manager writes, right after the write
// succeeds, so that the local Index reflects it before the Manager's method
// returns: a revoked key is refused on the very next request instead of
// when the watch delivers the change. *Index implements it.
type Applier interface {
	Apply(Key)
	Remove(id string)
}

// Manager creates, imports, reads, revokes, updates and deletes key
// records in the store. It never stores or logs a clear key. It is safe for
// concurrent use; every method costs at least one store round trip and is
// not meant for the request path (use Index.Check).
type Manager struct {
	st    store.Store
	local Applier // may be nil
	cfg   Config
	log   *slog.Logger
	mac   *macPool // nil without a secret
}

// NewManager returns a Manager over st. local, when not nil, is told of
// every successful write (typically the process's own Index). A nil log
// discards.
func NewManager(st store.Store, local Applier, cfg Config, log *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{st: st, local: local, cfg: cfg.withDefaults(), log: log}
	if len(cfg.Secret) > 0 {
		m.mac = newMACPool(cfg.Secret)
	}
	return m, nil
}

// Create stores a new generated key with the policy of spec and returns
// its record and the clear key. The clear key is not kept anywhere: this is
// the only time it can be shown. A bad spec, or an ExpiresAt not in the
// future, is reported as a ValidationError.
func (m *Manager) Create(ctx context.Context, spec Spec) (Key, string, error) {
	now := m.cfg.Now().UTC()
	var p problems
	checkNew(&p, spec, now)
	if err := p.err(); err != nil {
		return Key{}, "", err
	}
	clear := generate()
	d := digestSHA256(clear)
	k := newKey(spec, now)
	k.Hash = hex.EncodeToString(d[:])
	k.HashAlg = HashSHA256
	k.Prefix = displayPrefix(clear, HashSHA256)
	k, err := m.insert(ctx, k)
	if err != nil {
		return Key{}, "", err
	}
	return k, clear, nil
}

// Import stores a key whose value the caller chose (at least MinImportLen
// visible ASCII characters), hashed with HMAC-SHA256 and Config.Secret
// since it may be guessable. It returns ErrNoSecret without a secret, a
// ValidationError for a bad spec or value (whose message never contains the
// value), and an error wrapping ErrDuplicate if a stored key already has
// this value. Finding duplicates reads every record, which is fine for
// the bootstrap scripts imports are for. Two concurrent imports of one
// value can both succeed; the Index then accepts the newer and logs an
// error.
func (m *Manager) Import(ctx context.Context, spec Spec, value string) (Key, error) {
	if m.mac == nil {
		return Key{}, ErrNoSecret
	}
	now := m.cfg.Now().UTC()
	var p problems
	validateValue(&p, value)
	checkNew(&p, spec, now)
	if err := p.err(); err != nil {
		return Key{}, err
	}
	mac := m.mac.digest(value)
	sha := digestSHA256(value)
	macHex, shaHex := hex.EncodeToString(mac[:]), hex.EncodeToString(sha[:])
	existing, err := m.List(ctx)
	if err != nil {
		return Key{}, fmt.Errorf("import key: %w", err)
	}
	for _, e := range existing {
		if (e.HashAlg == HashHMACSHA256 && e.Hash == macHex) || (e.HashAlg == HashSHA256 && e.Hash == shaHex) {
			return Key{}, fmt.Errorf("import key: key %s already has this value; delete it first to reuse the value: %w", e.ID, ErrDuplicate)
		}
	}
	k := newKey(spec, now)
	k.Hash = macHex
	k.HashAlg = HashHMACSHA256
	k.Prefix = displayPrefix(value, HashHMACSHA256)
	return m.insert(ctx, k)
}

// checkNew validates spec for a key created at now.
func checkNew(p *problems, spec Spec, now time.Time) {
	spec.validate(p)
	if !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(now) {
		p.add("expires_at", "%s is not in the future (now is %s)", spec.ExpiresAt.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
	}
}

// newKey returns a record with the policy of spec, not sharing its slices
// or map.
func newKey(spec Spec, now time.Time) Key {
	k := clone(Key{
		Name:            spec.Name,
		CreatedAt:       now,
		AllowedRoutes:   spec.AllowedRoutes,
		AllowedServices: spec.AllowedServices,
		RateLimit:       spec.RateLimit,
		Quota:           spec.Quota,
		Metadata:        spec.Metadata,
	})
	if !spec.ExpiresAt.IsZero() {
		k.ExpiresAt = spec.ExpiresAt.UTC()
	}
	return k
}

// insert stores k under a fresh random ID, retrying on the (rare) clash.
func (m *Manager) insert(ctx context.Context, k Key) (Key, error) {
	for range casAttempts {
		k.ID = newID()
		b, err := encode(k)
		if err != nil {
			return Key{}, err
		}
		rev, err := m.st.Put(ctx, storeKey(k.ID), b, store.PutOptions{IfRevision: store.Absent})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return Key{}, fmt.Errorf("store key %s: %w", k.ID, err)
		}
		k.Revision = rev
		m.apply(k)
		m.log.Info("api key created", "key_id", k.ID, "name", k.Name, "hash_alg", k.HashAlg)
		return k, nil
	}
	return Key{}, fmt.Errorf("store new key: every one of %d random ids was taken: %w", casAttempts, store.ErrConflict)
}

// Get returns the record of the key with the given ID, or an error
// wrapping store.ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (Key, error) {
	if !validID(id) {
		// The ID is not echoed: a confused caller may have sent the key.
		return Key{}, fmt.Errorf("api key id is not %d lowercase hex characters: %w", 2*idBytes, store.ErrNotFound)
	}
	kv, err := m.st.Get(ctx, storeKey(id))
	if err != nil {
		return Key{}, fmt.Errorf("read api key %s: %w", id, err)
	}
	return decode(id, kv.Value, kv.Revision)
}

// List returns every key record, sorted by ID. Unreadable records are
// logged and left out.
func (m *Manager) List(ctx context.Context) ([]Key, error) {
	kvs, _, err := m.st.List(ctx, Prefix)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	keys := make([]Key, 0, len(kvs))
	for _, kv := range kvs {
		k, err := decode(strings.TrimPrefix(kv.Key, Prefix), kv.Value, kv.Revision)
		if err != nil {
			m.log.Warn("skipping an unreadable api key record", "store_key", kv.Key, "error", err)
			continue
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Revoke marks the key revoked, keeping its record for audit, and returns
// it. Revoking a revoked key changes nothing and returns it as it is.
func (m *Manager) Revoke(ctx context.Context, id string) (Key, error) {
	k, err := m.update(ctx, id, func(k *Key) (bool, error) {
		if k.Revoked {
			return false, nil
		}
		k.Revoked = true
		return true, nil
	})
	if err != nil {
		return Key{}, err
	}
	return k, nil
}

// Update reads the key, lets fn change it and stores the result if no one
// changed the key meanwhile, retrying otherwise (so fn may run more than
// once). An error from fn is returned as is; a policy that fails Spec
// validation is a ValidationError; changing an identifying field is
// ErrImmutable. Setting Revoked stamps RevokedAt if fn left it zero;
// clearing it clears RevokedAt.
func (m *Manager) Update(ctx context.Context, id string, fn func(*Key) error) (Key, error) {
	return m.update(ctx, id, func(k *Key) (bool, error) { return true, fn(k) })
}

// update is Update with an fn that can say there is nothing to write.
func (m *Manager) update(ctx context.Context, id string, fn func(*Key) (bool, error)) (Key, error) {
	for range casAttempts {
		cur, err := m.Get(ctx, id)
		if err != nil {
			return Key{}, err
		}
		next := clone(cur)
		changed, err := fn(&next)
		if err != nil {
			return Key{}, err
		}
		if !changed {
			return cur, nil
		}
		if next.ID != cur.ID || next.Hash != cur.Hash || next.HashAlg != cur.HashAlg ||
			next.Prefix != cur.Prefix || !next.CreatedAt.Equal(cur.CreatedAt) {
			return Key{}, fmt.Errorf("update api key %s: %w", id, ErrImmutable)
		}
		switch {
		case !next.Revoked:
			next.RevokedAt = time.Time{}
		case next.RevokedAt.IsZero():
			next.RevokedAt = m.cfg.Now().UTC()
		}
		if err := specOf(next).Validate(); err != nil {
			return Key{}, err
		}
		b, err := encode(next)
		if err != nil {
			return Key{}, err
		}
		rev, err := m.st.Put(ctx, storeKey(id), b, store.PutOptions{IfRevision: cur.Revision})
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue // changed or deleted meanwhile: read again
		}
		if err != nil {
			return Key{}, fmt.Errorf("store api key %s: %w", id, err)
		}
		next.Revision = rev
		m.apply(next)
		m.log.Info("api key updated", "key_id", id, "revoked", next.Revoked)
		return next, nil
	}
	return Key{}, fmt.Errorf("update api key %s: gave up after %d concurrent changes: %w", id, casAttempts, store.ErrConflict)
}

// clone returns a copy of k that shares no slice, map or pointer with it.
func clone(k Key) Key {
	k.AllowedRoutes = slices.Clone(k.AllowedRoutes)
	k.AllowedServices = slices.Clone(k.AllowedServices)
	k.Metadata = maps.Clone(k.Metadata)
	if k.RateLimit != nil {
		l := *k.RateLimit
		k.RateLimit = &l
	}
	if k.Quota != nil {
		q := *k.Quota
		k.Quota = &q
	}
	return k
}

// specOf returns the policy part of k.
func specOf(k Key) Spec {
	return Spec{
		Name:            k.Name,
		ExpiresAt:       k.ExpiresAt,
		AllowedRoutes:   k.AllowedRoutes,
		AllowedServices: k.AllowedServices,
		RateLimit:       k.RateLimit,
		Quota:           k.Quota,
		Metadata:        k.Metadata,
	}
}

// Delete removes the key's record for good (Revoke keeps it). An unknown
// ID is an error wrapping store.ErrNotFound.
func (m *Manager) Delete(ctx context.Context, id string) error {
	if !validID(id) {
		return fmt.Errorf("api key id is not %d lowercase hex characters: %w", 2*idBytes, store.ErrNotFound)
	}
	if err := m.st.Delete(ctx, storeKey(id), 0); err != nil {
		return fmt.Errorf("delete api key %s: %w", id, err)
	}
	if m.local != nil {
		m.local.Remove(id)
	}
	m.log.Info("api key deleted", "key_id", id)
	return nil
}

func (m *Manager) apply(k Key) {
	if m.local != nil {
		m.local.Apply(k)
	}
}
