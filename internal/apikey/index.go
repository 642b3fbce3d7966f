package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// Result is the outcome of Index.Check. The zero value is Unknown.
type Result uint8

// Check results.
const (
	// Unknown: no key has this value (or it is an imported key and the
	// Index has no secret). Answer 401.
	Unknown Result = iota
	// Valid: the key exists, is not revoked and has not expired.
	Valid
	// Revoked: the key exists but was revoked.
	Revoked
	// Expired: the key exists but its ExpiresAt has passed.
	Expired
)

// String returns the lowercase name of r, suitable as a metrics label.
func (r Result) String() string {
	switch r {
	case Valid:
		return "valid"
	case Revoked:
		return "revoked"
	case Expired:
		return "expired"
	default:
		return "unknown"
	}
}

// Entry is the data plane's view of one version of a key: its ID and
// policy. An Entry is immutable once published and shared by every request
// that presents the key; callers must not modify it or anything it points
// to. A changed key gets a new Entry.
type Entry struct {
	// ID is the key's public ID, for logs and metrics.
	ID string
	// Routes holds the route names the key may call; empty allows any.
	Routes Set
	// Services holds the service names the key may reach; empty allows any.
	Services Set
	// RateLimit is the per-key rate limit, or nil for none.
	RateLimit *Limit
	// Quota is the per-key quota, or nil for none.
	Quota *Quota
	// Metadata is the key's metadata, or nil.
	Metadata map[string]string

	digest  [sha256.Size]byte
	expires int64 // Unix nanoseconds; 0 means never
	rev     int64 // store revision of this version; 0 when unknown
	mac     bool  // digest is HMAC-SHA256 rather than SHA-256
	revoked bool
}

// Set is an immutable set of names, kept sorted. The zero value is empty,
// which an allow-list reads as "any". Membership is a binary search without
// allocation; the lists are short (at most MaxAllowed).
type Set struct{ names []string }

// newSet returns the set of names, or the empty Set.
func newSet(names []string) Set {
	if len(names) == 0 {
		return Set{}
	}
	s := slices.Clone(names)
	slices.Sort(s)
	return Set{names: slices.Compact(s)}
}

// Allows reports whether name is in s, or s is empty (no restriction).
func (s Set) Allows(name string) bool {
	if len(s.names) == 0 {
		return true
	}
	_, ok := slices.BinarySearch(s.names, name)
	return ok
}

// Len returns the number of names in s.
func (s Set) Len() int { return len(s.names) }

// compile turns a stored record into an Entry: a pure function.
func compile(k Key) (*Entry, error) {
	if k.ID == "" {
		return nil, fmt.Errorf("key record has no id")
	}
	e := &Entry{
		ID:       k.ID,
		Routes:   newSet(k.AllowedRoutes),
		Services: newSet(k.AllowedServices),
		rev:      k.Revision,
		revoked:  k.Revoked,
	}
	switch k.HashAlg {
	case HashSHA256:
	case HashHMACSHA256:
		e.mac = true
	default:
		return nil, fmt.Errorf("key %s: hash_alg %q is not %q or %q", k.ID, k.HashAlg, HashSHA256, HashHMACSHA256)
	}
	if n, err := hex.Decode(e.digest[:], []byte(k.Hash)); err != nil || n != sha256.Size || len(k.Hash) != 2*sha256.Size {
		return nil, fmt.Errorf("key %s: hash is not %d hex characters", k.ID, 2*sha256.Size)
	}
	if !k.ExpiresAt.IsZero() {
		e.expires = unixNano(k.ExpiresAt)
	}
	if k.RateLimit != nil {
		l := *k.RateLimit
		e.RateLimit = &l
	}
	if k.Quota != nil {
		q := *k.Quota
		e.Quota = &q
	}
	if len(k.Metadata) > 0 {
		e.Metadata = maps.Clone(k.Metadata)
	}
	return e, nil
}

// unixNano is t.UnixNano clamped to the representable range (years 1678 to
// 2262), so that a far-future expiry means "later than any now" and a
// far-past one "already expired", never an overflowed value.
func unixNano(t time.Time) int64 {
	switch {
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	case t.Before(time.Unix(0, 1)):
		return 1
	}
	return t.UnixNano()
}

// shardCount is the number of independently locked parts of the Index.
// Checks of different keys take different locks with probability 63/64, so
// readers on many cores rarely share a lock's cache line.
const shardCount = 64

// lookupKey is the first half of a digest. Keying the maps by it saves 16
// bytes per key; the full digest is then compared in constant time, so a
// (2^-128-likely) clash of halves cannot let the wrong key in.
type lookupKey [sha256.Size / 2]byte

// shard is one part of the lookup table. Padding keeps the locks of
// neighbouring shards on different cache lines (two 64-byte lines, since
// x86 prefetches lines in pairs).
type shard struct {
	mu sync.RWMutex
	m  map[lookupKey]*Entry
	_  [128 - 32]byte
}

// Index is the in-memory set of keys the data plane checks. Call Run to
// load it from the store and keep it current; Apply and Remove also let the
// Manager of the same process apply its writes at once.
//
// The zero value is not usable; use NewIndex. An Index is safe for
// concurrent use. Check neither allocates nor touches the store: it hashes
// the presented key and takes the read lock of one of 64 shards for one map
// lookup. A sharded map rather than a copy-on-write one because copying a
// million-entry map on every change is too slow, and rather than sync.Map
// because its any-typed keys allocate on lookup. Writers (Apply, Remove,
// Run) are serialised among themselves and hold one shard's write lock only
// for a map assignment.
type Index struct {
	st  store.Store
	cfg Config
	log *slog.Logger
	mac *macPool // nil without a secret: imported keys never match

	shards [shardCount]shard

	macKeys  atomic.Int64 // entries hashed with HMAC; a miss skips the HMAC when 0
	n        atomic.Int64 // len(byID)
	ready    atomic.Bool
	degraded atomic.Bool

	// wmu serialises writers and guards the fields below. Check never
	// takes it.
	wmu  sync.Mutex
	byID map[string]*Entry
	// gone holds a tombstone revision per removed ID, so that a put event
	// older than the removal (still in flight on the watch when the Manager
	// removed the key locally) does not bring the key back. A tombstone
	// lasts until the watch delivers the deletion or the next full reload.
	gone   map[string]int64
	maxRev int64 // highest revision applied, from any source
}

// NewIndex returns an empty Index over st. Run loads and follows the store;
// until then Check reports every key Unknown. st may be nil for an Index fed
// only through Apply and Remove. A nil log discards.
func NewIndex(st store.Store, cfg Config, log *slog.Logger) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := &Index{
		st:   st,
		cfg:  cfg.withDefaults(),
		log:  log,
		byID: make(map[string]*Entry),
		gone: make(map[string]int64),
	}
	if len(cfg.Secret) > 0 {
		x.mac = newMACPool(cfg.Secret)
	}
	for i := range x.shards {
		x.shards[i].m = make(map[lookupKey]*Entry)
	}
	return x, nil
}

var _ Applier = (*Index)(nil)

// Check looks up a presented key and says whether it may be used at now.
// The Entry is returned for every result but Unknown, so that a rejection
// can be logged with the key's ID. Cost: one SHA-256 of the key and one
// sharded map lookup; a miss also costs one HMAC-SHA256 when any imported
// key is loaded. It does not allocate, except to refill the pool of HMAC
// states after a garbage collection emptied it.
func (x *Index) Check(presented string, now time.Time) (*Entry, Result) {
	if len(presented) == 0 || len(presented) > MaxKeyLen {
		return nil, Unknown
	}
	d := digestSHA256(presented)
	e := x.lookup(&d, false)
	if e == nil && x.mac != nil && x.macKeys.Load() > 0 {
		d = x.mac.digest(presented)
		e = x.lookup(&d, true)
	}
	switch {
	case e == nil:
		return nil, Unknown
	case e.revoked:
		return e, Revoked
	case e.expires != 0 && now.UnixNano() >= e.expires:
		return e, Expired
	}
	return e, Valid
}

// lookup returns the entry whose digest, of the given kind, is d.
func (x *Index) lookup(d *[sha256.Size]byte, mac bool) *Entry {
	sh := &x.shards[d[sha256.Size-1]%shardCount]
	sh.mu.RLock()
	e := sh.m[lookupKey(d[:len(lookupKey{})])]
	sh.mu.RUnlock()
	if e == nil || e.mac != mac || subtle.ConstantTimeCompare(e.digest[:], d[:]) != 1 {
		return nil
	}
	return e
}

// Len returns the number of keys held, revoked and expired ones included.
func (x *Index) Len() int { return int(x.n.Load()) }

// Ready reports whether Run has loaded the store's keys at least once.
func (x *Index) Ready() bool { return x.ready.Load() }

// Degraded reports whether the keys may be out of date: Run has lost the
// store (it cannot read or watch the keys and is retrying), or the store
// reports its server unreachable (see store.HealthReporter), which a watch
// that merely stays silent would not show. The Index keeps answering from
// the keys it holds meanwhile; a key it does not hold may have been created
// elsewhere, so callers answer 503 rather than 401 for it.
func (x *Index) Degraded() bool {
	if x.degraded.Load() {
		return true
	}
	h, ok := x.st.(store.HealthReporter)
	return ok && h.Health() != nil
}

// Apply adds or replaces the key k.ID. A version older than the one held
// (by Key.Revision, when both are known) is ignored, as is one older than a
// removal of the same ID. A record that cannot be checked (a malformed hash
// or an unknown algorithm) removes the key, so that a damaged record fails
// closed. Checks of the key see either the old or the new version, never
// neither.
func (x *Index) Apply(k Key) {
	e, err := compile(k)
	x.wmu.Lock()
	defer x.wmu.Unlock()
	if err != nil {
		x.log.Warn("ignoring an api key record that cannot be checked", "key_id", k.ID, "revision", k.Revision, "error", err)
		x.removeLocked(k.ID, k.Revision)
		return
	}
	x.applyLocked(e)
}

// Remove drops the key with the given ID, if held. Put events for it that
// are older than the newest revision the Index has applied are ignored
// afterwards, so that a removal applied locally is not undone by the watch
// catching up. Removing an ID that is not held does nothing: either the
// watch already applied the deletion, or this Index never saw the key, and
// in both cases a tombstone would never be cleared (and, at a revision older
// than the key's, would not suppress anything).
func (x *Index) Remove(id string) {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	if x.byID[id] == nil {
		return
	}
	x.removeLocked(id, x.maxRev)
}

// reserve sizes an empty Index's maps for n keys, which saves the repeated
// rehashing of growing them one key at a time (40% of the time of loading a
// million keys, measured by BenchmarkLoad). It does nothing to an Index that
// holds keys. x.wmu is held.
func (x *Index) reserve(n int) {
	if len(x.byID) > 0 || n < shardCount {
		return
	}
	x.byID = make(map[string]*Entry, n)
	per := n/shardCount + n/shardCount/8 // headroom for an uneven spread
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.Lock()
		sh.m = make(map[lookupKey]*Entry, per)
		sh.mu.Unlock()
	}
}

// applyLocked publishes e in place of the entry with its ID; x.wmu is held.
func (x *Index) applyLocked(e *Entry) {
	old := x.byID[e.ID]
	if e.rev != 0 {
		if old != nil && old.rev >= e.rev {
			return
		}
		if t, ok := x.gone[e.ID]; ok && e.rev <= t {
			return
		}
		x.maxRev = max(x.maxRev, e.rev)
	}
	delete(x.gone, e.ID)
	if old != nil && old.digest != e.digest {
		// The hash changed (only by a hand-edited record): unpublish first.
		x.unlink(old)
	}
	sh, lk := x.slot(e)
	sh.mu.Lock()
	if other := sh.m[lk]; other != nil && other.ID != e.ID {
		x.log.Error("two api keys have the same hash; only the newer one will be accepted", "key_id", e.ID, "other_key_id", other.ID)
	}
	sh.m[lk] = e
	sh.mu.Unlock()
	x.byID[e.ID] = e
	x.count(old, -1)
	x.count(e, 1)
	if old == nil {
		x.n.Add(1)
	}
}

// removeLocked drops id unless the entry held is newer than rev, leaving a
// tombstone at rev (or the entry's own revision if higher); rev 0 removes
// unconditionally. x.wmu is held.
func (x *Index) removeLocked(id string, rev int64) {
	old := x.byID[id]
	if old != nil {
		if rev != 0 && old.rev > rev {
			return // the entry is newer than the removal
		}
		rev = max(rev, old.rev)
	}
	if rev > 0 {
		x.gone[id] = max(x.gone[id], rev)
		x.maxRev = max(x.maxRev, rev)
	}
	if old == nil {
		return
	}
	x.unlink(old)
	delete(x.byID, id)
	x.count(old, -1)
	x.n.Add(-1)
}

// unlink removes e from its shard unless another entry took its slot.
func (x *Index) unlink(e *Entry) {
	sh, lk := x.slot(e)
	sh.mu.Lock()
	if sh.m[lk] == e {
		delete(sh.m, lk)
	}
	sh.mu.Unlock()
}

func (x *Index) slot(e *Entry) (*shard, lookupKey) {
	return &x.shards[e.digest[sha256.Size-1]%shardCount], lookupKey(e.digest[:len(lookupKey{})])
}

// count adjusts the number of HMAC entries by delta if e is one.
func (x *Index) count(e *Entry, delta int64) {
	if e != nil && e.mac {
		x.macKeys.Add(delta)
	}
}
