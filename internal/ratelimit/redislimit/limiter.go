// Package redislimit is a cluster-wide rate limiter: a ratelimit.Limiter
// whose counts live in Redis, so that any number of Gatehouse instances
// sharing one Redis hold one limit together.
//
// It makes the same decisions as ratelimit.Local (GCRA, same Decision for
// the same Limit and the same history), but each key's state is one Redis
// string, changed by one Lua script per request:
//
//	<Prefix><key>   string   the key's theoretical arrival time (TAT), in
//	                         decimal Unix nanoseconds; it expires at the TAT
//	                         (rounded up to the millisecond), when the
//	                         allowance is full again and the key means
//	                         nothing more
//
// The script reads the time from Redis (TIME), not from the instance, so
// that instances with skewed clocks agree; the now argument of Allow is used
// by the fallback only. Redis counts in microseconds, which nanosecond
// arithmetic represents exactly: decisions equal Local's at the same
// instant. Lua numbers are doubles, so the arithmetic is exact while a
// limit's allowance (Burst × Per/Requests) is under 2^53ns, about 104 days;
// beyond that times are rounded to a few parts in 10^16.
//
// # When Redis fails
//
// Allow never fails because Redis does. A call that errs or takes longer
// than Config.Timeout is decided by Config.Fallback (typically a
// ratelimit.Local) under this instance's share of the limit: Requests and
// Burst divided by Config.Share, at least 1. For the next Config.Backoff
// every request goes straight to the fallback; after it one request at a
// time tries Redis again (a probe) while the others keep using the
// fallback, so a hung Redis costs one Timeout per Backoff, not one per
// request. The first failure and the recovery are logged, not each request.
//
// A fallback Decision reports what this instance enforces in Limit,
// Remaining, Reset and RetryAfter (so that clients pace themselves against
// the allowance that actually applies, and Remaining never exceeds Limit),
// but reports the cluster-wide limit in Policy: the policy is the contract a
// client is under, the same from every instance and in every state, while
// the share is a transient detail of an outage that changes with the number
// of instances.
//
// Counting across an outage is approximate, never to the point of refusing
// what the limit allows for long: the fallback's counts are not written to
// Redis (a key may get up to its share extra when Redis returns), and a
// script that timed out may still run when a stalled Redis resumes,
// counting a request the fallback decided. go-redis retries a command after
// a network error (Options.MaxRetries), which may count a request twice;
// set MaxRetries to -1 to rule that out at the cost of a stale pooled
// connection sending one Backoff to the fallback.
//
// Requirements: Redis 5 or later (scripts replicated by effect, so that they
// may call TIME before writing). Each script touches only the key it is
// given, so Redis Cluster works as well as a standalone or Sentinel-managed
// server.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-gw/gatehouse/internal/ratelimit"
)

// Defaults of the Config fields.
const (
	DefaultPrefix  = "gatehouse:rl:"
	DefaultTimeout = 100 * time.Millisecond
	DefaultBackoff = time.Second
)

// Config configures a Limiter. Client and Fallback are required; the zero
// value of every other field selects its documented default.
type Config struct {
	// Client is the connection to Redis: a *redis.Client (redis.NewClient,
	// or redis.NewFailoverClient for Sentinel) or a *redis.ClusterClient.
	// The Limiter does not close it.
	//
	// Its ContextTimeoutEnabled must be true: Timeout reaches go-redis as a
	// context deadline, which it otherwise ignores, and a hung Redis would
	// then hold requests for the client's ReadTimeout (3s by default).
	Client redis.UniversalClient
	// Prefix starts the name of every Redis key the Limiter uses, so that
	// several systems (or Gatehouse clusters) can share one database:
	// limiters with different prefixes count apart as long as no prefix is
	// a prefix of another. Empty means DefaultPrefix, "gatehouse:rl:".
	Prefix string
	// Fallback decides while Redis cannot, with the same key and this
	// instance's share of the limit. Typically a *ratelimit.Local, whose
	// Run the caller runs. Required.
	Fallback ratelimit.Limiter
	// Share returns how many instances share the limit right now; the
	// fallback then enforces Requests/Share per Per and Burst/Share, each
	// at least 1. It is called on every request decided by the fallback,
	// from many goroutines at once, so it must be cheap and safe for
	// concurrent use; a result below 1 counts as 1. Nil means 1: the
	// fallback enforces the whole limit on this instance.
	Share func() int
	// Timeout bounds one Redis call on the request path; a call that takes
	// longer is decided by the fallback. Zero means DefaultTimeout, 100ms.
	Timeout time.Duration
	// Backoff is how long, after a Redis failure, requests go straight to
	// the fallback before Redis is tried again. Zero means DefaultBackoff,
	// 1s.
	Backoff time.Duration
	// Logger receives the first failure of an outage and the recovery. Nil
	// discards.
	Logger *slog.Logger
}

// Validate reports every missing collaborator and invalid tunable of c,
// including a client that would not honour Timeout.
func (c Config) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("redislimit: Client is nil; build one with redis.NewClient or redis.NewFailoverClient"))
	} else if err := checkClient(c.Client); err != nil {
		errs = append(errs, err)
	}
	if c.Fallback == nil {
		errs = append(errs, errors.New("redislimit: Fallback is nil; use a *ratelimit.Local (ratelimit.NewLocal) to decide while Redis is unavailable"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("redislimit: Timeout %v is negative; use 0 for the default of %v", c.Timeout, DefaultTimeout))
	}
	if c.Backoff < 0 {
		errs = append(errs, fmt.Errorf("redislimit: Backoff %v is negative; use 0 for the default of %v", c.Backoff, DefaultBackoff))
	}
	return errors.Join(errs...)
}

// checkClient reports a client that ignores context deadlines, for the
// client types whose options can be read.
func checkClient(c redis.UniversalClient) error {
	var enabled bool
	switch o := c.(type) {
	case interface{ Options() *redis.Options }: // plain and Sentinel failover
		enabled = o.Options().ContextTimeoutEnabled
	case interface{ Options() *redis.ClusterOptions }:
		enabled = o.Options().ContextTimeoutEnabled
	default:
		return nil
	}
	if !enabled {
		return errors.New("redislimit: the client's ContextTimeoutEnabled is false, so go-redis would ignore Timeout and a hung Redis would hold requests for its ReadTimeout; set ContextTimeoutEnabled: true in its options")
	}
	return nil
}

// Limiter is a ratelimit.Limiter counting in Redis, shared by every Limiter
// with the same Prefix on the same Redis, in any process. It is safe for
// concurrent use.
//
// Cost on the hot path: one round trip (EVALSHA of a short script; EVAL
// once after Redis lost its script cache), bounded by Timeout, and 17 small
// allocations, 6 of them go-redis's (see BenchmarkAllow). While degraded,
// the cost of the fallback plus a call of Share: no allocation with a
// ratelimit.Local.
type Limiter struct {
	client   redis.UniversalClient
	prefix   string
	fallback ratelimit.Limiter
	share    func() int
	timeout  time.Duration
	log      *slog.Logger
	health   *health
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter. It fails, listing every problem, if cfg is
// invalid. It does no I/O: the script is sent to Redis by the first Allow.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Limiter{
		client:   cfg.Client,
		prefix:   cfg.Prefix,
		fallback: cfg.Fallback,
		share:    cfg.Share,
		timeout:  cfg.Timeout,
		log:      cfg.Logger,
		health:   newHealth(cfg.Backoff, time.Now),
	}, nil
}

// Allow counts one request for key under limit; see ratelimit.Limiter. The
// decision is Redis's, at Redis's time, unless Redis fails, is too slow or
// is backing off: the fallback then decides at now (see the package doc).
// The only error is for a limit that fails Validate, or one the fallback
// returns.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit, now time.Time) (ratelimit.Decision, error) {
	if err := limit.Validate(); err != nil {
		return ratelimit.Decision{}, fmt.Errorf("allow %q: %w", key, err)
	}
	probe, ok := l.health.admit()
	if !ok {
		return l.fallbackAllow(ctx, key, limit, now)
	}
	d, err := l.redisAllow(ctx, key, limit)
	switch {
	case err == nil:
		if since, recovered := l.health.succeeded(probe); recovered {
			l.log.Info("redis rate limiter recovered; counting in redis again", "since_last_failure", since)
		}
		return d, nil
	case ctx.Err() != nil:
		// The caller gave up (or its own deadline passed first): that says
		// nothing about Redis, so it neither starts nor prolongs a backoff.
		if probe {
			l.health.abandon()
		}
	default:
		if l.health.failed(probe) {
			l.log.Warn("redis rate limiter unavailable; deciding with the local fallback",
				"key", key, "backoff", l.health.backoff, "error", err)
		}
	}
	return l.fallbackAllow(ctx, key, limit, now)
}

// Degraded reports whether requests are being decided by the fallback: from
// a failed Redis call until the next successful one. During the Backoff
// after a failure every request uses the fallback; after it, all but the
// one probing Redis do. It is cheap (one atomic load), for health checks
// and metrics.
func (l *Limiter) Degraded() bool {
	return l.health.degraded()
}
