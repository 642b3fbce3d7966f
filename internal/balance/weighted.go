package balance

import "github.com/gatehouse-gw/gatehouse/internal/snapshot"

var (
	_ Picker = (*WeightedRoundRobin)(nil)
	_ Pruner = (*WeightedRoundRobin)(nil)
)

// maxSchedule bounds the length of a weighted schedule (and the memory and
// build time it costs): larger weight sums are scaled down proportionally,
// which keeps ratios to within 1/maxSchedule of the total.
const maxSchedule = 10_000

// WeightedRoundRobin picks replicas in proportion to their weights, spread
// out smoothly as nginx does: weights 5, 1, 1 give a a b a c a a, not
// a a a a a b c.
//
// Pick takes no lock: the smooth sequence of one cycle (sum of weights
// divided by their GCD, at most about 10,000 entries) is precomputed once
// per *snapshot.Service, lazily when a new snapshot's service is first
// seen, and indexed by an atomic counter kept per service name, so the
// rotation carries on across snapshot swaps. An unavailable or tried
// replica is skipped by walking forward in the sequence (up to twice the
// number of replicas, then through the replicas in order).
//
// The zero value is ready to use and safe for concurrent use. Pick does not
// allocate once the service has been seen; building a schedule costs
// O(length × replicas) once per snapshot.
type WeightedRoundRobin struct {
	services services[schedule]
}

// schedule is one cycle of smooth weighted round robin over the replicas
// of one *snapshot.Service, as indices into its Replicas.
type schedule struct {
	seq []int32
}

// NewWeightedRoundRobin returns an empty WeightedRoundRobin.
func NewWeightedRoundRobin() *WeightedRoundRobin { return &WeightedRoundRobin{} }

// Pick returns the next replica of svc in weighted turn; see Picker. key is
// ignored.
func (p *WeightedRoundRobin) Pick(svc *snapshot.Service, h Health, _ uint64, tried []*snapshot.Replica) *snapshot.Replica {
	if svc == nil || len(svc.Replicas) == 0 {
		return nil
	}
	st := p.services.state(svc.Name)
	seq := st.value(svc, buildSchedule).seq
	i := st.next.Add(1) - 1
	l := uint64(len(seq))
	pos := i % l
	steps := min(l, 2*uint64(len(svc.Replicas)))
	for k := range steps {
		j := pos + k
		if j >= l {
			j -= l
		}
		r := svc.Replicas[seq[j]]
		if !wasTried(tried, r) && h.Available(r) {
			return r
		}
	}
	// A replica of low weight may appear once in a long cycle; rather than
	// walk the whole cycle, go through the replicas in order.
	return walk(svc.Replicas, int(seq[pos]), h, tried)
}

// Prune forgets the schedules and counters of services that are not in
// keep.
func (p *WeightedRoundRobin) Prune(keep *snapshot.Snapshot) { p.services.prune(keep) }

// buildSchedule computes one cycle of smooth weighted round robin for svc,
// which must have replicas: each step adds every replica's weight to its
// current value, picks the highest (the first on ties) and subtracts the
// total from it.
func buildSchedule(svc *snapshot.Service) *schedule {
	w := make([]int64, len(svc.Replicas))
	for i, r := range svc.Replicas {
		w[i] = weight(r)
	}
	total := reduceWeights(w, maxSchedule)
	seq := make([]int32, total)
	cur := make([]int64, len(w))
	for k := range seq {
		best := 0
		for i := range cur {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq[k] = int32(best)
	}
	return &schedule{seq: seq}
}

// reduceWeights divides the positive weights w by their GCD and, if their
// sum still exceeds limit, scales them down proportionally (each staying at
// least 1) and divides by their new GCD. It returns the new sum.
func reduceWeights(w []int64, limit int64) int64 {
	total := divideByGCD(w)
	if total <= limit {
		return total
	}
	scale := float64(limit) / float64(total)
	for i, x := range w {
		w[i] = max(int64(float64(x)*scale), 1)
	}
	return divideByGCD(w)
}

// divideByGCD divides the positive weights w by their GCD and returns their
// new sum.
func divideByGCD(w []int64) int64 {
	var g int64
	for _, x := range w {
		g = gcd(g, x)
	}
	var total int64
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	return total
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
