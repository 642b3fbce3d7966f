package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func newLocal(t testing.TB) *Local {
	t.Helper()
	l, err := NewLocal(LocalConfig{})
	if err != nil {
		t.Fatalf("NewLocal() error = %v", err)
	}
	return l
}

func allow(t testing.TB, l *Local, key string, limit Limit, now time.Time) Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), key, limit, now)
	if err != nil {
		t.Fatalf("Allow(%q, %+v) error = %v", key, limit, err)
	}
	return d
}

var t0 = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

func TestLocalGCRA(t *testing.T) {
	// 100 per minute, burst 20: one request costs 600ms, and the allowance
	// holds 20 of them (12s).
	limit := Limit{Requests: 100, Per: time.Minute, Burst: 20}
	type step struct {
		at     time.Duration // after t0
		times  int           // identical requests; the last one is checked
		want   Decision      // Policy is filled in by the test
		wantOK bool
	}
	tests := []struct {
		name  string
		limit Limit
		steps []step
	}{
		{
			name:  "burst then one per interval",
			limit: limit,
			steps: []step{
				{at: 0, times: 1, want: Decision{Allowed: true, Limit: 20, Remaining: 19, Reset: 600 * time.Millisecond}},
				{at: 0, times: 18, want: Decision{Allowed: true, Limit: 20, Remaining: 1, Reset: 11400 * time.Millisecond}},
				{at: 0, times: 1, want: Decision{Allowed: true, Limit: 20, Remaining: 0, Reset: 12 * time.Second}},
				{at: 0, times: 1, want: Decision{Limit: 20, Reset: 600 * time.Millisecond, RetryAfter: 600 * time.Millisecond}},
				{at: 599 * time.Millisecond, times: 1, want: Decision{Limit: 20, Reset: time.Millisecond, RetryAfter: time.Millisecond}},
				{at: 600 * time.Millisecond, times: 1, want: Decision{Allowed: true, Limit: 20, Remaining: 0, Reset: 12 * time.Second}},
				{at: 600 * time.Millisecond, times: 1, want: Decision{Limit: 20, Reset: 600 * time.Millisecond, RetryAfter: 600 * time.Millisecond}},
				{at: 1800 * time.Millisecond, times: 2, want: Decision{Allowed: true, Limit: 20, Remaining: 0, Reset: 12 * time.Second}},
				{at: 1800 * time.Millisecond, times: 1, want: Decision{Limit: 20, Reset: 600 * time.Millisecond, RetryAfter: 600 * time.Millisecond}},
				// 12.6s after the last allowed request the allowance is full again.
				{at: 14400 * time.Millisecond, times: 20, want: Decision{Allowed: true, Limit: 20, Remaining: 0, Reset: 12 * time.Second}},
				{at: 14400 * time.Millisecond, times: 1, want: Decision{Limit: 20, Reset: 600 * time.Millisecond, RetryAfter: 600 * time.Millisecond}},
			},
		},
		{
			name:  "burst zero is requests",
			limit: Limit{Requests: 3, Per: time.Second},
			steps: []step{
				// 1s/3 truncates to 333333333ns: three cost 1ns less than a second.
				{at: 0, times: 3, want: Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 3 * (time.Second / 3)}},
				{at: 0, times: 1, want: Decision{Limit: 3, Reset: time.Second / 3, RetryAfter: time.Second / 3}},
				{at: time.Second / 3, times: 1, want: Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 3 * (time.Second / 3)}},
			},
		},
		{
			name:  "denied requests are not counted",
			limit: Limit{Requests: 1, Per: time.Second},
			steps: []step{
				{at: 0, times: 1, want: Decision{Allowed: true, Limit: 1, Remaining: 0, Reset: time.Second}},
				{at: 500 * time.Millisecond, times: 1000, want: Decision{Limit: 1, Reset: 500 * time.Millisecond, RetryAfter: 500 * time.Millisecond}},
				{at: time.Second, times: 1, want: Decision{Allowed: true, Limit: 1, Remaining: 0, Reset: time.Second}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLocal(t)
			for i, s := range tt.steps {
				var got Decision
				for range s.times {
					got = allow(t, l, "key:a", tt.limit, t0.Add(s.at))
				}
				want := s.want
				want.Policy = tt.limit
				if got != want {
					t.Errorf("step %d: Allow() at t0+%v = %+v, want %+v", i, s.at, got, want)
				}
			}
		})
	}
}

func TestLocalKeysAreIndependent(t *testing.T) {
	l := newLocal(t)
	limit := Limit{Requests: 1, Per: time.Hour}
	if d := allow(t, l, "key:a", limit, t0); !d.Allowed {
		t.Fatalf("Allow(key:a) first = %+v, want allowed", d)
	}
	if d := allow(t, l, "key:a", limit, t0); d.Allowed {
		t.Fatalf("Allow(key:a) second = %+v, want denied", d)
	}
	if d := allow(t, l, "route:a", limit, t0); !d.Allowed {
		t.Errorf("Allow(route:a) = %+v, want allowed: another key's usage must not count", d)
	}
}

func TestLocalLimitChangeAdapts(t *testing.T) {
	l := newLocal(t)
	old := Limit{Requests: 10, Per: time.Second} // exhausted: TAT = t0+1s
	for range 10 {
		allow(t, l, "k", old, t0)
	}
	if d := allow(t, l, "k", old, t0); d.Allowed {
		t.Fatalf("Allow() under old limit = %+v, want denied", d)
	}
	// Under 100/min burst 20 (600ms per request, 12s of allowance) the 1s
	// of debt carries over: with this request the TAT is 1.6s ahead, which
	// leaves floor((12s-1.6s)/600ms) = 17, not the 19 a reset would give.
	d := allow(t, l, "k", Limit{Requests: 100, Per: time.Minute, Burst: 20}, t0)
	if !d.Allowed || d.Remaining != 17 || d.Reset != 1600*time.Millisecond {
		t.Errorf("Allow() under new limit = %+v, want allowed, Remaining 17, Reset 1.6s", d)
	}
}

func TestLocalConcurrentExact(t *testing.T) {
	const goroutines, attempts = 50, 100
	tests := []struct {
		name  string
		burst int
	}{
		{name: "small burst", burst: 10},
		// Half the attempts are allowed, so CAS races span the whole run.
		{name: "burst of half the attempts", burst: goroutines * attempts / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLocal(t)
			limit := Limit{Requests: 1, Per: time.Minute, Burst: tt.burst}
			var allowed atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range goroutines {
				wg.Go(func() {
					<-start
					for range attempts {
						d, err := l.Allow(context.Background(), "hot", limit, t0)
						if err != nil {
							t.Errorf("Allow() error = %v", err)
							return
						}
						if d.Allowed {
							allowed.Add(1)
						}
					}
				})
			}
			close(start)
			wg.Wait()
			if got := allowed.Load(); got != int64(tt.burst) {
				t.Errorf("%d×%d concurrent Allow() at one instant allowed %d, want %d", goroutines, attempts, got, tt.burst)
			}
		})
	}
}

func TestLocalSweep(t *testing.T) {
	l := newLocal(t)
	limit := Limit{Requests: 10, Per: time.Second} // 100ms per request
	allow(t, l, "idle", limit, t0)                 // TAT t0+100ms
	allow(t, l, "recent", limit, t0.Add(time.Second))
	now := t0.Add(1200 * time.Millisecond) // idle's TAT is 1.1s (> Per) in the past
	for range 10 {
		allow(t, l, "exhausted", limit, now) // TAT now+1s
	}

	if got := l.Sweep(now); got != 1 {
		t.Errorf("Sweep() = %d, want 1", got)
	}
	if got := l.Len(); got != 2 {
		t.Errorf("Len() after Sweep = %d, want 2", got)
	}
	// Had Sweep dropped the exhausted key, it would be allowed again.
	if d := allow(t, l, "exhausted", limit, now); d.Allowed {
		t.Errorf("Allow(exhausted) after Sweep = %+v, want denied", d)
	}
	if got := l.Sweep(t0.Add(time.Hour)); got != 2 {
		t.Errorf("Sweep() an hour later = %d, want 2", got)
	}
	if got := l.Len(); got != 0 {
		t.Errorf("Len() after the last Sweep = %d, want 0", got)
	}
}

func TestLocalRunSweeps(t *testing.T) {
	// Under synctest the ticker runs on the bubble's fake clock, which
	// time.Sleep advances without waiting.
	synctest.Test(t, func(t *testing.T) {
		l, err := NewLocal(LocalConfig{SweepInterval: time.Second})
		if err != nil {
			t.Fatalf("NewLocal() error = %v", err)
		}
		limit := Limit{Requests: 1, Per: 5 * time.Second}
		allow(t, l, "k", limit, time.Now()) // TAT now+5s, evictable after now+10s
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()

		time.Sleep(9*time.Second + time.Millisecond)
		synctest.Wait()
		if got := l.Len(); got != 1 {
			t.Errorf("Len() 9s after use = %d, want 1 (still within Per of its TAT)", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := l.Len(); got != 0 {
			t.Errorf("Len() 11s after use = %d, want 0 (Run must sweep)", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
}

func TestLocalInvalidLimit(t *testing.T) {
	l := newLocal(t)
	if _, err := l.Allow(context.Background(), "k", Limit{}, t0); err == nil {
		t.Error("Allow() with a zero Limit: error = nil, want an error")
	}
}

func TestLocalAllowAllocs(t *testing.T) {
	l := newLocal(t)
	limit := Limit{Requests: 1000, Per: time.Second}
	allow(t, l, "key:a", limit, t0)
	now := t0
	got := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		_, _ = l.Allow(context.Background(), "key:a", limit, now)
	})
	if got != 0 {
		t.Errorf("Allow() on an existing key: %v allocs, want 0", got)
	}
}
