package ratelimit

import (
	"maps"
	"net/http"
	"testing"
	"time"
)

func TestDecisionHeaders(t *testing.T) {
	policy := Limit{Requests: 100, Per: time.Minute, Burst: 20}
	tests := []struct {
		name string
		d    Decision
		want map[string]string // every header expected, by the name a reader uses
	}{
		{
			name: "allowed",
			d:    Decision{Allowed: true, Limit: 20, Remaining: 19, Reset: 600 * time.Millisecond, Policy: policy},
			want: map[string]string{
				"RateLimit-Limit":     "20",
				"RateLimit-Remaining": "19",
				"RateLimit-Reset":     "1",
				"RateLimit-Policy":    "100;w=60;burst=20",
			},
		},
		{
			name: "allowed, reset rounded up",
			d:    Decision{Allowed: true, Limit: 20, Remaining: 0, Reset: 12*time.Second + time.Nanosecond, Policy: policy},
			want: map[string]string{
				"RateLimit-Limit":     "20",
				"RateLimit-Remaining": "0",
				"RateLimit-Reset":     "13",
				"RateLimit-Policy":    "100;w=60;burst=20",
			},
		},
		{
			name: "denied",
			d:    Decision{Limit: 20, Reset: 2500 * time.Millisecond, RetryAfter: 2500 * time.Millisecond, Policy: policy},
			want: map[string]string{
				"RateLimit-Limit":     "20",
				"RateLimit-Remaining": "0",
				"RateLimit-Reset":     "3",
				"RateLimit-Policy":    "100;w=60;burst=20",
				"Retry-After":         "3",
			},
		},
		{
			name: "denied, retry after at least one second",
			d:    Decision{Limit: 20, Reset: time.Millisecond, RetryAfter: time.Millisecond, Policy: policy},
			want: map[string]string{
				"RateLimit-Limit":     "20",
				"RateLimit-Remaining": "0",
				"RateLimit-Reset":     "1",
				"RateLimit-Policy":    "100;w=60;burst=20",
				"Retry-After":         "1",
			},
		},
		{
			name: "denied, zero retry after still says one second",
			d:    Decision{Limit: 5, Policy: Limit{Requests: 5, Per: time.Second}},
			want: map[string]string{
				"RateLimit-Limit":     "5",
				"RateLimit-Remaining": "0",
				"RateLimit-Reset":     "0",
				"RateLimit-Policy":    "5;w=1",
				"Retry-After":         "1",
			},
		},
		{
			name: "burst equal to requests is not repeated",
			d:    Decision{Allowed: true, Limit: 100, Remaining: 99, Reset: time.Second, Policy: Limit{Requests: 100, Per: time.Hour, Burst: 100}},
			want: map[string]string{
				"RateLimit-Limit":     "100",
				"RateLimit-Remaining": "99",
				"RateLimit-Reset":     "1",
				"RateLimit-Policy":    "100;w=3600",
			},
		},
		{
			name: "window rounded up to a second",
			d:    Decision{Allowed: true, Limit: 1, Remaining: 0, Reset: 500 * time.Millisecond, Policy: Limit{Requests: 1, Per: 500 * time.Millisecond}},
			want: map[string]string{
				"RateLimit-Limit":     "1",
				"RateLimit-Remaining": "0",
				"RateLimit-Reset":     "1",
				"RateLimit-Policy":    "1;w=1",
			},
		},
		{
			name: "no policy",
			d:    Decision{Allowed: true, Limit: 10, Remaining: 3, Reset: 4 * time.Second},
			want: map[string]string{
				"RateLimit-Limit":     "10",
				"RateLimit-Remaining": "3",
				"RateLimit-Reset":     "4",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("Content-Type", "text/plain")
			h.Set("Retry-After", "999") // replaced when denied, kept when allowed
			tt.d.Headers(h)

			want := http.Header{}
			want.Set("Content-Type", "text/plain")
			if tt.d.Allowed {
				want.Set("Retry-After", "999")
			}
			for k, v := range tt.want {
				want.Set(k, v)
				if got := h.Get(k); got != v {
					t.Errorf("Headers(): %s = %q, want %q", k, got, v)
				}
			}
			if !maps.EqualFunc(h, want, func(a, b []string) bool { return len(a) == 1 && len(b) == 1 && a[0] == b[0] }) {
				t.Errorf("Headers() wrote %v, want %v", h, want)
			}
		})
	}
}

func TestDecisionHeadersFromLocal(t *testing.T) {
	l := newLocal(t)
	limit := Limit{Requests: 100, Per: time.Minute, Burst: 20}
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	var d Decision
	for range 21 {
		d = allow(t, l, "k", limit, now)
	}
	h := http.Header{}
	d.Headers(h)
	want := map[string]string{
		"RateLimit-Limit":     "20",
		"RateLimit-Remaining": "0",
		"RateLimit-Reset":     "1",
		"RateLimit-Policy":    "100;w=60;burst=20",
		"Retry-After":         "1",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("Headers() after 21 requests: %s = %q, want %q", k, got, v)
		}
	}
}
