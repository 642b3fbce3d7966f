package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// DefaultSweepInterval is how often Local.Run evicts idle keys when
// LocalConfig.SweepInterval is zero.
const DefaultSweepInterval = 10 * time.Second

// LocalConfig holds the tunables of a Local. The zero value is valid: idle
// keys are swept every DefaultSweepInterval by Run.
type LocalConfig struct {
	// SweepInterval is how often Run calls Sweep. Memory holds, at most, the
	// keys active in the last Per plus one SweepInterval. Zero means
	// DefaultSweepInterval.
	SweepInterval time.Duration
}

// Validate reports an invalid field of c.
func (c LocalConfig) Validate() error {
	if c.SweepInterval < 0 {
		return fmt.Errorf("local rate limiter: sweep_interval %v is negative; use 0 for the default %v", c.SweepInterval, DefaultSweepInterval)
	}
	return nil
}

// Local is an exact in-memory Limiter for one instance, using GCRA. It is
// safe for concurrent use.
//
// Each key's whole state is one "theoretical arrival time" (TAT): the time
// at which the key's allowance will be full again. A request at now is
// allowed if, after adding one emission interval (Per/Requests) to
// max(TAT, now), the TAT is at most Burst intervals ahead of now; the TAT is
// then advanced with a compare-and-swap loop. There is no lock per key and
// no allocation once the key exists. Keys live in a map of 256 shards, each
// read-locked for the lookup (never for I/O); the first request of a key
// write-locks its shard to insert it.
//
// Local keys state by the key string alone; the caller prefixes keys so that
// different limits never share one (see Limiter). If the Limit passed for a
// key changes, the state adapts rather than resets: the TAT is a point in
// time, so the time debt already accrued is reinterpreted under the new rate
// and burst. A key that was exhausted stays limited for the same time, then
// refills at the new rate.
//
// Memory is bounded by active keys only if Sweep runs periodically (Run does
// it).
type Local struct {
	cfg   LocalConfig
	cells table[string, cell]
}

var _ Limiter = (*Local)(nil)

// cell is one key's GCRA state. It is padded to a cache line so that the
// CAS traffic of one hot key does not slow its neighbours in memory.
type cell struct {
	// tat is the theoretical arrival time in Unix nanoseconds.
	tat atomic.Int64
	// per is the Per of the last Limit used with the key, in nanoseconds;
	// Sweep evicts the key once the TAT is more than per in the past.
	per atomic.Int64
	_   [64 - 16]byte
}

// NewLocal returns an empty Local. It fails if cfg is invalid.
func NewLocal(cfg LocalConfig) (*Local, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	l := &Local{cfg: cfg}
	l.cells.init()
	return l, nil
}

// Allow counts one request for key under limit at now; see Limiter. ctx is
// unused: Local does no I/O. The only error is for a limit that fails
// Validate. Cost: no allocation once the key exists; one shard read lock and
// one CAS (retried only under contention on the same key).
func (l *Local) Allow(_ context.Context, key string, limit Limit, now time.Time) (Decision, error) {
	if !limit.valid() {
		return Decision{}, fmt.Errorf("allow %q: %w", key, limit.Validate())
	}
	ns := now.UnixNano()
	sh := l.cells.shard(key)
	sh.mu.RLock()
	c := sh.m[key]
	if c != nil {
		// The read lock is held across the CAS so that Sweep, which evicts
		// under the write lock, never drops a key between our load and CAS.
		d := c.allow(limit, ns)
		sh.mu.RUnlock()
		return d, nil
	}
	sh.mu.RUnlock()

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c = sh.m[key]; c == nil {
		c = new(cell)
		// A TAT before any now makes the first request see a full allowance.
		c.tat.Store(math.MinInt64)
		sh.m[key] = c
	}
	return c.allow(limit, ns), nil
}

// allow is the GCRA step. limit must be valid.
func (c *cell) allow(limit Limit, now int64) Decision {
	if per := int64(limit.Per); c.per.Load() != per {
		c.per.Store(per)
	}
	t := limit.interval()
	b := limit.burst()
	tau := int64(b) * t // how far ahead of now the TAT may be
	for {
		tat := c.tat.Load()
		next := max(tat, now) + t
		ahead := next - now
		if ahead > tau {
			// Denied, and not counted: the TAT is left alone.
			wait := time.Duration(ahead - tau)
			return Decision{Limit: b, Reset: wait, RetryAfter: wait, Policy: limit}
		}
		if c.tat.CompareAndSwap(tat, next) {
			return Decision{
				Allowed:   true,
				Limit:     b,
				Remaining: int((tau - ahead) / t),
				Reset:     time.Duration(ahead),
				Policy:    limit,
			}
		}
	}
}

// Sweep forgets every key whose TAT is more than its Per before now: such a
// key has had a full allowance for a while, so forgetting it changes no
// decision. It returns the number of keys evicted. Each shard is
// write-locked while it is scanned, which briefly delays requests for keys
// in that shard only.
func (l *Local) Sweep(now time.Time) int {
	ns := now.UnixNano()
	n := 0
	for i := range l.cells.shards {
		sh := &l.cells.shards[i]
		sh.mu.Lock()
		for k, c := range sh.m {
			if ns-c.tat.Load() > c.per.Load() {
				delete(sh.m, k)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// Len returns the number of keys held, for metrics.
func (l *Local) Len() int {
	return l.cells.len()
}

// Run calls Sweep every SweepInterval, with the tick's time as now, until
// ctx ends; then it returns nil.
func (l *Local) Run(ctx context.Context) error {
	t := time.NewTicker(l.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			l.Sweep(now)
		}
	}
}
