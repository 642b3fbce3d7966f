package balance

import "github.com/gatehouse-gw/gatehouse/internal/snapshot"

var (
	_ Picker = (*RoundRobin)(nil)
	_ Pruner = (*RoundRobin)(nil)
)

// RoundRobin picks the replicas of each service in turn, skipping those
// that are unavailable or already tried (the next one in turn takes their
// share). Its counters are keyed by service name, so the rotation carries on
// across snapshot swaps. Weights are ignored.
//
// The zero value is ready to use and safe for concurrent use. Pick costs one
// lock-free map lookup, one atomic add and a walk that usually stops at the
// first replica; it does not allocate once the service has been seen.
type RoundRobin struct {
	services services[struct{}]
}

// NewRoundRobin returns an empty RoundRobin.
func NewRoundRobin() *RoundRobin { return &RoundRobin{} }

// Pick returns the next replica of svc in turn; see Picker. key is ignored.
func (p *RoundRobin) Pick(svc *snapshot.Service, h Health, _ uint64, tried []*snapshot.Replica) *snapshot.Replica {
	if svc == nil || len(svc.Replicas) == 0 {
		return nil
	}
	n := uint64(len(svc.Replicas))
	i := p.services.state(svc.Name).next.Add(1) - 1
	return walk(svc.Replicas, int(i%n), h, tried)
}

// Prune forgets the counters of services that are not in keep.
func (p *RoundRobin) Prune(keep *snapshot.Snapshot) { p.services.prune(keep) }
