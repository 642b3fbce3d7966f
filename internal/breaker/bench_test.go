package breaker

import (
	"testing"
	"time"
)

// hotPathGroup returns a group whose replica "r1" stays closed under load.
func hotPathGroup(tb testing.TB) *Group {
	return newTestGroup(tb, Config{ConsecutiveFailures: Disabled, FailureRatio: Disabled}, "r1", "r2", "r3", "r4")
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	g := hotPathGroup(t)
	now := t0
	tests := []struct {
		name string
		fn   func()
	}{
		{name: "For", fn: func() { _ = g.Breaker("r1") }},
		{name: "Allow+Success", fn: func() {
			now = now.Add(time.Millisecond)
			if g.Allow("r1", now) {
				g.Success("r1", now)
			}
		}},
		{name: "Available", fn: func() { _ = g.Available("r1", now) }},
		{name: "Failure with the same reason", fn: func() { g.Failure("r1", now, "status 503") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(1000, tt.fn); got != 0 {
				t.Errorf("allocations per call = %v, want 0", got)
			}
		})
	}
}

func BenchmarkAllowSuccess(b *testing.B) {
	bs := newTestBreakers(b, Config{}, "r1", "r2", "r3", "r4")
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		g := bs.For("svc")
		if g.Allow("r1", now) {
			g.Success("r1", now)
		}
	}
}

func BenchmarkAllowSuccessParallel(b *testing.B) {
	bs := newTestBreakers(b, Config{}, "r1", "r2", "r3", "r4")
	now := t0
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g := bs.For("svc")
			if g.Allow("r1", now) {
				g.Success("r1", now)
			}
		}
	})
}

func BenchmarkFailure(b *testing.B) {
	g := hotPathGroup(b)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		g.Failure("r1", now, "status 503")
	}
}

func BenchmarkBreakerAllowSuccess(b *testing.B) {
	br := hotPathGroup(b).Breaker("r1")
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		if br.Allow(now) {
			br.Success(now)
		}
	}
}

// BenchmarkAllowBreakerSuccess is the cheapest full request path: one
// lookup, then the panic-aware gate and the outcome on the breaker.
func BenchmarkAllowBreakerSuccess(b *testing.B) {
	bs := newTestBreakers(b, Config{}, "r1", "r2", "r3", "r4")
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		g := bs.For("svc")
		br := g.Breaker("r1")
		if g.AllowBreaker(br, now) {
			br.Success(now)
		}
	}
}
