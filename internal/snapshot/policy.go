package snapshot

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

// Defaults of the resilience settings, applied by Compile to every zero
// field. The README's configuration reference lists the same values.
const (
	DefaultConsecutiveFailures   = 5
	DefaultFailureRatio          = 0.5
	DefaultBreakerWindow         = 10 * time.Second
	DefaultMinRequests           = 20
	DefaultBaseEjection          = 30 * time.Second
	DefaultMaxEjection           = 300 * time.Second
	DefaultMaxEjectedPercent     = 50
	DefaultPanicThresholdPercent = 50
	DefaultHealthPath            = "/"
	DefaultHealthInterval        = 10 * time.Second
	DefaultHealthTimeout         = 2 * time.Second
	DefaultHealthyThreshold      = 2
	DefaultUnhealthyThreshold    = 3
	DefaultRetryBudgetRatio      = 0.2
	DefaultRetryBudgetMin        = 3.0
	DefaultAttempts              = 3
	DefaultBackoffBase           = 25 * time.Millisecond
	DefaultBackoffMax            = 250 * time.Millisecond
	DefaultMaxReplayBody         = 64 << 10
)

// Balancer is a service's compiled load-balancing policy.
type Balancer struct {
	// Policy is one of config.PolicyNames(); never empty after Compile.
	Policy string
	// HashOn is the consistent-hash key source: "client_ip", "header" or
	// "cookie"; HashName is the header or cookie name.
	HashOn, HashName string
}

// Breaker is a service's compiled circuit-breaker settings. A trigger set
// to -1 is disabled.
type Breaker struct {
	Disabled              bool
	ConsecutiveFailures   int
	FailureRatio          float64
	Window                time.Duration
	MinRequests           int
	BaseEjection          time.Duration
	MaxEjection           time.Duration
	MaxEjectedPercent     int
	PanicThresholdPercent int
	// FailureStatuses are the statuses counted as failures; nil means
	// every 5xx.
	FailureStatuses []int
}

// IsFailure reports whether an upstream status counts against a replica.
func (b *Breaker) IsFailure(status int) bool {
	if b.FailureStatuses == nil {
		return status >= 500
	}
	return slices.Contains(b.FailureStatuses, status)
}

// HealthCheck is a service's compiled active health check.
type HealthCheck struct {
	Path               string
	Interval, Timeout  time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
	// ExpectedStatuses nil means any 2xx or 3xx.
	ExpectedStatuses []int
}

// RetryBudget is a service's compiled retry budget.
type RetryBudget struct {
	Ratio        float64
	MinPerSecond float64
}

// Retry is a route's compiled retry policy.
type Retry struct {
	// Attempts in all, the first included; 1 means no retries.
	Attempts           int
	PerTryTimeout      time.Duration
	Statuses           []int
	RetryNonIdempotent bool
	BackoffBase        time.Duration
	BackoffMax         time.Duration
	MaxBodyBytes       int64
}

// Auth is a route's compiled key requirement; nil on a route means no key
// is required.
type Auth struct {
	// Header and Query are extra places to read the key from, besides
	// Authorization; empty when unused. Header is canonical.
	Header, Query string
}

// RateLimit is a compiled route rate limit; Burst is never zero.
type RateLimit struct {
	Requests int
	Per      time.Duration
	Burst    int
}

func compileBalancer(lb config.LoadBalancer) Balancer {
	b := Balancer{Policy: cmp.Or(lb.Policy, "round_robin")}
	if b.Policy == "consistent_hash" {
		b.HashOn = "client_ip"
		if kind, name, ok := strings.Cut(lb.HashOn, ":"); ok {
			b.HashOn, b.HashName = kind, name
			if kind == "header" {
				b.HashName = http.CanonicalHeaderKey(name)
			}
		}
	}
	return b
}

func compileBreaker(cb config.CircuitBreaker) Breaker {
	return Breaker{
		Disabled:              cb.Disabled,
		ConsecutiveFailures:   cmp.Or(cb.ConsecutiveFailures, DefaultConsecutiveFailures),
		FailureRatio:          cmp.Or(cb.FailureRatio, DefaultFailureRatio),
		Window:                cmp.Or(cb.Window.Std(), DefaultBreakerWindow),
		MinRequests:           cmp.Or(cb.MinRequests, DefaultMinRequests),
		BaseEjection:          cmp.Or(cb.BaseEjection.Std(), DefaultBaseEjection),
		MaxEjection:           max(cmp.Or(cb.MaxEjection.Std(), DefaultMaxEjection), cmp.Or(cb.BaseEjection.Std(), DefaultBaseEjection)),
		MaxEjectedPercent:     cmp.Or(cb.MaxEjectedPercent, DefaultMaxEjectedPercent),
		PanicThresholdPercent: cmp.Or(cb.PanicThresholdPercent, DefaultPanicThresholdPercent),
		FailureStatuses:       slices.Clone(cb.FailureStatuses),
	}
}

func compileHealthCheck(hc *config.HealthCheck) *HealthCheck {
	if hc == nil {
		return nil
	}
	return &HealthCheck{
		Path:               cmp.Or(hc.Path, DefaultHealthPath),
		Interval:           cmp.Or(hc.Interval.Std(), DefaultHealthInterval),
		Timeout:            cmp.Or(hc.Timeout.Std(), DefaultHealthTimeout),
		HealthyThreshold:   cmp.Or(hc.HealthyThreshold, DefaultHealthyThreshold),
		UnhealthyThreshold: cmp.Or(hc.UnhealthyThreshold, DefaultUnhealthyThreshold),
		ExpectedStatuses:   slices.Clone(hc.ExpectedStatuses),
	}
}

func compileRetry(r config.Retry) Retry {
	statuses := slices.Clone(r.Statuses)
	if statuses == nil {
		statuses = []int{502, 503, 504}
	}
	return Retry{
		Attempts:           cmp.Or(r.Attempts, DefaultAttempts),
		PerTryTimeout:      r.PerTryTimeout.Std(),
		Statuses:           statuses,
		RetryNonIdempotent: r.RetryNonIdempotent,
		BackoffBase:        cmp.Or(r.BackoffBase.Std(), DefaultBackoffBase),
		BackoffMax:         max(cmp.Or(r.BackoffMax.Std(), DefaultBackoffMax), cmp.Or(r.BackoffBase.Std(), DefaultBackoffBase)),
		MaxBodyBytes:       cmp.Or(r.MaxBodyBytes, DefaultMaxReplayBody),
	}
}

// compileAuth picks the route's auth, else its service's.
func compileAuth(route, service *config.Auth) *Auth {
	a := route
	if a == nil {
		a = service
	}
	if a == nil || !a.APIKey {
		return nil
	}
	out := &Auth{Query: a.Query}
	if a.Header != "" {
		out.Header = http.CanonicalHeaderKey(a.Header)
	}
	return out
}

func compileRateLimit(rl *config.RateLimit) *RateLimit {
	if rl == nil {
		return nil
	}
	return &RateLimit{Requests: rl.Requests, Per: rl.Per.Std(), Burst: cmp.Or(rl.Burst, rl.Requests)}
}
