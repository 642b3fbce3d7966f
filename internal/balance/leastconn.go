package balance

import (
	"sync/atomic"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

var _ Picker = (*LeastConnections)(nil)

// LeastConnections picks the replica with the fewest attempts in flight
// relative to its weight (in-flight ÷ weight, compared as nginx's
// least_conn does; with equal weights simply the fewest in flight).
// Equally loaded replicas take turns, chosen by a counter that advances on
// every Pick, so they share the traffic instead of the first one taking it
// all. (In services of more than 64 replicas, turns go among up to 64 of
// the tied, found from a rotating offset.)
//
// The zero value is ready to use and safe for concurrent use. Pick reads
// every untried replica's availability and Load once, plus one atomic
// counter shared by all services; it does not allocate. It keeps no
// per-service state.
type LeastConnections struct {
	next atomic.Uint64
}

// NewLeastConnections returns a LeastConnections.
func NewLeastConnections() *LeastConnections { return &LeastConnections{} }

// Pick returns the least loaded replica of svc; see Picker. key is ignored.
func (p *LeastConnections) Pick(svc *snapshot.Service, h Health, _ uint64, tried []*snapshot.Replica) *snapshot.Replica {
	if svc == nil || len(svc.Replicas) == 0 {
		return nil
	}
	rs := svc.Replicas
	turn := p.next.Add(1) - 1
	start := 0
	if len(rs) > sampleSize {
		start = int(turn % uint64(len(rs)))
	}
	var ties [sampleSize]int32
	m := leastLoaded(rs, h, tried, true, start, &ties)
	if m == 0 {
		m = leastLoaded(rs, h, tried, false, start, &ties)
	}
	if m == 0 {
		return nil
	}
	return rs[ties[turn%uint64(m)]]
}

// leastLoaded stores into ties the indices of the least loaded untried
// replicas of rs (only the available ones if available is set), examined
// from index start, and returns how many it stored (at most len(ties)).
func leastLoaded(rs []*snapshot.Replica, h Health, tried []*snapshot.Replica, available bool, start int, ties *[sampleSize]int32) int {
	m := 0
	var bestLoad, bestWeight int64
	n := len(rs)
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		r := rs[i]
		if wasTried(tried, r) || (available && !h.Available(r)) {
			continue
		}
		load, w := max(h.Load(r).InFlight(), 0), weight(r)
		// load/w against bestLoad/bestWeight, without division.
		switch a, b := load*bestWeight, bestLoad*w; {
		case m == 0 || a < b:
			bestLoad, bestWeight = load, w
			ties[0], m = int32(i), 1
		case a == b && m < len(ties):
			ties[m] = int32(i)
			m++
		}
	}
	return m
}
