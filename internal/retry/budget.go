package retry

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults applied to zero fields of BudgetConfig.
const (
	// DefaultBudgetRatio is the share of requests that may be retried.
	DefaultBudgetRatio = 0.2
	// DefaultBudgetMinPerSecond is the retry rate always allowed.
	DefaultBudgetMinPerSecond = 3
	// DefaultBudgetWindow is the span over which requests and retries count.
	DefaultBudgetWindow = 10 * time.Second
	// minBudgetWindow keeps a bucket at 10ms or more, so that the 32-bit
	// bucket epoch wraps only after 497 days.
	minBudgetWindow = 100 * time.Millisecond
)

// buckets is the number of slices of a Budget's window. The window slides by
// one bucket at a time, so counts are exact to within Window/buckets.
const buckets = 10

// BudgetConfig tunes a Budget. The zero value is useful: retries may add 20%
// to the requests of the last 10 seconds, plus 3 per second.
type BudgetConfig struct {
	// Ratio is the share of requests in the window that may be retried, in
	// [0, 1]. Zero means DefaultBudgetRatio.
	Ratio float64
	// MinPerSecond is a floor, in retries per second, allowed even with
	// little traffic, so that a quiet service can still retry. Zero means
	// DefaultBudgetMinPerSecond.
	MinPerSecond float64
	// Window is how far back requests and retries are counted, at least
	// 100ms. Zero means DefaultBudgetWindow.
	Window time.Duration
}

// Validate reports every invalid field of c, naming the field and value.
func (c BudgetConfig) Validate() error {
	var errs []error
	if math.IsNaN(c.Ratio) || c.Ratio < 0 || c.Ratio > 1 {
		errs = append(errs, fmt.Errorf("ratio %v: must be between 0 and 1 (0 means %v)", c.Ratio, DefaultBudgetRatio))
	}
	if math.IsNaN(c.MinPerSecond) || math.IsInf(c.MinPerSecond, 0) || c.MinPerSecond < 0 {
		errs = append(errs, fmt.Errorf("min_per_second %v: must be a positive number (0 means %v)", c.MinPerSecond, DefaultBudgetMinPerSecond))
	}
	if c.Window != 0 && c.Window < minBudgetWindow {
		errs = append(errs, fmt.Errorf("window %s: must be at least %s (0 means %s)", c.Window, minBudgetWindow, DefaultBudgetWindow))
	}
	return errors.Join(errs...)
}

// resolved returns c with defaults in place of zero and invalid fields.
func (c BudgetConfig) resolved() BudgetConfig {
	if math.IsNaN(c.Ratio) || c.Ratio <= 0 || c.Ratio > 1 {
		c.Ratio = DefaultBudgetRatio
	}
	if math.IsNaN(c.MinPerSecond) || math.IsInf(c.MinPerSecond, 0) || c.MinPerSecond <= 0 {
		c.MinPerSecond = DefaultBudgetMinPerSecond
	}
	if c.Window < minBudgetWindow {
		c.Window = DefaultBudgetWindow
	}
	return c
}

// Budget limits the retries of one service to a share of its live traffic,
// so that retries cannot multiply an outage: a retry is allowed while the
// retries in the window are fewer than Ratio × requests in the window +
// MinPerSecond × Window. The window slides in steps of Window/10.
//
// A Budget is safe for concurrent use; Request and TryRetry take no lock and
// do not allocate (a few atomic operations on the current bucket). Times are
// passed in by the caller; they may differ slightly between goroutines.
type Budget struct {
	cfg   BudgetConfig // resolved
	width int64        // bucket width in nanoseconds
	floor float64      // MinPerSecond × Window in seconds
	// requests and retries count per bucket; see counter.
	requests [buckets]counter
	retries  [buckets]counter
}

// NewBudget returns an empty Budget. Fields of cfg that are zero or do not
// pass Validate take their defaults.
func NewBudget(cfg BudgetConfig) *Budget {
	cfg = cfg.resolved()
	return &Budget{
		cfg:   cfg,
		width: int64(cfg.Window) / buckets,
		floor: cfg.MinPerSecond * cfg.Window.Seconds(),
	}
}

// Config returns the configuration in effect, with defaults filled in.
func (b *Budget) Config() BudgetConfig { return b.cfg }

// Request records one original (not retried) request at now.
func (b *Budget) Request(now time.Time) {
	epoch, slot := b.bucket(now)
	b.requests[slot].add(epoch)
}

// TryRetry reports whether one more retry at now fits in the budget and, if
// it does, records it. Concurrent callers never get more retries allowed than
// the bound, as long as their clocks agree to within a bucket.
func (b *Budget) TryRetry(now time.Time) bool {
	epoch, slot := b.bucket(now)
	// Count first, check after: of concurrent callers, the last to check sees
	// every retry allowed before it, so the bound cannot be overrun.
	got := b.retries[slot].add(epoch)
	requests, retries := b.counts(epoch)
	if retries > 0 {
		retries-- // this one
	}
	if float64(retries) < b.cfg.Ratio*float64(requests)+b.floor {
		return true
	}
	b.retries[slot].sub(got)
	return false
}

// Counts returns the requests and retries counted in the window ending at
// now, for metrics and the admin API.
func (b *Budget) Counts(now time.Time) (requests, retries uint64) {
	epoch, _ := b.bucket(now)
	return b.counts(epoch)
}

func (b *Budget) bucket(now time.Time) (epoch uint32, slot int) {
	idx := now.UnixNano() / b.width
	return uint32(idx), int(uint64(idx) % buckets)
}

func (b *Budget) counts(epoch uint32) (requests, retries uint64) {
	for i := range buckets {
		requests += b.requests[i].count(epoch)
		retries += b.retries[i].count(epoch)
	}
	return requests, retries
}

// counter is the count of one bucket. Its word holds the bucket's epoch (the
// low 32 bits of now/width) in the high half and the count in the low half,
// so that moving the bucket to a new epoch and counting are one
// compare-and-swap: no count is lost to a concurrent reset.
type counter struct {
	v atomic.Uint64
}

// add counts one event in epoch and returns the epoch it was counted in: a
// newer epoch already in the bucket (a caller whose clock is ahead) is kept.
func (c *counter) add(epoch uint32) uint32 {
	for {
		old := c.v.Load()
		e, n := uint32(old>>32), uint32(old)
		next := uint64(epoch)<<32 | 1
		if e == epoch || int32(e-epoch) > 0 {
			if n == math.MaxUint32 {
				return e // saturated
			}
			epoch, next = e, old+1
		}
		if c.v.CompareAndSwap(old, next) {
			return epoch
		}
	}
}

// sub takes back one event counted in epoch, unless the bucket has moved on.
func (c *counter) sub(epoch uint32) {
	for {
		old := c.v.Load()
		if uint32(old>>32) != epoch || uint32(old) == 0 {
			return
		}
		if c.v.CompareAndSwap(old, old-1) {
			return
		}
	}
}

// count returns the bucket's count if its epoch is in the window ending at
// epoch. An epoch slightly ahead (another caller's clock) counts too.
func (c *counter) count(epoch uint32) uint64 {
	v := c.v.Load()
	age := int32(epoch - uint32(v>>32))
	if age <= -buckets || age >= buckets {
		return 0
	}
	return uint64(uint32(v))
}

// Budgets holds one Budget per service, created on first use. The zero
// value is ready to use and safe for concurrent use; in the steady state For
// takes no lock and does not allocate.
type Budgets struct {
	m sync.Map // service name → *Budget
}

// For returns the Budget of service, creating it with cfg on first use. A
// cfg that differs (after defaults) from the one the Budget was made with
// replaces the Budget, and its counts, with a new one.
func (bs *Budgets) For(service string, cfg BudgetConfig) *Budget {
	cfg = cfg.resolved()
	for {
		v, ok := bs.m.Load(service)
		if !ok {
			v, _ = bs.m.LoadOrStore(service, NewBudget(cfg))
		}
		b := v.(*Budget)
		if b.cfg == cfg {
			return b
		}
		nb := NewBudget(cfg)
		if bs.m.CompareAndSwap(service, v, nb) {
			return nb
		}
	}
}

// Retain drops the Budgets of services for which keep returns false, such as
// services that left the configuration.
func (bs *Budgets) Retain(keep func(service string) bool) {
	bs.m.Range(func(k, _ any) bool {
		if name := k.(string); !keep(name) {
			bs.m.Delete(name)
		}
		return true
	})
}
