package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidatePoliciesValid(t *testing.T) {
	cfg := valid()
	cfg.Services[0].LoadBalancer = LoadBalancer{Policy: "consistent_hash", HashOn: "header:X-User"}
	cfg.Services[0].CircuitBreaker = CircuitBreaker{ConsecutiveFailures: -1, FailureRatio: 0.3, Window: Duration(time.Minute),
		BaseEjection: Duration(10 * time.Second), MaxEjection: Duration(time.Minute), MaxEjectedPercent: 30, FailureStatuses: []int{500, 503}}
	cfg.Services[0].HealthCheck = &HealthCheck{Path: "/healthz", Interval: Duration(5 * time.Second), Timeout: Duration(time.Second)}
	cfg.Services[0].RetryBudget = RetryBudget{Ratio: 0.1, MinPerSecond: 1}
	cfg.Services[0].Auth = &Auth{APIKey: true, Header: "X-API-Key", Query: "api_key"}
	cfg.Routes[0].Retry = Retry{Attempts: 2, PerTryTimeout: Duration(time.Second), Statuses: []int{503}, RetryNonIdempotent: true}
	cfg.Routes[0].RateLimit = &RateLimit{Requests: 100, Per: Duration(time.Minute), Burst: 10}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
}

func TestValidatePoliciesInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		path   string
		want   string
	}{
		{"unknown policy", func(c *Config) { c.Services[0].LoadBalancer.Policy = "random" }, "services[0].load_balancer.policy", `"random"`},
		{"hash_on without consistent_hash", func(c *Config) { c.Services[0].LoadBalancer.HashOn = "client_ip" }, "services[0].load_balancer.hash_on", "consistent_hash"},
		{"bad hash_on", func(c *Config) {
			c.Services[0].LoadBalancer = LoadBalancer{Policy: "consistent_hash", HashOn: "query:x"}
		}, "services[0].load_balancer.hash_on", `"query:x"`},
		{"ratio above 1", func(c *Config) { c.Services[0].CircuitBreaker.FailureRatio = 1.5 }, "services[0].circuit_breaker.failure_ratio", "1.5"},
		{"consecutive below -1", func(c *Config) { c.Services[0].CircuitBreaker.ConsecutiveFailures = -3 }, "services[0].circuit_breaker.consecutive_failures", "-3"},
		{"max below base ejection", func(c *Config) {
			c.Services[0].CircuitBreaker.BaseEjection = Duration(time.Minute)
			c.Services[0].CircuitBreaker.MaxEjection = Duration(time.Second)
		}, "services[0].circuit_breaker.max_ejection", "shorter"},
		{"ejected percent over 100", func(c *Config) { c.Services[0].CircuitBreaker.MaxEjectedPercent = 150 }, "services[0].circuit_breaker.max_ejected_percent", "150"},
		{"bad failure status", func(c *Config) { c.Services[0].CircuitBreaker.FailureStatuses = []int{500, 999} }, "services[0].circuit_breaker.failure_statuses[1]", "999"},
		{"health path", func(c *Config) { c.Services[0].HealthCheck = &HealthCheck{Path: "healthz"} }, "services[0].health_check.path", `"healthz"`},
		{"health timeout over interval", func(c *Config) {
			c.Services[0].HealthCheck = &HealthCheck{Interval: Duration(time.Second), Timeout: Duration(2 * time.Second)}
		}, "services[0].health_check.timeout", "longer"},
		{"negative budget", func(c *Config) { c.Services[0].RetryBudget.Ratio = -0.1 }, "services[0].retry_budget.ratio", "-0.1"},
		{"auth header without api_key", func(c *Config) { c.Services[0].Auth = &Auth{Header: "X-Key"} }, "services[0].auth.api_key", "api_key: true"},
		{"auth header authorization", func(c *Config) { c.Routes[0].Auth = &Auth{APIKey: true, Header: "authorization"} }, "routes[0].auth.header", "always read"},
		{"too many attempts", func(c *Config) { c.Routes[0].Retry.Attempts = 50 }, "routes[0].retry.attempts", "50"},
		{"negative per-try timeout", func(c *Config) { c.Routes[0].Retry.PerTryTimeout = Duration(-time.Second) }, "routes[0].retry.per_try_timeout", `"-1s"`},
		{"rate limit without per", func(c *Config) { c.Routes[0].RateLimit = &RateLimit{Requests: 5} }, "routes[0].rate_limit.per", "positive duration"},
		{"rate limit zero requests", func(c *Config) { c.Routes[0].RateLimit = &RateLimit{Per: Duration(time.Second)} }, "routes[0].rate_limit.requests", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.mutate(&cfg)
			var errs Errors
			if !errors.As(cfg.Validate(), &errs) {
				t.Fatalf("Validate() = nil, want an error at %s", tt.path)
			}
			for _, e := range errs {
				if e.Path == tt.path && strings.Contains(e.Message, tt.want) {
					return
				}
			}
			t.Errorf("Validate() = %v\nwant an error at %s containing %q", errs, tt.path, tt.want)
		})
	}
}

func TestParsePolicies(t *testing.T) {
	cfg, err := Parse([]byte(`
services:
  - name: a
    load_balancer: {policy: least_connections}
    circuit_breaker: {consecutive_failures: 3, base_ejection: 5s}
    health_check: {path: /health, interval: 2s}
routes:
  - name: r
    service: a
    retry: {attempts: 2, retry_non_idempotent: true}
    auth: {api_key: true, header: X-API-Key}
    rate_limit: {requests: 10, per: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, r := cfg.Services[0], cfg.Routes[0]
	if s.LoadBalancer.Policy != "least_connections" || s.CircuitBreaker.BaseEjection.Std() != 5*time.Second ||
		s.HealthCheck == nil || s.HealthCheck.Interval.Std() != 2*time.Second {
		t.Errorf("service policies = %+v", s)
	}
	if r.Retry.Attempts != 2 || !r.Retry.RetryNonIdempotent || r.Auth == nil || r.Auth.Header != "X-API-Key" || r.RateLimit.Requests != 10 {
		t.Errorf("route policies = %+v", r)
	}
}
