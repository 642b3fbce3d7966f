package proxy

import (
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/balance"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// maxTried bounds the replicas one request may try or find refused by their
// breakers: retry.Policy allows at most 10 attempts, which leaves room for
// a few refusals. Past it the request stops trying.
const maxTried = 16

var _ balance.Health = (*exchange)(nil)

// pickers holds one picker per balancing policy, shared by every service
// with that policy; each keeps its per-service state by service name.
type pickers struct {
	roundRobin *balance.RoundRobin
	weighted   *balance.WeightedRoundRobin
	leastConns *balance.LeastConnections
	p2c        *balance.P2CEWMA
	hash       *balance.ConsistentHash
}

func newPickers() pickers {
	return pickers{
		roundRobin: balance.NewRoundRobin(),
		weighted:   balance.NewWeightedRoundRobin(),
		leastConns: balance.NewLeastConnections(),
		p2c:        balance.NewP2CEWMA(),
		hash:       balance.NewConsistentHash(),
	}
}

// forPolicy returns the picker of a compiled policy name; unknown names,
// which the configuration's validation rejects, get round robin.
func (ps *pickers) forPolicy(name string) balance.Picker {
	switch name {
	case balance.PolicyWeightedRoundRobin:
		return ps.weighted
	case balance.PolicyLeastConnections:
		return ps.leastConns
	case balance.PolicyP2CEWMA:
		return ps.p2c
	case balance.PolicyConsistentHash:
		return ps.hash
	}
	return ps.roundRobin
}

// prune forgets the per-service state of services that are not in keep.
func (ps *pickers) prune(keep *snapshot.Snapshot) {
	for _, pk := range []balance.Picker{ps.roundRobin, ps.weighted, ps.leastConns, ps.p2c, ps.hash} {
		if pr, ok := pk.(balance.Pruner); ok {
			pr.Prune(keep)
		}
	}
}

// pick chooses the replica of the next attempt of x by its service's
// policy, among the replicas not tried yet, and admits it through its
// circuit breaker. A replica its breaker refuses (ejected, or its half-open
// probe already taken) counts as tried and the pick goes on. It returns nil
// when no untried replica is admitted; otherwise x's current attempt is set
// to the replica, which must then be sent to and its outcome reported. It
// does not allocate. now is the breaker clock's time.
func (p *Proxy) pick(x *exchange, now time.Time) *snapshot.Replica {
	pk := p.pickers.forPolicy(x.svc.Balancer.Policy)
	x.now = now
	for x.ntried < len(x.tried) {
		rep := pk.Pick(x.svc, x, x.key, x.tried[:x.ntried])
		if rep == nil {
			return nil
		}
		x.tried[x.ntried] = rep
		x.ntried++
		br := x.group.Breaker(rep.ID)
		if x.group.AllowBreaker(br, x.now) {
			x.rep, x.br, x.st = rep, br, p.states.state(rep.ID)
			return rep
		}
	}
	return nil
}

// untried reports whether the service has replicas the request has not
// tried yet, without picking one: pickers return nil only when all were
// tried, so a retry is worth spending budget on.
func (x *exchange) untried() bool {
	return x.ntried < len(x.svc.Replicas) && x.ntried < len(x.tried)
}

// Load implements balance.Health: the replica's load, kept in its runtime
// state across snapshot swaps.
func (x *exchange) Load(r *snapshot.Replica) *balance.Load {
	return &x.p.states.state(r.ID).load
}

// Available implements balance.Health: whether the service's breakers let
// r take traffic at the time of the pick, ejection cap and panic mode
// applied. It never admits a half-open probe; pick does, with Allow.
func (x *exchange) Available(r *snapshot.Replica) bool {
	return x.group.Available(r.ID, x.now)
}
