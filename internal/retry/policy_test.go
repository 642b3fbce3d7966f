package retry

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestPolicyRetryable(t *testing.T) {
	tests := []struct {
		name   string
		p      Policy
		method string
		f      Failure
		status int
		want   bool
	}{
		{"not sent GET", Policy{}, "GET", NotSent, 0, true},
		{"not sent POST", Policy{}, "POST", NotSent, 0, true},
		{"not sent PATCH", Policy{}, "PATCH", NotSent, 0, true},
		{"timeout GET", Policy{}, "GET", Timeout, 0, true},
		{"timeout PUT", Policy{}, "PUT", Timeout, 0, true},
		{"timeout DELETE", Policy{}, "DELETE", Timeout, 0, true},
		{"timeout POST", Policy{}, "POST", Timeout, 0, false},
		{"timeout POST allowed", Policy{RetryNonIdempotent: true}, "POST", Timeout, 0, true},
		{"other HEAD", Policy{}, "HEAD", Other, 0, true},
		{"other OPTIONS", Policy{}, "OPTIONS", Other, 0, true},
		{"other TRACE", Policy{}, "TRACE", Other, 0, true},
		{"other PATCH", Policy{}, "PATCH", Other, 0, false},
		{"other CONNECT", Policy{}, "CONNECT", Other, 0, false},
		{"methods are case-sensitive", Policy{}, "get", Other, 0, false},
		{"status 503 GET", Policy{}, "GET", Status, 503, true},
		{"status 502 GET", Policy{}, "GET", Status, 502, true},
		{"status 504 GET", Policy{}, "GET", Status, 504, true},
		{"status 500 GET", Policy{}, "GET", Status, 500, false},
		{"status 503 POST", Policy{}, "POST", Status, 503, false},
		{"status 503 POST allowed", Policy{RetryNonIdempotent: true}, "POST", Status, 503, true},
		{"status 429 POST allowed not listed", Policy{RetryNonIdempotent: true}, "POST", Status, 429, false},
		{"custom statuses 429", Policy{Statuses: []int{429}}, "GET", Status, 429, true},
		{"custom statuses drop 503", Policy{Statuses: []int{429}}, "GET", Status, 503, false},
		{"unknown failure", Policy{RetryNonIdempotent: true}, "GET", Failure(42), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Retryable(tt.method, tt.f, tt.status); got != tt.want {
				t.Errorf("Retryable(%q, %v, %d) = %v, want %v", tt.method, tt.f, tt.status, got, tt.want)
			}
		})
	}
}

func TestPolicyBackoff(t *testing.T) {
	const top = math.MaxUint64
	tests := []struct {
		name    string
		p       Policy
		attempt int
		rnd     uint64
		want    time.Duration
	}{
		{"zero random", Policy{}, 0, 0, 0},
		{"first ceiling", Policy{}, 0, top, 25 * time.Millisecond},
		{"first half", Policy{}, 0, 1 << 63, 12500 * time.Microsecond},
		{"second ceiling", Policy{}, 1, top, 50 * time.Millisecond},
		{"fourth ceiling", Policy{}, 3, top, 200 * time.Millisecond},
		{"capped", Policy{}, 4, top, 250 * time.Millisecond},
		{"capped far", Policy{}, 1000, top, 250 * time.Millisecond},
		{"capped half", Policy{}, 62, 1 << 63, 125 * time.Millisecond},
		{"negative attempt", Policy{}, -3, top, 25 * time.Millisecond},
		{"custom", Policy{BackoffBase: time.Second, BackoffMax: 5 * time.Second}, 2, top, 4 * time.Second},
		{"custom capped", Policy{BackoffBase: time.Second, BackoffMax: 5 * time.Second}, 3, top, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Backoff(tt.attempt, tt.rnd); got != tt.want {
				t.Errorf("Backoff(%d, %#x) = %v, want %v", tt.attempt, tt.rnd, got, tt.want)
			}
		})
	}
}

func TestPolicyBackoffInRange(t *testing.T) {
	var p Policy
	r := rand.New(rand.NewPCG(1, 2))
	var sum time.Duration
	const n = 10000
	for range n {
		got := p.Backoff(1, r.Uint64())
		if got < 0 || got > 50*time.Millisecond {
			t.Fatalf("Backoff(1, rnd) = %v, want within [0, 50ms]", got)
		}
		sum += got
	}
	// Full jitter: the mean is half the ceiling.
	if mean := sum / n; mean < 24*time.Millisecond || mean > 26*time.Millisecond {
		t.Errorf("mean Backoff(1, rnd) = %v, want about 25ms", mean)
	}
}

func TestPolicyDefaults(t *testing.T) {
	tests := []struct {
		name         string
		p            Policy
		wantAttempts int
		wantReplay   int64
	}{
		{"zero", Policy{}, 3, 64 << 10},
		{"set", Policy{Attempts: 1, MaxReplayBody: 10}, 1, 10},
		{"no body replay", Policy{MaxReplayBody: -1}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.MaxAttempts(); got != tt.wantAttempts {
				t.Errorf("MaxAttempts() = %d, want %d", got, tt.wantAttempts)
			}
			if got := tt.p.ReplayLimit(); got != tt.wantReplay {
				t.Errorf("ReplayLimit() = %d, want %d", got, tt.wantReplay)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		wantErr bool
	}{
		{"zero", Policy{}, false},
		{"full", Policy{Attempts: 5, PerTryTimeout: time.Second, Statuses: []int{429, 503}, BackoffBase: time.Millisecond, BackoffMax: time.Second, MaxReplayBody: 1 << 20}, false},
		{"negative attempts", Policy{Attempts: -1}, true},
		{"too many attempts", Policy{Attempts: 11}, true},
		{"negative per-try timeout", Policy{PerTryTimeout: -time.Second}, true},
		{"bad status", Policy{Statuses: []int{503, 5030}}, true},
		{"negative base", Policy{BackoffBase: -1}, true},
		{"negative max", Policy{BackoffMax: -1}, true},
		{"base above max", Policy{BackoffBase: time.Second, BackoffMax: time.Millisecond}, true},
		{"base above default max", Policy{BackoffBase: time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}
