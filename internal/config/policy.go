package config

// LoadBalancer is a service's balancing policy. The zero value is round robin.
type LoadBalancer struct {
	// Policy is round_robin (default), weighted_round_robin (smooth, by
	// weight), least_connections, p2c_ewma (power of two choices on
	// in-flight × latency) or consistent_hash.
	Policy string `json:"policy,omitempty"`
	// HashOn is the consistent_hash key: "client_ip" (default),
	// "header:NAME" or "cookie:NAME".
	HashOn string `json:"hash_on,omitempty"`
}

// CircuitBreaker configures per-replica outlier detection. Zero fields take
// the documented defaults.
type CircuitBreaker struct {
	// Disabled turns the breaker off for the service.
	Disabled bool `json:"disabled,omitempty"`
	// ConsecutiveFailures ejects a replica after this many failures in a
	// row (default 5; -1 disables this trigger).
	ConsecutiveFailures int `json:"consecutive_failures,omitempty"`
	// FailureRatio ejects a replica whose share of failures over Window
	// reaches it, once MinRequests were seen (default 0.5; -1 disables).
	FailureRatio float64 `json:"failure_ratio,omitempty"`
	// Window is the sliding window of the ratio trigger (default 10s).
	Window Duration `json:"window,omitzero"`
	// MinRequests is the volume below which the ratio is not judged
	// (default 20).
	MinRequests int `json:"min_requests,omitempty"`
	// BaseEjection is the first cool-down (default 30s); each repeated
	// ejection lasts longer, up to MaxEjection (default 300s).
	BaseEjection Duration `json:"base_ejection,omitzero"`
	MaxEjection  Duration `json:"max_ejection,omitzero"`
	// MaxEjectedPercent caps the share of replicas ejected at once
	// (default 50; at least one replica can always be ejected).
	MaxEjectedPercent int `json:"max_ejected_percent,omitempty"`
	// PanicThresholdPercent: below this share of available replicas the
	// service balances over all of them, ejected or not (default 50; -1
	// disables panic mode).
	PanicThresholdPercent int `json:"panic_threshold_percent,omitempty"`
	// FailureStatuses are the upstream statuses that count as failures
	// (default: every 5xx).
	FailureStatuses []int `json:"failure_statuses,omitempty"`
}

// HealthCheck configures active probing of every replica.
type HealthCheck struct {
	// Path is requested with GET (default "/").
	Path string `json:"path,omitempty"`
	// Interval between probes (default 10s) and Timeout of one (default 2s).
	Interval Duration `json:"interval,omitzero"`
	Timeout  Duration `json:"timeout,omitzero"`
	// HealthyThreshold consecutive successes (default 2) re-admit a
	// replica; UnhealthyThreshold consecutive failures (default 3) remove it.
	HealthyThreshold   int `json:"healthy_threshold,omitempty"`
	UnhealthyThreshold int `json:"unhealthy_threshold,omitempty"`
	// ExpectedStatuses count as healthy (default: any 2xx or 3xx).
	ExpectedStatuses []int `json:"expected_statuses,omitempty"`
}

// RetryBudget caps retries to a share of the live request rate, so that
// retries cannot multiply an outage.
type RetryBudget struct {
	// Ratio of retries to requests over a 10 s window (default 0.2).
	Ratio float64 `json:"ratio,omitempty"`
	// MinPerSecond is a floor of retries always allowed (default 3).
	MinPerSecond float64 `json:"min_per_second,omitempty"`
}

// Retry says when a failed attempt is retried on another replica. A request
// that never reached a replica (connection refused, DNS, TLS handshake) is
// always retried; a timeout or a retryable status only for idempotent
// methods, or on routes with RetryNonIdempotent.
type Retry struct {
	// Attempts in all, the first included (default 3; 1 disables retries).
	Attempts int `json:"attempts,omitempty"`
	// PerTryTimeout bounds each attempt until response headers (default:
	// none; the route timeout bounds them all).
	PerTryTimeout Duration `json:"per_try_timeout,omitzero"`
	// Statuses that are retried (default 502, 503, 504).
	Statuses []int `json:"statuses,omitempty"`
	// RetryNonIdempotent allows retrying POST and PATCH after they may
	// have reached a replica.
	RetryNonIdempotent bool `json:"retry_non_idempotent,omitempty"`
	// BackoffBase (default 25ms) and BackoffMax (default 250ms) shape the
	// jittered exponential pause between attempts.
	BackoffBase Duration `json:"backoff_base,omitzero"`
	BackoffMax  Duration `json:"backoff_max,omitzero"`
	// MaxBodyBytes is the largest request body kept for replay (default
	// 65536); requests with larger bodies are not retried once sent.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`
}

// Auth requires an API key. The key is read from "Authorization: Bearer
// KEY", a bare "Authorization: KEY", the Header if set, or the Query
// parameter if set.
type Auth struct {
	// APIKey turns key authentication on.
	APIKey bool `json:"api_key"`
	// Header is an extra header to read the key from, e.g. X-API-Key.
	Header string `json:"header,omitempty"`
	// Query is a query parameter to read the key from, e.g. api_key.
	Query string `json:"query,omitempty"`
}

// RateLimit allows Requests per Per with bursts up to Burst.
type RateLimit struct {
	Requests int      `json:"requests"`
	Per      Duration `json:"per"`
	// Burst is how many requests may come at once (default Requests).
	Burst int `json:"burst,omitempty"`
}
