package breaker

import (
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// Defaults applied to zero Config fields: the same values the snapshot
// compiler applies to a service's circuit_breaker settings (and the README
// documents), defined once there.
const (
	DefaultConsecutiveFailures   = snapshot.DefaultConsecutiveFailures
	DefaultFailureRatio          = snapshot.DefaultFailureRatio
	DefaultWindow                = snapshot.DefaultBreakerWindow
	DefaultMinRequests           = snapshot.DefaultMinRequests
	DefaultBaseEjection          = snapshot.DefaultBaseEjection
	DefaultMaxEjection           = snapshot.DefaultMaxEjection
	DefaultMaxEjectedPercent     = snapshot.DefaultMaxEjectedPercent
	DefaultPanicThresholdPercent = snapshot.DefaultPanicThresholdPercent
	DefaultProbeTimeout          = 30 * time.Second
)

// Disabled, as Config.ConsecutiveFailures, Config.FailureRatio or
// Config.PanicThresholdPercent, turns that trigger off.
const Disabled = -1

// Config tunes the breakers of one service. The zero value is useful: every
// zero field takes the default named in its comment (the Default* constants).
// A Config is only read; Breakers keeps a normalised copy per service.
type Config struct {
	// ConsecutiveFailures trips a replica after this many failures in a
	// row; a success resets the count. Zero means 5; Disabled (-1) turns the
	// trigger off.
	ConsecutiveFailures int
	// FailureRatio trips a replica when failures/requests over Window
	// reaches it, once Window holds at least MinRequests requests. It is in
	// (0, 1]. Zero means 0.5; Disabled (-1) turns the trigger off.
	FailureRatio float64
	// Window is the span of the ratio trigger. It slides in steps of a tenth
	// of itself. Zero means 10s.
	Window time.Duration
	// MinRequests is the request volume Window must hold before the ratio
	// trigger may trip. Zero means 20.
	MinRequests int
	// BaseEjection is the cool-down of a first ejection; each repeated
	// ejection doubles it (BaseEjection × 2^(n-1)) up to MaxEjection. Zero
	// means 30s.
	BaseEjection time.Duration
	// MaxEjection caps the cool-down. It is also the period after which a
	// healthy replica's ejection count decreases by one. Zero means 300s; it
	// must not be below BaseEjection.
	MaxEjection time.Duration
	// MaxEjectedPercent caps the share of a service's replicas the breakers
	// may eject at once; at least one replica may always be ejected. A trip
	// beyond the cap is suppressed. Zero means 50; at most 100.
	MaxEjectedPercent int
	// PanicThresholdPercent: when fewer than this share of a service's
	// replicas are available (neither ejected nor failing health checks),
	// the service balances over all of its replicas. Zero means 50;
	// Disabled (-1) never panics; at most 100.
	PanicThresholdPercent int
	// ProbeTimeout is how long a half-open probe may go without an outcome
	// before another probe is admitted (about twice the request timeout).
	// Zero means 30s.
	ProbeTimeout time.Duration
}

// Validate reports every bad field of c, naming the field, the value and
// what to use instead.
func (c Config) Validate() error {
	var errs []error
	if c.ConsecutiveFailures < Disabled {
		errs = append(errs, fmt.Errorf("breaker: ConsecutiveFailures %d is negative; use a positive count, 0 for the default of %d or %d to disable", c.ConsecutiveFailures, DefaultConsecutiveFailures, Disabled))
	}
	if c.FailureRatio != Disabled && (c.FailureRatio < 0 || c.FailureRatio > 1 || c.FailureRatio != c.FailureRatio) {
		errs = append(errs, fmt.Errorf("breaker: FailureRatio %v is outside (0, 1]; use 0 for the default of %v or %d to disable", c.FailureRatio, DefaultFailureRatio, Disabled))
	}
	if c.Window < 0 {
		errs = append(errs, fmt.Errorf("breaker: Window %v is negative; use 0 for the default of %v", c.Window, DefaultWindow))
	} else if c.Window > 0 && c.Window < buckets {
		errs = append(errs, fmt.Errorf("breaker: Window %v is too short; use at least %v", c.Window, time.Duration(buckets)))
	}
	if c.MinRequests < 0 {
		errs = append(errs, fmt.Errorf("breaker: MinRequests %d is negative; use 0 for the default of %d", c.MinRequests, DefaultMinRequests))
	}
	if c.BaseEjection < 0 {
		errs = append(errs, fmt.Errorf("breaker: BaseEjection %v is negative; use 0 for the default of %v", c.BaseEjection, DefaultBaseEjection))
	}
	if c.MaxEjection < 0 {
		errs = append(errs, fmt.Errorf("breaker: MaxEjection %v is negative; use 0 for the default of %v", c.MaxEjection, DefaultMaxEjection))
	}
	if n := c.withDefaults(); c.BaseEjection >= 0 && c.MaxEjection >= 0 && n.MaxEjection < n.BaseEjection {
		errs = append(errs, fmt.Errorf("breaker: MaxEjection %v is below BaseEjection %v; raise MaxEjection", n.MaxEjection, n.BaseEjection))
	}
	if c.MaxEjectedPercent < 0 || c.MaxEjectedPercent > 100 {
		errs = append(errs, fmt.Errorf("breaker: MaxEjectedPercent %d is outside 1..100; use 0 for the default of %d", c.MaxEjectedPercent, DefaultMaxEjectedPercent))
	}
	if c.PanicThresholdPercent < Disabled || c.PanicThresholdPercent > 100 {
		errs = append(errs, fmt.Errorf("breaker: PanicThresholdPercent %d is outside 1..100; use 0 for the default of %d or %d to disable", c.PanicThresholdPercent, DefaultPanicThresholdPercent, Disabled))
	}
	if c.ProbeTimeout < 0 {
		errs = append(errs, fmt.Errorf("breaker: ProbeTimeout %v is negative; use 0 for the default of %v", c.ProbeTimeout, DefaultProbeTimeout))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if c.FailureRatio == 0 {
		c.FailureRatio = DefaultFailureRatio
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MinRequests == 0 {
		c.MinRequests = DefaultMinRequests
	}
	if c.BaseEjection == 0 {
		c.BaseEjection = DefaultBaseEjection
	}
	if c.MaxEjection == 0 {
		c.MaxEjection = DefaultMaxEjection
	}
	if c.MaxEjectedPercent == 0 {
		c.MaxEjectedPercent = DefaultMaxEjectedPercent
	}
	if c.PanicThresholdPercent == 0 {
		c.PanicThresholdPercent = DefaultPanicThresholdPercent
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	return c
}

// settings is the normalised, immutable form of a Config that the hot path
// reads through one atomic pointer load. Durations are in nanoseconds;
// a disabled trigger is 0.
type settings struct {
	src          Config // as given, to detect changes
	consecutive  int32
	ratio        float64
	width        int64 // one window bucket
	window       time.Duration
	minRequests  int
	base, max    int64
	maxEjected   int // percent
	panicAt      int // percent; 0 never panics
	probeTimeout int64
	// maxEjections is the ejection count at which the cool-down reaches
	// max; the count does not grow past it, so that decay starts to
	// shorten the cool-down after one healthy period however long a
	// replica flapped.
	maxEjections int
}

// compile normalises c, which must be valid.
func compile(c Config) *settings {
	n := c.withDefaults()
	s := &settings{
		src:          c,
		window:       n.Window,
		width:        int64(n.Window) / buckets,
		minRequests:  n.MinRequests,
		base:         int64(n.BaseEjection),
		max:          int64(n.MaxEjection),
		maxEjected:   n.MaxEjectedPercent,
		probeTimeout: int64(n.ProbeTimeout),
	}
	if n.ConsecutiveFailures > 0 {
		s.consecutive = int32(min(n.ConsecutiveFailures, 1<<30))
	}
	if n.FailureRatio > 0 {
		s.ratio = n.FailureRatio
	}
	if n.PanicThresholdPercent > 0 {
		s.panicAt = n.PanicThresholdPercent
	}
	s.maxEjections = 1
	for s.cooldown(s.maxEjections) < s.max {
		s.maxEjections++
	}
	return s
}

// cooldown is the ejection time of the n-th ejection in a row:
// base × 2^(n-1), capped at max.
func (s *settings) cooldown(n int) int64 {
	d := s.base
	for i := 1; i < n; i++ {
		if d >= s.max/2 {
			return s.max
		}
		d *= 2
	}
	return min(d, s.max)
}

// capacity is how many of n replicas may be ejected at once.
func (s *settings) capacity(n int) int {
	return max(1, n*s.maxEjected/100)
}

// panics reports whether a service with n replicas of which unavailable are
// out of rotation is in panic mode.
func (s *settings) panics(n, unavailable int) bool {
	return s.panicAt > 0 && n > 0 && (n-unavailable)*100 < s.panicAt*n
}
