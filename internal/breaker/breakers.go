package breaker

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// Breakers holds the breaker groups of every service and follows snapshot
// changes. Breaker state lives here, keyed by service and replica ID, and
// survives snapshot swaps for the replicas that remain.
//
// Create Breakers with New; the zero value is not usable. Breakers is safe
// for concurrent use. For is the request path's call: one
// atomic load and one map lookup, no allocation. Sync and the Syncer's
// applications of remote records serialise on a mutex the request path
// never takes.
type Breakers struct {
	configFor func(*snapshot.Service) Config
	log       *slog.Logger
	q         queue

	groups atomic.Pointer[map[string]*Group] // immutable; replaced by Sync

	mu sync.Mutex
	// pending holds the latest ejection record from another instance per
	// replica ID, so that a replica this instance learns of later (its
	// snapshot lags) starts ejected too. Expired records are pruned.
	pending map[string]Record
}

// New returns Breakers with no service; call Sync with each snapshot.
// configFor gives the Config of a service and is called by Sync; nil means
// the zero Config (defaults) for every service. A nil log discards.
func New(configFor func(*snapshot.Service) Config, log *slog.Logger) *Breakers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Breakers{
		configFor: configFor,
		log:       log,
		q:         queue{ch: make(chan Record, queueSize)},
		pending:   make(map[string]Record),
	}
	b.groups.Store(&map[string]*Group{})
	return b
}

// For returns the group of service, or nil (a valid, empty group that
// allows everything) if the last Sync had no such service.
func (b *Breakers) For(service string) *Group {
	return (*b.groups.Load())[service]
}

// Sync makes the groups follow snap: services and replicas that appeared
// get fresh breakers, those that remain keep their state (a changed Config
// applies at once and restarts the ratio windows), those that went are
// forgotten. A Config that fails Validate is logged and replaced by the
// defaults. now is the time of the sync, used for ejections learnt from
// other instances before the replica was known here. A nil snap means no
// service.
func (b *Breakers) Sync(snap *snapshot.Snapshot, now time.Time) {
	t := now.UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.groups.Load()
	var services map[string]*snapshot.Service
	if snap != nil {
		services = snap.Services
	}
	next := make(map[string]*Group, len(services))
	for name, svc := range services {
		var cfg Config
		if b.configFor != nil {
			cfg = b.configFor(svc)
		}
		if err := cfg.Validate(); err != nil {
			b.log.Error("invalid breaker config; using defaults", "service", name, "error", err)
			cfg = Config{}
		}
		g := old[name]
		if g == nil {
			g = newGroup(name, b.log, &b.q)
		}
		for _, br := range g.sync(svc, cfg, t) {
			if r, ok := b.pending[br.id]; ok && r.Service == name {
				br.applyRemote(r, t)
			}
		}
		next[name] = g
	}
	for name, g := range old {
		if _, ok := next[name]; !ok {
			g.detachAll()
		}
	}
	b.groups.Store(&next)
	for id, r := range b.pending {
		if r.until() <= t {
			delete(b.pending, id)
		}
	}
}

// Dropped returns how many transitions were not queued for the Syncer
// because its queue was full.
func (b *Breakers) Dropped() uint64 { return b.q.dropped.Load() }

// apply applies a record written by another instance to the replica it
// names, or keeps it for when the replica appears.
func (b *Breakers) apply(r Record, now time.Time) {
	t := now.UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.State == StateEjected && r.until() > t {
		b.pending[r.ReplicaID] = r
	} else {
		delete(b.pending, r.ReplicaID)
	}
	if br := b.For(r.Service).Breaker(r.ReplicaID); br != nil {
		br.applyRemote(r, t)
	}
}

// forget drops a remote record superseded by one of this instance's.
func (b *Breakers) forget(replicaID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.pending, replicaID)
}

// each calls fn with every breaker until fn returns false.
func (b *Breakers) each(fn func(*Breaker) bool) {
	for _, g := range *b.groups.Load() {
		for _, br := range *g.replicas.Load() {
			if !fn(br) {
				return
			}
		}
	}
}
