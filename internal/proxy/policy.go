package proxy

import (
	"github.com/gatehouse-gw/gatehouse/internal/breaker"
	"github.com/gatehouse-gw/gatehouse/internal/retry"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// BreakerConfig is the breaker.Config of a compiled service, for
// breaker.New. A service whose breaker is disabled gets a Config that never
// trips: its replicas are still taken out by health checks and by an
// operator's ejection, and panic mode still applies.
func BreakerConfig(svc *snapshot.Service) breaker.Config {
	b := &svc.Breaker
	c := breaker.Config{
		ConsecutiveFailures:   b.ConsecutiveFailures,
		FailureRatio:          b.FailureRatio,
		Window:                b.Window,
		MinRequests:           b.MinRequests,
		BaseEjection:          b.BaseEjection,
		MaxEjection:           b.MaxEjection,
		MaxEjectedPercent:     b.MaxEjectedPercent,
		PanicThresholdPercent: b.PanicThresholdPercent,
	}
	if b.Disabled {
		c.ConsecutiveFailures, c.FailureRatio = breaker.Disabled, breaker.Disabled
	}
	return c
}

// retryPolicy is the retry.Policy of a compiled route policy: a copy of a
// few fields, without allocation.
func retryPolicy(r *snapshot.Retry) retry.Policy {
	return retry.Policy{
		Attempts:           r.Attempts,
		PerTryTimeout:      r.PerTryTimeout,
		Statuses:           r.Statuses,
		RetryNonIdempotent: r.RetryNonIdempotent,
		BackoffBase:        r.BackoffBase,
		BackoffMax:         r.BackoffMax,
		MaxReplayBody:      r.MaxBodyBytes,
	}
}

// budgetConfig is the retry.BudgetConfig of a compiled service budget. The
// configuration accepts ratios up to 10 but retry.Budget only up to 1 (it
// would replace a larger one by its default of 0.2), so larger ones count
// as 1.
func budgetConfig(b *snapshot.RetryBudget) retry.BudgetConfig {
	return retry.BudgetConfig{Ratio: min(b.Ratio, 1), MinPerSecond: b.MinPerSecond}
}
