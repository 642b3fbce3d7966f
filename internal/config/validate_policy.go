package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// PolicyNames lists the load-balancing policies Validate accepts.
func PolicyNames() []string {
	return []string{"round_robin", "weighted_round_robin", "least_connections", "p2c_ewma", "consistent_hash"}
}

func (v *validator) servicePolicies(p string, s Service) {
	lb := s.LoadBalancer
	if names := PolicyNames(); lb.Policy != "" && !slices.Contains(names, lb.Policy) {
		v.addf(p+".load_balancer.policy", "unknown policy %q: use one of %s", lb.Policy, strings.Join(names, ", "))
	}
	if lb.HashOn != "" {
		if lb.Policy != "consistent_hash" {
			v.addf(p+".load_balancer.hash_on", "hash_on %q applies only to policy consistent_hash", lb.HashOn)
		} else if msg := checkHashOn(lb.HashOn); msg != "" {
			v.add(p+".load_balancer.hash_on", msg)
		}
	}

	cb, cp := s.CircuitBreaker, p+".circuit_breaker"
	v.minusOneOrMore(cp+".consecutive_failures", cb.ConsecutiveFailures)
	if r := cb.FailureRatio; r != -1 && (r < 0 || r > 1) {
		v.addf(cp+".failure_ratio", "failure_ratio %g must be between 0 and 1 (or -1 to disable)", r)
	}
	v.nonNegative(cp+".window", cb.Window)
	v.nonNegativeInt(cp+".min_requests", cb.MinRequests)
	v.nonNegative(cp+".base_ejection", cb.BaseEjection)
	v.nonNegative(cp+".max_ejection", cb.MaxEjection)
	if cb.BaseEjection > 0 && cb.MaxEjection > 0 && cb.MaxEjection < cb.BaseEjection {
		v.addf(cp+".max_ejection", "max_ejection %s is shorter than base_ejection %s", cb.MaxEjection, cb.BaseEjection)
	}
	v.percent(cp+".max_ejected_percent", cb.MaxEjectedPercent, false)
	v.percent(cp+".panic_threshold_percent", cb.PanicThresholdPercent, true)
	v.statuses(cp+".failure_statuses", cb.FailureStatuses)

	if hc := s.HealthCheck; hc != nil {
		hp := p + ".health_check"
		if hc.Path != "" {
			if !strings.HasPrefix(hc.Path, "/") || strings.ContainsAny(hc.Path, " #") {
				v.addf(hp+".path", "path %q must start with \"/\" and contain no spaces or fragment", hc.Path)
			}
		}
		v.nonNegative(hp+".interval", hc.Interval)
		v.nonNegative(hp+".timeout", hc.Timeout)
		if hc.Interval > 0 && hc.Timeout > hc.Interval {
			v.addf(hp+".timeout", "timeout %s is longer than interval %s", hc.Timeout, hc.Interval)
		}
		v.nonNegativeInt(hp+".healthy_threshold", hc.HealthyThreshold)
		v.nonNegativeInt(hp+".unhealthy_threshold", hc.UnhealthyThreshold)
		v.statuses(hp+".expected_statuses", hc.ExpectedStatuses)
	}

	if r := s.RetryBudget.Ratio; r < 0 || r > 1 {
		v.addf(p+".retry_budget.ratio", "ratio %g must be between 0 and 1", r)
	}
	if m := s.RetryBudget.MinPerSecond; m < 0 {
		v.addf(p+".retry_budget.min_per_second", "min_per_second %g must not be negative", m)
	}
	v.auth(p+".auth", s.Auth)
}

func (v *validator) routePolicies(p string, r Route) {
	rp := p + ".retry"
	if a := r.Retry.Attempts; a < 0 || a > 10 {
		v.addf(rp+".attempts", "attempts %d must be between 1 and 10 (0 means the default, 3)", a)
	}
	v.nonNegative(rp+".per_try_timeout", r.Retry.PerTryTimeout)
	v.statuses(rp+".statuses", r.Retry.Statuses)
	v.nonNegative(rp+".backoff_base", r.Retry.BackoffBase)
	v.nonNegative(rp+".backoff_max", r.Retry.BackoffMax)
	if b, m := r.Retry.BackoffBase, r.Retry.BackoffMax; b > 0 && m > 0 && m < b {
		v.addf(rp+".backoff_max", "backoff_max %s is shorter than backoff_base %s", m, b)
	}
	if r.Retry.MaxBodyBytes < 0 {
		v.addf(rp+".max_body_bytes", "max_body_bytes %d must not be negative", r.Retry.MaxBodyBytes)
	}
	v.auth(p+".auth", r.Auth)
	if rl := r.RateLimit; rl != nil {
		v.rateLimit(p+".rate_limit", *rl)
	}
}

func (v *validator) auth(p string, a *Auth) {
	if a == nil {
		return
	}
	if a.Header != "" && !validToken(a.Header) {
		v.addf(p+".header", "invalid header name %q", a.Header)
	}
	if strings.EqualFold(a.Header, "Authorization") {
		v.addf(p+".header", "Authorization is always read; name another header here or leave it empty")
	}
	if a.Query != "" && strings.ContainsAny(a.Query, "&=#? ") {
		v.addf(p+".query", "invalid query parameter name %q", a.Query)
	}
	if !a.APIKey && (a.Header != "" || a.Query != "") {
		v.add(p+".api_key", "header or query is set but api_key is false: set api_key: true to require a key")
	}
}

// rateLimit checks one limit.
func (v *validator) rateLimit(p string, rl RateLimit) {
	if rl.Requests <= 0 {
		v.addf(p+".requests", "requests %d must be positive", rl.Requests)
	}
	if rl.Per <= 0 {
		v.addf(p+".per", "per %q must be a positive duration such as 1s or 1m", rl.Per.String())
	} else if time.Duration(rl.Per) < time.Millisecond {
		v.addf(p+".per", "per %q is shorter than 1ms", rl.Per.String())
	}
	if rl.Burst < 0 {
		v.addf(p+".burst", "burst %d must not be negative", rl.Burst)
	}
}

func checkHashOn(s string) string {
	if s == "client_ip" {
		return ""
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok || (kind != "header" && kind != "cookie") || name == "" {
		return fmt.Sprintf("hash_on %q: use client_ip, header:NAME or cookie:NAME", s)
	}
	if kind == "header" && !validToken(name) {
		return fmt.Sprintf("hash_on %q: invalid header name %q", s, name)
	}
	return ""
}

func (v *validator) nonNegative(p string, d Duration) {
	if d < 0 {
		v.addf(p, "%q must not be negative", d.String())
	}
}

func (v *validator) nonNegativeInt(p string, n int) {
	if n < 0 {
		v.addf(p, "%d must not be negative", n)
	}
}

func (v *validator) minusOneOrMore(p string, n int) {
	if n < -1 {
		v.addf(p, "%d must be positive, 0 for the default, or -1 to disable", n)
	}
}

func (v *validator) percent(p string, n int, allowMinusOne bool) {
	if allowMinusOne && n == -1 {
		return
	}
	if n < 0 || n > 100 {
		v.addf(p, "%d must be between 0 and 100 (0 means the default)", n)
	}
}

func (v *validator) statuses(p string, codes []int) {
	for i, c := range codes {
		if c < 100 || c > 599 {
			v.addf(fmt.Sprintf("%s[%d]", p, i), "%d is not an HTTP status code (100-599)", c)
		}
	}
}
