// Package breaker is the passive half of replica health: a circuit breaker
// per replica that ejects it after consecutive failures or a high error
// ratio, re-admits it through a single half-open probe after a cool-down
// that grows with repeated ejections, caps the share of a service's replicas
// ejected at once, and falls back to all replicas (panic mode) when too few
// are available. Active health checks feed the same state through
// Group.SetHealthy, and a Syncer shares ejections between gateway instances
// through the store.
//
// The request path costs a few atomic operations and no allocation: a
// per-replica mutex is taken only on state transitions (trip, probe, probe
// outcome), which happen at most a few times per cool-down.
package breaker

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Transition says how a call changed a replica's state, so that the caller
// can emit events and metrics.
type Transition uint8

// Transitions.
const (
	// None: the state did not change.
	None Transition = iota
	// Ejected: the replica was taken out of rotation (tripped, or its
	// half-open probe failed).
	Ejected
	// Restored: the replica's probe succeeded and it is back in rotation.
	Restored
	// Suppressed: the replica tripped but was not ejected because the
	// service already has as many ejected replicas as its cap allows.
	Suppressed
)

// String returns the transition's lowercase name.
func (t Transition) String() string {
	switch t {
	case None:
		return "none"
	case Ejected:
		return "ejected"
	case Restored:
		return "restored"
	case Suppressed:
		return "suppressed"
	}
	return "unknown"
}

// States reported in Status.State and Record.State.
const (
	// StateHealthy: in rotation.
	StateHealthy = "healthy"
	// StateEjected: out of rotation until EjectedUntil, then probed.
	StateEjected = "ejected"
	// StateProbing: one half-open probe request is in flight.
	StateProbing = "probing"
	// StateUnhealthy: not ejected, but failing active health checks.
	StateUnhealthy = "unhealthy"
)

// Status is a point-in-time copy of one replica's breaker.
type Status struct {
	// State is one of StateHealthy, StateEjected, StateProbing and
	// StateUnhealthy; ejection takes precedence over health checks.
	State string
	// EjectedUntil is the end of the cool-down while ejected (the probe
	// deadline while probing). Zero when healthy, or when a manual ejection
	// lasts until restored.
	EjectedUntil time.Time
	// Ejections is the ejection count that sets the next cool-down, after
	// decay.
	Ejections int
	// ConsecutiveFailures is the current run of failures.
	ConsecutiveFailures int
	// WindowRequests and WindowFailures are the counts of the ratio window.
	WindowRequests, WindowFailures int
	// LastError is the reason given with the last failure; empty if none.
	LastError string
	// LastErrorAt is when LastError was reported; zero if none.
	LastErrorAt time.Time
	// Manual is true while an operator's ejection is in force.
	Manual bool
	// Unhealthy is true while active health checks fail.
	Unhealthy bool
}

// Breaker states. Transitions between them hold mu; reads are lock-free.
const (
	closed uint32 = iota
	ejected
	probing
)

// indefinite, as an ejection end, means until restored.
const indefinite = math.MaxInt64

// Breaker is the circuit breaker of one replica. It is created by a Group
// (see Group.Breaker; the zero value is not usable) and safe for concurrent
// use. Allow, Success and
// Failure cost a few atomic operations and do not allocate; only state
// transitions take the breaker's own mutex, which no other replica shares.
type Breaker struct {
	id, service, address string
	group                *Group

	state     atomic.Uint32
	until     atomic.Int64 // ejected: cool-down end; probing: probe deadline (Unix ns)
	consec    atomic.Int32
	unhealthy atomic.Bool
	manual    atomic.Bool
	unflushed atomic.Int64 // failures not yet added to the store counter
	lastErrAt atomic.Int64
	lastErr   atomic.Pointer[string]
	win       window

	// mu serialises transitions. Writers store until before state, so a
	// reader that sees a new state also sees its deadline.
	mu          sync.Mutex
	ejections   int
	closedSince int64 // when the breaker last closed, for decay
	detached    bool  // removed from its group: counts nothing there
	inEjected   bool  // counted in group.ejected
	inUnavail   bool  // counted in group.unavailable
}

func newBreaker(g *Group, id, address string, now int64) *Breaker {
	return &Breaker{id: id, service: g.name, address: address, group: g, closedSince: now}
}

// ID returns the replica ID the breaker belongs to.
func (b *Breaker) ID() string { return b.id }

// Allow reports whether a request may be sent to the replica at now,
// ignoring panic mode (see Group.Allow). Closed and healthy: true. Ejected
// before the end of its cool-down, or failing health checks: false. At or
// after the end of the cool-down, exactly one caller is admitted as the
// half-open probe; the others get false until an outcome is reported or
// the probe timeout passes, when one more probe is admitted. A caller that
// gets true must report the outcome with Success or Failure.
func (b *Breaker) Allow(now time.Time) bool {
	if b.unhealthy.Load() {
		return false
	}
	if b.state.Load() == closed {
		return true
	}
	t := now.UnixNano()
	if t < b.until.Load() {
		return false
	}
	return b.admit(t)
}

// available is Allow without admitting a probe.
func (b *Breaker) available(t int64) bool {
	if b.unhealthy.Load() {
		return false
	}
	return b.state.Load() == closed || t >= b.until.Load()
}

// admit makes the caller the half-open probe if the cool-down (or the
// previous probe's deadline) has passed.
func (b *Breaker) admit(t int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.state.Load()
	if st == closed {
		return true
	}
	if t < b.until.Load() || b.unhealthy.Load() {
		return false
	}
	b.until.Store(t + b.group.cfg.Load().probeTimeout)
	b.state.Store(probing)
	return true
}

// Success reports a successful exchange at now. While probing, the first
// outcome reported decides: a success closes the breaker, resets its
// counters and returns Restored.
func (b *Breaker) Success(now time.Time) Transition {
	t := now.UnixNano()
	switch b.state.Load() {
	case closed:
		b.win.record(t, b.group.cfg.Load().width, false)
		if b.consec.Load() != 0 {
			b.consec.Store(0)
		}
		return None
	case probing:
		return b.probeSucceeded(t)
	}
	return None
}

// Failure reports a failed exchange at now: a connect error, a timeout, or
// a status the caller counts as a failure; never a client cancellation.
// reason is a short, secret-free text ("connect refused", "status 503")
// kept as the last error; pass a constant or otherwise long-lived string,
// as the breaker keeps it. It returns Ejected when this failure trips the
// breaker or fails the probe, Suppressed when the trip was refused by the
// service's cap, None otherwise. Failures while ejected change nothing.
func (b *Breaker) Failure(now time.Time, reason string) Transition {
	t := now.UnixNano()
	b.unflushed.Add(1)
	b.noteError(t, reason)
	switch b.state.Load() {
	case closed:
	case probing:
		return b.probeFailed(t, reason)
	default:
		return None
	}
	s := b.group.cfg.Load()
	b.win.record(t, s.width, true)
	n := b.consec.Add(1)
	trip := s.consecutive > 0 && n >= s.consecutive
	if !trip && s.ratio > 0 {
		req, fail := b.win.sum(t, s.width)
		trip = req >= s.minRequests && float64(fail) >= s.ratio*float64(req)
	}
	if !trip {
		return None
	}
	return b.trip(t, reason)
}

// noteError keeps reason as the last error. It allocates only when the
// reason differs from the previous one, so a replica failing the same way
// again and again costs no allocation.
func (b *Breaker) noteError(t int64, reason string) {
	b.lastErrAt.Store(t)
	if p := b.lastErr.Load(); p == nil || *p != reason {
		p := new(string)
		*p = reason
		b.lastErr.Store(p)
	}
}

// trip ejects a closed breaker, within the group's cap.
func (b *Breaker) trip(t int64, reason string) Transition {
	b.mu.Lock()
	if b.state.Load() != closed {
		b.mu.Unlock()
		return None
	}
	g := b.group
	s := g.cfg.Load()
	if !b.detached {
		if !g.reserve(s) {
			// Start counting afresh so that the trip is tried again after
			// another full run of failures, not on every failure.
			b.consec.Store(0)
			b.win.reset()
			b.mu.Unlock()
			g.suppressed.Add(1)
			g.log.Warn("ejection suppressed by cap", "replica", b.id, "reason", reason, "max_ejected_percent", s.maxEjected)
			return Suppressed
		}
		b.inEjected = true
	}
	n := min(b.decayedLocked(t, s)+1, s.maxEjections)
	b.ejections = n
	until := t + s.cooldown(n)
	b.setLocked(ejected, until)
	g.emit(b.recordLocked(t, false))
	b.mu.Unlock()
	g.log.Warn("replica ejected", "replica", b.id, "reason", reason, "ejections", n, "ejected_until", time.Unix(0, until).UTC())
	return Ejected
}

// probeFailed re-ejects a probing breaker with the next longer cool-down.
func (b *Breaker) probeFailed(t int64, reason string) Transition {
	b.mu.Lock()
	if b.state.Load() != probing {
		b.mu.Unlock()
		return None
	}
	s := b.group.cfg.Load()
	n := min(b.ejections+1, s.maxEjections)
	b.ejections = n
	until := t + s.cooldown(n)
	b.manual.Store(false)
	b.setLocked(ejected, until)
	b.group.emit(b.recordLocked(t, false))
	b.mu.Unlock()
	b.group.log.Warn("replica probe failed", "replica", b.id, "reason", reason, "ejections", n, "ejected_until", time.Unix(0, until).UTC())
	return Ejected
}

// probeSucceeded closes a probing breaker.
func (b *Breaker) probeSucceeded(t int64) Transition {
	b.mu.Lock()
	if b.state.Load() != probing {
		b.mu.Unlock()
		return None
	}
	b.closeLocked(t)
	b.group.emit(b.recordLocked(t, false))
	b.mu.Unlock()
	b.group.log.Info("replica restored", "replica", b.id)
	return Restored
}

// eject is a manual ejection until t+d, or until restored when d <= 0. It
// ignores the cap: the operator decided.
func (b *Breaker) eject(t int64, d time.Duration) {
	until := int64(indefinite)
	if d > 0 && int64(d) < indefinite-t {
		until = t + int64(d)
	}
	b.mu.Lock()
	b.manual.Store(true)
	b.setLocked(ejected, until)
	b.group.emit(b.recordLocked(t, true))
	b.mu.Unlock()
	b.group.log.Info("replica ejected by operator", "replica", b.id, "duration", d)
}

// restore is a manual restore: closed, counters and ejection count reset.
// It is published even when the breaker was closed, because other
// instances may have ejected the replica on their own.
func (b *Breaker) restore(t int64) {
	b.mu.Lock()
	b.ejections = 0
	b.closeLocked(t)
	b.group.emit(b.recordLocked(t, true))
	b.mu.Unlock()
	b.group.log.Info("replica restored by operator", "replica", b.id)
}

// setHealthy records the verdict of active health checks.
func (b *Breaker) setHealthy(healthy bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unhealthy.Store(!healthy)
	b.accountLocked()
}

// setLocked moves to st with deadline until and updates the group's counts.
func (b *Breaker) setLocked(st uint32, until int64) {
	b.until.Store(until)
	b.state.Store(st)
	b.accountLocked()
}

// closeLocked closes the breaker and resets its counters.
func (b *Breaker) closeLocked(t int64) {
	b.closedSince = t
	b.manual.Store(false)
	b.consec.Store(0)
	b.win.reset()
	b.setLocked(closed, 0)
}

// accountLocked brings the group's ejected and unavailable counts in line
// with this breaker's state. Reservations under the cap set inEjected
// before the state changes, so that they are not counted twice.
func (b *Breaker) accountLocked() {
	if b.detached {
		return
	}
	out := b.state.Load() != closed
	if out != b.inEjected {
		b.inEjected = out
		b.group.ejected.Add(delta(out))
	}
	unavail := out || b.unhealthy.Load()
	if unavail != b.inUnavail {
		b.inUnavail = unavail
		b.group.unavailable.Add(delta(unavail))
	}
}

// detach removes the breaker's contribution from its group, which no
// longer holds it. Requests still in flight may report to it harmlessly.
func (b *Breaker) detach() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inEjected {
		b.group.ejected.Add(-1)
	}
	if b.inUnavail {
		b.group.unavailable.Add(-1)
	}
	b.inEjected, b.inUnavail, b.detached = false, false, true
}

func delta(up bool) int32 {
	if up {
		return 1
	}
	return -1
}

// decayedLocked is the ejection count after decay: one less for every
// MaxEjection the breaker has been closed.
func (b *Breaker) decayedLocked(t int64, s *settings) int {
	if b.state.Load() != closed || b.ejections == 0 || t <= b.closedSince {
		return b.ejections
	}
	periods := (t - b.closedSince) / s.max
	return int(max(0, int64(b.ejections)-periods))
}

// recordLocked describes the breaker for the store.
func (b *Breaker) recordLocked(t int64, manual bool) Record {
	r := Record{
		ReplicaID: b.id,
		Service:   b.service,
		Address:   b.address,
		State:     StateHealthy,
		Ejections: b.ejections,
		Failures:  int(b.consec.Load()),
		Manual:    manual,
		Time:      time.Unix(0, t).UTC(),
	}
	if b.state.Load() != closed {
		r.State = StateEjected
		if u := b.until.Load(); u != indefinite {
			r.EjectedUntil = time.Unix(0, u).UTC()
		}
	}
	if p := b.lastErr.Load(); p != nil {
		r.LastError = *p
	}
	return r
}

// State returns a copy of the breaker's state at now.
func (b *Breaker) State(now time.Time) Status {
	t := now.UnixNano()
	s := b.group.cfg.Load()
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Status{
		State:               StateHealthy,
		Ejections:           b.decayedLocked(t, s),
		ConsecutiveFailures: int(b.consec.Load()),
		Manual:              b.manual.Load(),
		Unhealthy:           b.unhealthy.Load(),
	}
	switch b.state.Load() {
	case ejected:
		st.State = StateEjected
	case probing:
		st.State = StateProbing
	default:
		if st.Unhealthy {
			st.State = StateUnhealthy
		}
	}
	if st.State == StateEjected || st.State == StateProbing {
		if u := b.until.Load(); u != indefinite {
			st.EjectedUntil = time.Unix(0, u).UTC()
		}
	}
	st.WindowRequests, st.WindowFailures = b.win.sum(t, s.width)
	if p := b.lastErr.Load(); p != nil {
		st.LastError = *p
		st.LastErrorAt = time.Unix(0, b.lastErrAt.Load()).UTC()
	}
	return st
}

// applyRemote applies a record written by another instance. It publishes
// nothing, so that instances do not echo each other.
func (b *Breaker) applyRemote(r Record, t int64) Transition {
	b.mu.Lock()
	tr, msg := b.applyRemoteLocked(r, t)
	b.mu.Unlock()
	switch {
	case tr == Suppressed:
		b.group.suppressed.Add(1)
		b.group.log.Warn("ejection suppressed by cap", "replica", b.id, "from_node", r.Node)
	case msg != "":
		b.group.log.Info(msg, "replica", b.id, "from_node", r.Node, "manual", r.Manual)
	}
	return tr
}

func (b *Breaker) applyRemoteLocked(r Record, t int64) (Transition, string) {
	st := b.state.Load()
	switch r.State {
	case StateEjected:
		until := r.until()
		if until <= t {
			return None, ""
		}
		if st == closed {
			if !r.Manual && !b.detached {
				if !b.group.reserve(b.group.cfg.Load()) {
					return Suppressed, ""
				}
				b.inEjected = true
			}
		} else {
			if b.manual.Load() && !r.Manual {
				return None, "" // an operator's ejection here outranks a trip there
			}
			if !r.Manual && st == ejected {
				until = max(until, b.until.Load())
			}
		}
		b.ejections = max(b.decayedLocked(t, b.group.cfg.Load()), r.Ejections)
		b.manual.Store(r.Manual || b.manual.Load())
		b.setLocked(ejected, until)
		if st == closed {
			return Ejected, "replica ejected by another instance"
		}
		return None, ""
	case StateHealthy:
		if st == closed || (b.manual.Load() && !r.Manual) {
			return None, ""
		}
		if r.Manual {
			b.ejections = 0
		}
		b.closeLocked(t)
		return Restored, "replica restored by another instance"
	}
	return None, ""
}
