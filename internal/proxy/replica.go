package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/balance"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// ReplicaStats is a point-in-time copy of the runtime state of one replica.
type ReplicaStats struct {
	// InFlight is the number of attempts (and spliced WebSocket
	// connections) currently being served by the replica.
	InFlight int64
	// Successes counts attempts that ended with a status the service's
	// breaker does not count as a failure.
	Successes uint64
	// Failures counts attempts that failed on the upstream side: connect
	// errors, timeouts, broken response bodies and failure statuses (by
	// default every 5xx). Attempts that failed because of the client are not
	// counted.
	Failures uint64
	// LastError describes the most recent failure; empty if none.
	LastError string
	// LastErrorAt is when LastError happened; zero if none.
	LastErrorAt time.Time
}

// replicaState is the mutable state of one replica. It lives outside the
// immutable snapshot, keyed by Replica.ID, so it survives snapshot swaps.
// All fields are updated atomically; no lock is shared across requests.
type replicaState struct {
	// load is what the balancing policies read (balance.Health.Load).
	load      balance.Load
	successes atomic.Uint64
	failures  atomic.Uint64
	lastErr   atomic.Pointer[replicaError]
}

type replicaError struct {
	msg string
	at  time.Time
}

func (s *replicaState) fail(msg string, at time.Time) {
	s.failures.Add(1)
	s.lastErr.Store(&replicaError{msg: msg, at: at})
}

func (s *replicaState) stats() ReplicaStats {
	st := ReplicaStats{
		InFlight:  s.load.InFlight(),
		Successes: s.successes.Load(),
		Failures:  s.failures.Load(),
	}
	if e := s.lastErr.Load(); e != nil {
		st.LastError, st.LastErrorAt = e.msg, e.at
	}
	return st
}

// replicaStates maps Replica.ID to *replicaState. The zero value is empty
// and ready to use; it is safe for concurrent use.
type replicaStates struct {
	m sync.Map
	// rev is the highest snapshot revision pruned against.
	rev atomic.Int64
}

// state returns the state of id, creating it on first use. Lookup of an
// existing replica does not allocate.
func (rs *replicaStates) state(id string) *replicaState {
	if v, ok := rs.m.Load(id); ok {
		return v.(*replicaState)
	}
	v, _ := rs.m.LoadOrStore(id, new(replicaState))
	return v.(*replicaState)
}

func (rs *replicaStates) lookup(id string) (*replicaState, bool) {
	v, ok := rs.m.Load(id)
	if !ok {
		return nil, false
	}
	return v.(*replicaState), true
}

// advance reports whether snap is newer than any snapshot seen before, and
// records it as seen. Exactly one caller wins per revision, so pruning runs
// once per revision even when many requests see the new snapshot at once.
func (rs *replicaStates) advance(snap *snapshot.Snapshot) bool {
	for {
		seen := rs.rev.Load()
		if snap.Revision <= seen {
			return false
		}
		if rs.rev.CompareAndSwap(seen, snap.Revision) {
			return true
		}
	}
}

// prune forgets replicas that are not in keep. In-flight requests keep their
// own pointer to the state, so they finish unaffected; a replica that comes
// back starts from zero.
func (rs *replicaStates) prune(keep *snapshot.Snapshot) {
	live := make(map[string]struct{})
	for _, svc := range keep.Services {
		for _, r := range svc.Replicas {
			live[r.ID] = struct{}{}
		}
	}
	rs.m.Range(func(k, _ any) bool {
		if _, ok := live[k.(string)]; !ok {
			rs.m.Delete(k)
		}
		return true
	})
}
