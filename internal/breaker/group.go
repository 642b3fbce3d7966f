package breaker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// ErrUnknownReplica is returned for a replica ID the group does not hold.
var ErrUnknownReplica = errors.New("breaker: unknown replica")

// Group holds the breakers of one service's replicas, keyed by replica ID,
// and enforces what concerns them together: the ejection cap and panic
// mode. Groups are created and kept current by Breakers.Sync.
//
// A Group is safe for concurrent use. Its zero value is not usable; a nil
// *Group is, and holds no
// replica: Allow and Available return true, Success and Failure return
// None. Allow, Available, Success and Failure cost one map lookup plus the
// breaker's atomics and do not allocate; the counts behind panic mode are
// kept in atomics, so no call scans the replicas.
type Group struct {
	name string
	log  *slog.Logger
	q    *queue

	cfg      atomic.Pointer[settings]
	replicas atomic.Pointer[map[string]*Breaker] // immutable; replaced by sync

	ejected     atomic.Int32 // breakers not closed (ejected or probing)
	unavailable atomic.Int32 // ejected, probing or failing health checks
	suppressed  atomic.Uint64
}

func newGroup(name string, log *slog.Logger, q *queue) *Group {
	g := &Group{name: name, log: log.With("service", name), q: q}
	g.cfg.Store(compile(Config{}))
	g.replicas.Store(&map[string]*Breaker{})
	return g
}

// Name returns the service name.
func (g *Group) Name() string { return g.name }

// Breaker returns the breaker of replica id, or nil if the group does not
// hold it.
func (g *Group) Breaker(id string) *Breaker {
	if g == nil {
		return nil
	}
	return (*g.replicas.Load())[id]
}

// Allow reports whether a request may be sent to replica id at now, and is
// to be called once for the replica chosen. It is Breaker.Allow (which may
// admit the half-open probe) with panic mode applied: while the service
// panics, every replica is allowed except those an operator ejected. A
// replica the group does not know (a snapshot newer than the last Sync) is
// allowed. A caller that gets true must report the outcome with Success or
// Failure.
func (g *Group) Allow(id string, now time.Time) bool {
	if g == nil {
		return true
	}
	return g.AllowBreaker(g.Breaker(id), now)
}

// AllowBreaker is Allow for a breaker already looked up with Breaker, so
// that a request that reports its outcome to b directly pays for one map
// lookup instead of two. A nil b is allowed.
func (g *Group) AllowBreaker(b *Breaker, now time.Time) bool {
	if b == nil || b.Allow(now) {
		return true
	}
	return !b.manual.Load() && g.Panicking()
}

// Available is Allow without side effects, for filtering candidates before
// picking one: it never admits a probe, and reports true where Allow would
// (including a replica whose cool-down has ended and whose probe is free).
func (g *Group) Available(id string, now time.Time) bool {
	if g == nil {
		return true
	}
	m := *g.replicas.Load()
	b := m[id]
	if b == nil || b.available(now.UnixNano()) {
		return true
	}
	return !b.manual.Load() && g.cfg.Load().panics(len(m), int(g.unavailable.Load()))
}

// Panicking reports whether fewer than the panic threshold of the service's
// replicas are available, so that Allow ignores ejections and health.
func (g *Group) Panicking() bool {
	if g == nil {
		return false
	}
	return g.cfg.Load().panics(len(*g.replicas.Load()), int(g.unavailable.Load()))
}

// Success reports a successful exchange with replica id; see
// Breaker.Success.
func (g *Group) Success(id string, now time.Time) Transition {
	if b := g.Breaker(id); b != nil {
		return b.Success(now)
	}
	return None
}

// Failure reports a failed exchange with replica id; see Breaker.Failure.
func (g *Group) Failure(id string, now time.Time, reason string) Transition {
	if b := g.Breaker(id); b != nil {
		return b.Failure(now, reason)
	}
	return None
}

// SetHealthy records the verdict of active health checks for replica id.
// An unhealthy replica is out of rotation (unless the service panics)
// independently of its breaker counts.
func (g *Group) SetHealthy(id string, healthy bool) error {
	b, err := g.lookup(id)
	if err != nil {
		return err
	}
	b.setHealthy(healthy)
	return nil
}

// Eject takes replica id out of rotation for d from now, or until Restore
// when d <= 0. Operator ejections ignore the cap (but count towards it for
// later trips) and are honoured in panic mode; they do not count towards
// the cool-down multiplier. When d ends the
// replica is probed like any ejected one. The ejection is published to
// other instances by the Syncer.
func (g *Group) Eject(id string, d time.Duration, now time.Time) error {
	b, err := g.lookup(id)
	if err != nil {
		return err
	}
	b.eject(now.UnixNano(), d)
	return nil
}

// Restore puts replica id back in rotation at once, whatever ejected it,
// and resets its counters and ejection count. It is published to other
// instances by the Syncer.
func (g *Group) Restore(id string, now time.Time) error {
	b, err := g.lookup(id)
	if err != nil {
		return err
	}
	b.restore(now.UnixNano())
	return nil
}

// Statuses returns the state of every replica at now, by replica ID.
func (g *Group) Statuses(now time.Time) map[string]Status {
	if g == nil {
		return map[string]Status{}
	}
	m := *g.replicas.Load()
	out := make(map[string]Status, len(m))
	for id, b := range m {
		out[id] = b.State(now)
	}
	return out
}

// Suppressed returns how many ejections the cap has refused so far.
func (g *Group) Suppressed() uint64 {
	if g == nil {
		return 0
	}
	return g.suppressed.Load()
}

func (g *Group) lookup(id string) (*Breaker, error) {
	if b := g.Breaker(id); b != nil {
		return b, nil
	}
	if g == nil {
		return nil, fmt.Errorf("replica %q: %w", id, ErrUnknownReplica)
	}
	return nil, fmt.Errorf("service %q replica %q: %w", g.name, id, ErrUnknownReplica)
}

// reserve counts one more ejected replica if the cap allows it.
func (g *Group) reserve(s *settings) bool {
	limit := int32(s.capacity(len(*g.replicas.Load())))
	for {
		e := g.ejected.Load()
		if e >= limit {
			return false
		}
		if g.ejected.CompareAndSwap(e, e+1) {
			return true
		}
	}
}

// emit queues a record for the Syncer without blocking.
func (g *Group) emit(r Record) { g.q.send(r) }

// sync makes the group hold exactly svc's replicas under cfg, keeping the
// breakers of replicas it already held, and returns the breakers it
// created. It is called by Breakers.Sync, one call at a time.
func (g *Group) sync(svc *snapshot.Service, cfg Config, now int64) []*Breaker {
	if cur := g.cfg.Load(); cur.src != cfg {
		g.cfg.Store(compile(cfg))
		// Window buckets depend on the window length: start afresh rather
		// than mix widths.
		for _, b := range *g.replicas.Load() {
			b.win.reset()
		}
	}
	old := *g.replicas.Load()
	next := make(map[string]*Breaker, len(svc.Replicas))
	var added []*Breaker
	for _, r := range svc.Replicas {
		if _, dup := next[r.ID]; dup {
			continue
		}
		if b, ok := old[r.ID]; ok {
			next[r.ID] = b
			continue
		}
		addr := ""
		if r.URL != nil {
			addr = r.URL.String()
		}
		b := newBreaker(g, r.ID, addr, now)
		next[r.ID] = b
		added = append(added, b)
	}
	for id, b := range old {
		if _, ok := next[id]; !ok {
			b.detach()
		}
	}
	g.replicas.Store(&next)
	return added
}

// detachAll forgets every replica, when the service is gone.
func (g *Group) detachAll() {
	for _, b := range *g.replicas.Load() {
		b.detach()
	}
	g.replicas.Store(&map[string]*Breaker{})
}
