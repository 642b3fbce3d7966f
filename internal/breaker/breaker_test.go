package breaker

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConsecutiveFailuresTripAtExactlyN(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		n    int
	}{
		{name: "default", cfg: Config{}, n: DefaultConsecutiveFailures},
		{name: "one", cfg: Config{ConsecutiveFailures: 1}, n: 1},
		{name: "three", cfg: Config{ConsecutiveFailures: 3}, n: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGroup(t, tt.cfg, "a", "b")
			if got := fail(g, "a", t0, tt.n-1); got != None {
				t.Fatalf("after %d failures: Failure() = %v, want none", tt.n-1, got)
			}
			if !g.Allow("a", t0) {
				t.Fatalf("after %d failures: Allow() = false, want true", tt.n-1)
			}
			if got := g.Failure("a", t0, "connect refused"); got != Ejected {
				t.Fatalf("failure %d: Failure() = %v, want ejected", tt.n, got)
			}
			if g.Allow("a", t0) {
				t.Fatalf("after %d failures: Allow() = true, want false", tt.n)
			}
			st := state(t, g, "a", t0)
			if st.State != StateEjected || st.LastError != "connect refused" || st.Ejections != 1 {
				t.Errorf("State() = %+v, want ejected, last error %q, 1 ejection", st, "connect refused")
			}
		})
	}
}

func TestSuccessResetsConsecutiveFailures(t *testing.T) {
	g := newTestGroup(t, Config{ConsecutiveFailures: 3, FailureRatio: Disabled}, "a", "b")
	fail(g, "a", t0, 2)
	g.Success("a", t0)
	if got := fail(g, "a", t0, 2); got != None {
		t.Fatalf("2 failures after a success: Failure() = %v, want none", got)
	}
	if got := state(t, g, "a", t0).ConsecutiveFailures; got != 2 {
		t.Errorf("ConsecutiveFailures = %d, want 2", got)
	}
	if got := g.Failure("a", t0, "x"); got != Ejected {
		t.Errorf("third failure in a row: Failure() = %v, want ejected", got)
	}
}

func TestConsecutiveTriggerDisabled(t *testing.T) {
	g := newTestGroup(t, Config{ConsecutiveFailures: Disabled, FailureRatio: Disabled}, "a", "b")
	if got := fail(g, "a", t0, 1000); got != None {
		t.Errorf("1000 failures with both triggers disabled: Failure() = %v, want none", got)
	}
}

func TestRatioTrigger(t *testing.T) {
	cfg := Config{ConsecutiveFailures: Disabled, FailureRatio: 0.5, Window: 10 * time.Second, MinRequests: 20}
	type step struct {
		at        time.Duration
		successes int
		failures  int
	}
	tests := []struct {
		name  string
		steps []step
		want  Transition // of the last failure
	}{
		{
			name:  "below minimum volume",
			steps: []step{{successes: 9, failures: 10}}, // 19 requests, 53% failed
			want:  None,
		},
		{
			name:  "reaches minimum volume",
			steps: []step{{successes: 9, failures: 11}}, // trips on the 20th request
			want:  Ejected,
		},
		{
			name:  "ratio below threshold",
			steps: []step{{successes: 30, failures: 10}},
			want:  None,
		},
		{
			name:  "ratio exactly at threshold",
			steps: []step{{successes: 10}, {failures: 10}},
			want:  Ejected,
		},
		{
			name:  "old failures slide out",
			steps: []step{{failures: 15}, {at: 11 * time.Second, successes: 5, failures: 1}},
			want:  None,
		},
		{
			name:  "recent failures stay in",
			steps: []step{{failures: 15}, {at: 8 * time.Second, successes: 5, failures: 1}},
			want:  Ejected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGroup(t, cfg, "a", "b")
			got := None
			for _, s := range tt.steps {
				now := t0.Add(s.at)
				for range s.successes {
					g.Success("a", now)
				}
				for range s.failures {
					if got = g.Failure("a", now, "timeout"); got != None {
						break
					}
				}
			}
			if got != tt.want {
				t.Errorf("Failure() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCoolDownThenSingleProbe(t *testing.T) {
	g := newTestGroup(t, Config{ConsecutiveFailures: 1, BaseEjection: 30 * time.Second}, "a", "b")
	g.Failure("a", t0, "x")
	end := t0.Add(30 * time.Second)
	if g.Allow("a", end.Add(-time.Nanosecond)) {
		t.Fatal("Allow() before the end of the cool-down = true, want false")
	}
	if !g.Available("a", end) {
		t.Fatal("Available() at the end of the cool-down = false, want true")
	}
	if !g.Available("a", end) {
		t.Fatal("Available() does not admit the probe: second call = false, want true")
	}
	if !g.Allow("a", end) {
		t.Fatal("Allow() at the end of the cool-down = false, want true (probe)")
	}
	if got := state(t, g, "a", end).State; got != StateProbing {
		t.Errorf("State = %q, want %q", got, StateProbing)
	}
	if g.Allow("a", end.Add(time.Second)) || g.Available("a", end.Add(time.Second)) {
		t.Error("Allow()/Available() while the probe is in flight = true, want false")
	}
}

func TestExactlyOneProbeUnderConcurrency(t *testing.T) {
	g := newTestGroup(t, Config{ConsecutiveFailures: 1}, "a", "b")
	g.Failure("a", t0, "x")
	end := t0.Add(DefaultBaseEjection)
	var admitted atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 100 {
		wg.Go(func() {
			<-start
			if g.Allow("a", end) {
				admitted.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := admitted.Load(); got != 1 {
		t.Errorf("Allow() returned true %d times at the end of the cool-down, want 1", got)
	}
	// The critical section itself, without relying on the scheduler to
	// interleave: a caller that saw the old deadline before the probe was
	// handed out must still be refused.
	if g.Breaker("a").admit(end.UnixNano()) {
		t.Error("admit() after the probe was admitted = true, want false")
	}
}

func TestProbeOutcome(t *testing.T) {
	cfg := Config{ConsecutiveFailures: 1, BaseEjection: 30 * time.Second, MaxEjection: 300 * time.Second}
	end := t0.Add(30 * time.Second)

	t.Run("success restores", func(t *testing.T) {
		g := newTestGroup(t, cfg, "a", "b")
		g.Failure("a", t0, "x")
		g.Allow("a", end)
		if got := g.Success("a", end); got != Restored {
			t.Fatalf("probe Success() = %v, want restored", got)
		}
		st := state(t, g, "a", end)
		if st.State != StateHealthy || st.ConsecutiveFailures != 0 || st.WindowRequests != 0 {
			t.Errorf("State() = %+v, want healthy with counters reset", st)
		}
		if !g.Allow("a", end) || !g.Allow("a", end) {
			t.Error("Allow() after restore = false, want true")
		}
	})

	t.Run("failure re-ejects longer, capped", func(t *testing.T) {
		g := newTestGroup(t, cfg, "a", "b")
		now := t0
		g.Failure("a", now, "x")
		wants := []time.Duration{60, 120, 240, 300, 300}
		for i, want := range wants {
			now = state(t, g, "a", now).EjectedUntil
			if !g.Allow("a", now) {
				t.Fatalf("probe %d: Allow() = false, want true", i+1)
			}
			if got := g.Failure("a", now, "x"); got != Ejected {
				t.Fatalf("probe %d: Failure() = %v, want ejected", i+1, got)
			}
			if got := state(t, g, "a", now).EjectedUntil.Sub(now); got != want*time.Second {
				t.Errorf("cool-down after probe %d failed = %v, want %v", i+1, got, want*time.Second)
			}
		}
	})

	t.Run("stale success while ejected changes nothing", func(t *testing.T) {
		g := newTestGroup(t, cfg, "a", "b")
		g.Failure("a", t0, "x")
		if got := g.Success("a", t0.Add(time.Second)); got != None {
			t.Errorf("Success() while ejected = %v, want none", got)
		}
		if g.Allow("a", t0.Add(time.Second)) {
			t.Error("Allow() after a stale success = true, want false")
		}
	})
}

func TestStuckProbeReleased(t *testing.T) {
	g := newTestGroup(t, Config{ConsecutiveFailures: 1, ProbeTimeout: 10 * time.Second}, "a", "b")
	g.Failure("a", t0, "x")
	end := t0.Add(DefaultBaseEjection)
	if !g.Allow("a", end) {
		t.Fatal("first probe: Allow() = false, want true")
	}
	if g.Allow("a", end.Add(10*time.Second-time.Nanosecond)) {
		t.Fatal("before the probe timeout: Allow() = true, want false")
	}
	if !g.Allow("a", end.Add(10*time.Second)) {
		t.Fatal("at the probe timeout: Allow() = false, want true (new probe)")
	}
	if g.Allow("a", end.Add(10*time.Second)) {
		t.Error("second caller after the probe timeout: Allow() = true, want false")
	}
}

func TestEjectionCountDecays(t *testing.T) {
	cfg := Config{ConsecutiveFailures: 1, BaseEjection: 10 * time.Second, MaxEjection: 100 * time.Second}
	tests := []struct {
		name    string
		healthy time.Duration
		want    time.Duration // next cool-down
	}{
		{name: "less than one period", healthy: 99 * time.Second, want: 40 * time.Second},
		{name: "one period", healthy: 100 * time.Second, want: 20 * time.Second},
		{name: "two periods", healthy: 200 * time.Second, want: 10 * time.Second},
		{name: "long ago", healthy: 24 * time.Hour, want: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGroup(t, cfg, "a", "b")
			// Ejected twice in a row, then restored at t0+30s with count 2.
			g.Failure("a", t0, "x")
			g.Allow("a", t0.Add(10*time.Second))
			g.Failure("a", t0.Add(10*time.Second), "x")
			restored := t0.Add(30 * time.Second)
			g.Allow("a", restored)
			if got := g.Success("a", restored); got != Restored {
				t.Fatalf("probe Success() = %v, want restored", got)
			}
			now := restored.Add(tt.healthy)
			if got := g.Failure("a", now, "x"); got != Ejected {
				t.Fatalf("Failure() = %v, want ejected", got)
			}
			if got := state(t, g, "a", now).EjectedUntil.Sub(now); got != tt.want {
				t.Errorf("cool-down after %v healthy = %v, want %v", tt.healthy, got, tt.want)
			}
		})
	}
}

func TestLastErrorKept(t *testing.T) {
	g := newTestGroup(t, Config{ConsecutiveFailures: Disabled, FailureRatio: Disabled}, "a")
	g.Failure("a", t0, "connect refused")
	g.Failure("a", t0.Add(time.Second), "status 502")
	st := state(t, g, "a", t0.Add(time.Second))
	if st.LastError != "status 502" || !st.LastErrorAt.Equal(t0.Add(time.Second)) {
		t.Errorf("LastError, LastErrorAt = %q, %v; want %q, %v", st.LastError, st.LastErrorAt, "status 502", t0.Add(time.Second))
	}
}

func TestTransitionString(t *testing.T) {
	tests := []struct {
		tr   Transition
		want string
	}{{None, "none"}, {Ejected, "ejected"}, {Restored, "restored"}, {Suppressed, "suppressed"}, {Transition(99), "unknown"}}
	for _, tt := range tests {
		if got := tt.tr.String(); got != tt.want {
			t.Errorf("Transition(%d).String() = %q, want %q", tt.tr, got, tt.want)
		}
	}
}
