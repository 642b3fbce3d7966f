package balance

import (
	"math/rand/v2"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

var _ Picker = (*P2CEWMA)(nil)

// sampleSize bounds the candidates P2CEWMA holds on the stack; beyond it,
// reservoir sampling keeps a uniform random subset of that size, so the two
// choices stay uniform over all candidates.
const sampleSize = 64

// P2CEWMA picks by the power of two choices: it draws two distinct
// candidates at random and takes the one with the lower score
// (in-flight + 1) × latency EWMA ÷ weight; with a single candidate it takes
// that one. A replica whose latency is still unknown (no completed attempt)
// is scored with the other candidate's latency, so the choice between them
// falls to their in-flight counts: a new replica is tried at once without
// being flooded before its first answer. With both unknown, the same holds.
//
// The zero value is ready to use and safe for concurrent use. Pick reads
// each candidate's availability once, draws at most two random numbers for
// services of up to 64 replicas from math/rand/v2's lock-free per-thread
// source, and does not allocate. It keeps no per-service state.
type P2CEWMA struct{}

// NewP2CEWMA returns a P2CEWMA.
func NewP2CEWMA() *P2CEWMA { return &P2CEWMA{} }

// Pick returns the better of two random candidates of svc; see Picker. key
// is ignored.
func (p *P2CEWMA) Pick(svc *snapshot.Service, h Health, _ uint64, tried []*snapshot.Replica) *snapshot.Replica {
	if svc == nil {
		return nil
	}
	rs := svc.Replicas
	var buf [sampleSize]int32
	m := sample(rs, h, tried, true, &buf)
	if m == 0 {
		m = sample(rs, h, tried, false, &buf)
	}
	switch m {
	case 0:
		return nil
	case 1:
		return rs[buf[0]]
	}
	m = min(m, sampleSize)
	a := rand.IntN(m)
	b := rand.IntN(m - 1)
	if b >= a {
		b++
	}
	x, y := rs[buf[a]], rs[buf[b]]
	if lower(h, y, x) {
		return y
	}
	return x
}

// sample stores into buf the indices of the untried replicas of rs (only
// the available ones if available is set) and returns how many there are;
// when there are more than fit, buf holds a uniform random subset.
func sample(rs []*snapshot.Replica, h Health, tried []*snapshot.Replica, available bool, buf *[sampleSize]int32) int {
	m := 0
	for i, r := range rs {
		if wasTried(tried, r) || (available && !h.Available(r)) {
			continue
		}
		m++
		if m <= sampleSize {
			buf[m-1] = int32(i)
		} else if j := rand.IntN(m); j < sampleSize {
			buf[j] = int32(i)
		}
	}
	return m
}

// lower reports whether x scores strictly lower than y.
func lower(h Health, x, y *snapshot.Replica) bool {
	lx, ly := h.Load(x), h.Load(y)
	ex, ey := lx.EWMA(), ly.EWMA()
	switch {
	case ex == 0 && ey == 0:
		ex, ey = 1, 1
	case ex == 0:
		ex = ey
	case ey == 0:
		ey = ex
	}
	// float64: (in-flight + 1) × nanoseconds can exceed int64.
	sx := float64(max(lx.InFlight(), 0)+1) * float64(ex) / float64(weight(x))
	sy := float64(max(ly.InFlight(), 0)+1) * float64(ey) / float64(weight(y))
	return sx < sy
}
