package proxy

import (
	"sync"
	"sync/atomic"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

var _ Picker = (*RoundRobin)(nil)

// RoundRobin picks the replicas of each service in turn. Its counters are
// keyed by service name, not by snapshot, so the rotation carries on across
// snapshot swaps. The zero value is ready to use and safe for concurrent use;
// Pick costs one lock-free map lookup and one atomic add, with no allocation
// once the service has been seen.
type RoundRobin struct {
	counters sync.Map // service name -> *atomic.Uint64
}

// NewRoundRobin returns an empty RoundRobin.
func NewRoundRobin() *RoundRobin { return &RoundRobin{} }

// Pick returns the next replica of svc, or nil when it has none.
func (rr *RoundRobin) Pick(svc *snapshot.Service) *snapshot.Replica {
	n := len(svc.Replicas)
	if n == 0 {
		return nil
	}
	c, ok := rr.counters.Load(svc.Name)
	if !ok {
		c, _ = rr.counters.LoadOrStore(svc.Name, new(atomic.Uint64))
	}
	i := c.(*atomic.Uint64).Add(1) - 1
	return svc.Replicas[i%uint64(n)]
}

// Prune forgets the counters of services that are not in keep.
func (rr *RoundRobin) Prune(keep *snapshot.Snapshot) {
	rr.counters.Range(func(k, _ any) bool {
		if _, ok := keep.Services[k.(string)]; !ok {
			rr.counters.Delete(k)
		}
		return true
	})
}
