package snapshot

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

func TestCompilePolicyDefaults(t *testing.T) {
	cfg := config.Config{
		Services: []config.Service{
			{Name: "plain"},
			{Name: "tuned", Auth: &config.Auth{APIKey: true, Header: "x-api-key"},
				LoadBalancer:   config.LoadBalancer{Policy: "consistent_hash", HashOn: "header:x-user"},
				CircuitBreaker: config.CircuitBreaker{ConsecutiveFailures: -1, BaseEjection: config.Duration(time.Second)},
				HealthCheck:    &config.HealthCheck{Path: "/hz"}},
		},
		Routes: []config.Route{
			{Name: "plain", Service: "plain", Paths: []string{"/p"}},
			{Name: "inherits-auth", Service: "tuned", Paths: []string{"/t"}},
			{Name: "own-auth", Service: "tuned", Paths: []string{"/o"}, Auth: &config.Auth{APIKey: false},
				Retry:     config.Retry{Attempts: 1, Statuses: []int{500}},
				RateLimit: &config.RateLimit{Requests: 10, Per: config.Duration(time.Second)}},
		},
	}
	s, err := Compile(cfg, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	plain, tuned := s.Service("plain"), s.Service("tuned")
	if plain.Balancer.Policy != "round_robin" || plain.HealthCheck != nil {
		t.Errorf("plain balancer/health = %+v/%v, want round_robin/nil", plain.Balancer, plain.HealthCheck)
	}
	wantBreaker := Breaker{ConsecutiveFailures: 5, FailureRatio: 0.5, Window: 10 * time.Second, MinRequests: 20,
		BaseEjection: 30 * time.Second, MaxEjection: 300 * time.Second, MaxEjectedPercent: 50, PanicThresholdPercent: 50}
	if !equalBreaker(plain.Breaker, wantBreaker) {
		t.Errorf("default breaker = %+v, want %+v", plain.Breaker, wantBreaker)
	}
	if plain.RetryBudget != (RetryBudget{Ratio: 0.2, MinPerSecond: 3}) {
		t.Errorf("default retry budget = %+v", plain.RetryBudget)
	}
	if tuned.Balancer != (Balancer{Policy: "consistent_hash", HashOn: "header", HashName: "X-User"}) {
		t.Errorf("tuned balancer = %+v", tuned.Balancer)
	}
	if tuned.Breaker.ConsecutiveFailures != -1 || tuned.Breaker.BaseEjection != time.Second {
		t.Errorf("tuned breaker = %+v", tuned.Breaker)
	}
	if hc := tuned.HealthCheck; hc == nil || hc.Path != "/hz" || hc.Interval != 10*time.Second || hc.UnhealthyThreshold != 3 {
		t.Errorf("tuned health check = %+v", hc)
	}
	routes := map[string]*Route{}
	for _, r := range s.Routes {
		routes[r.Name] = r
	}
	if r := routes["plain"]; r.Auth != nil || r.Retry.Attempts != 3 || !slices.Equal(r.Retry.Statuses, []int{502, 503, 504}) ||
		r.Retry.MaxBodyBytes != 64<<10 || r.RateLimit != nil {
		t.Errorf("plain route policies = auth %v retry %+v limit %v", r.Auth, r.Retry, r.RateLimit)
	}
	if a := routes["inherits-auth"].Auth; a == nil || a.Header != "X-Api-Key" {
		t.Errorf("inherited auth = %+v, want the service's with a canonical header", a)
	}
	r := routes["own-auth"]
	if r.Auth != nil {
		t.Errorf("route auth api_key:false = %+v, want it to override the service's (nil)", r.Auth)
	}
	if r.Retry.Attempts != 1 || !slices.Equal(r.Retry.Statuses, []int{500}) {
		t.Errorf("own retry = %+v", r.Retry)
	}
	if r.RateLimit == nil || *r.RateLimit != (RateLimit{Requests: 10, Per: time.Second, Burst: 10}) {
		t.Errorf("own rate limit = %+v, want burst defaulting to requests", r.RateLimit)
	}
}

func equalBreaker(a, b Breaker) bool { return reflect.DeepEqual(a, b) }

func TestBreakerIsFailure(t *testing.T) {
	all5xx := Breaker{}
	some := Breaker{FailureStatuses: []int{503, 429}}
	tests := []struct {
		b      *Breaker
		status int
		want   bool
	}{
		{&all5xx, 500, true}, {&all5xx, 503, true}, {&all5xx, 404, false}, {&all5xx, 200, false},
		{&some, 503, true}, {&some, 429, true}, {&some, 500, false},
	}
	for _, tt := range tests {
		if got := tt.b.IsFailure(tt.status); got != tt.want {
			t.Errorf("IsFailure(%d) with %v = %v, want %v", tt.status, tt.b.FailureStatuses, got, tt.want)
		}
	}
}
