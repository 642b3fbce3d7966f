package balance

import (
	"sync/atomic"
	"time"
)

// ewmaAlpha is the weight of a new latency sample in Load's moving average,
// as the fraction ewmaAlphaNum/ewmaAlphaDen (0.3): a replica whose latency
// jumps is tracked to within 10% of the new value after 7 samples.
const (
	ewmaAlphaNum = 3
	ewmaAlphaDen = 10
)

// Load is the runtime load of one replica: the number of attempts in flight
// and an exponentially weighted moving average of their latency. It belongs
// to the data plane's per-replica state, which survives snapshot swaps.
//
// The zero value is ready to use: nothing in flight, latency unknown. Load
// is safe for concurrent use; every method is a few atomic operations and
// does not allocate.
type Load struct {
	inFlight atomic.Int64
	ewma     atomic.Int64 // nanoseconds; 0 until the first sample
}

// Begin records the start of an attempt on the replica. Every Begin must be
// followed by exactly one End.
func (l *Load) Begin() { l.inFlight.Add(1) }

// End records the end of an attempt that took latency, measured by the
// caller with its own clock. It folds latency into the average with weight
// 0.3 (the first sample is taken as is); a negative latency counts as 0.
func (l *Load) End(latency time.Duration) {
	l.inFlight.Add(-1)
	lat := max(int64(latency), 0)
	for {
		old := l.ewma.Load()
		next := lat
		if old != 0 {
			next = old + (lat-old)*ewmaAlphaNum/ewmaAlphaDen
		}
		// 0 means "no sample yet"; a known average is at least 1ns.
		next = max(next, 1)
		if l.ewma.CompareAndSwap(old, next) {
			return
		}
	}
}

// InFlight returns the number of attempts begun and not yet ended.
func (l *Load) InFlight() int64 { return l.inFlight.Load() }

// EWMA returns the moving average of latency, or 0 before the first End.
// Pickers treat 0 as unknown, not as fast.
func (l *Load) EWMA() time.Duration { return time.Duration(l.ewma.Load()) }
