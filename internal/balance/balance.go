// Package balance chooses which replica of a service serves the next attempt
// of a request. Each policy is its own small type behind the Picker
// interface; New builds one from its configured name.
//
// Every picker obeys the same rules, so that the data plane can retry on
// another replica whatever the policy: it chooses among the replicas that
// are Available and not yet tried; if there are none but some replicas are
// untried, it chooses among those ignoring Available (an ejected replica is
// a better last resort than a failed request); it returns nil only when
// every replica was tried or the service has none.
//
// Pick is on the hot path: every picker is safe for concurrent use, takes no
// lock shared across requests and, once it has seen a service, does not
// allocate.
package balance

import (
	"fmt"
	"strings"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// Picker chooses the replica of svc that serves one attempt of a request.
// The data plane calls Pick once per attempt, passing the replicas already
// tried by earlier attempts of the same request (usually 0 to 3 of them).
// key is the request's hash key (see HashKey); only ConsistentHash uses it.
// Implementations are safe for concurrent use.
type Picker interface {
	Pick(svc *snapshot.Service, h Health, key uint64, tried []*snapshot.Replica) *snapshot.Replica
}

// Health is the data plane's view of its replicas, read by pickers.
type Health interface {
	// Load returns the runtime load of r; never nil.
	Load(r *snapshot.Replica) *Load
	// Available reports whether r may be picked. It is false for an ejected
	// or unhealthy replica, with the ejection cap and panic mode already
	// applied by the data plane; pickers just obey it.
	Available(r *snapshot.Replica) bool
}

// Pruner is the optional capability of pickers that keep state per service.
// The data plane calls Prune once per new snapshot (not per request) so that
// services removed from the configuration do not keep their state forever.
// Pruning a service that is still in use only resets its state.
type Pruner interface {
	// Prune forgets the state of services that are not in keep; a nil keep
	// forgets everything.
	Prune(keep *snapshot.Snapshot)
}

// Policy names accepted by New, as written in the configuration.
const (
	PolicyRoundRobin         = "round_robin"
	PolicyWeightedRoundRobin = "weighted_round_robin"
	PolicyLeastConnections   = "least_connections"
	PolicyP2CEWMA            = "p2c_ewma"
	PolicyConsistentHash     = "consistent_hash"
)

// PolicyNames returns the policy names New accepts, default first. The
// caller owns the returned slice.
func PolicyNames() []string {
	return []string{
		PolicyRoundRobin,
		PolicyWeightedRoundRobin,
		PolicyLeastConnections,
		PolicyP2CEWMA,
		PolicyConsistentHash,
	}
}

// New returns a new picker for policy, one of PolicyNames; "" means round
// robin. Pickers that keep per-service state also implement Pruner.
func New(policy string) (Picker, error) {
	switch policy {
	case "", PolicyRoundRobin:
		return NewRoundRobin(), nil
	case PolicyWeightedRoundRobin:
		return NewWeightedRoundRobin(), nil
	case PolicyLeastConnections:
		return NewLeastConnections(), nil
	case PolicyP2CEWMA:
		return NewP2CEWMA(), nil
	case PolicyConsistentHash:
		return NewConsistentHash(), nil
	}
	return nil, fmt.Errorf("unknown load-balancing policy %q: use one of %s", policy, strings.Join(PolicyNames(), ", "))
}

// wasTried reports whether r is in tried, by pointer or, for a replica
// of an older snapshot, by ID.
func wasTried(tried []*snapshot.Replica, r *snapshot.Replica) bool {
	for _, t := range tried {
		if t == r || (t != nil && t.ID == r.ID) {
			return true
		}
	}
	return false
}

// weight returns r's weight, at least 1 even for hand-built replicas.
func weight(r *snapshot.Replica) int64 {
	return int64(max(r.Weight, 1))
}

// walk returns the first replica of rs, starting at index start and wrapping
// around, that is untried and available; failing that the first untried
// one; failing that nil. It calls Available at most once per replica.
func walk(rs []*snapshot.Replica, start int, h Health, tried []*snapshot.Replica) *snapshot.Replica {
	var fallback *snapshot.Replica
	n := len(rs)
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		r := rs[i]
		if wasTried(tried, r) {
			continue
		}
		if h.Available(r) {
			return r
		}
		if fallback == nil {
			fallback = r
		}
	}
	return fallback
}
