package breaker

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

func TestEjectionCap(t *testing.T) {
	tests := []struct {
		name     string
		percent  int
		replicas []string
		trips    []Transition // for replicas in order
	}{
		{name: "4 replicas 50%", percent: 50, replicas: []string{"a", "b", "c", "d"}, trips: []Transition{Ejected, Ejected, Suppressed, Suppressed}},
		{name: "at least one", percent: 10, replicas: []string{"a", "b", "c"}, trips: []Transition{Ejected, Suppressed, Suppressed}},
		{name: "single replica", percent: 50, replicas: []string{"a"}, trips: []Transition{Ejected}},
		{name: "100%", percent: 100, replicas: []string{"a", "b"}, trips: []Transition{Ejected, Ejected}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGroup(t, Config{ConsecutiveFailures: 1, MaxEjectedPercent: tt.percent, PanicThresholdPercent: Disabled}, tt.replicas...)
			var suppressed uint64
			for i, id := range tt.replicas {
				if got := g.Failure(id, t0, "x"); got != tt.trips[i] {
					t.Errorf("Failure(%q) = %v, want %v", id, got, tt.trips[i])
				}
				if tt.trips[i] == Suppressed {
					suppressed++
					if !g.Allow(id, t0) {
						t.Errorf("Allow(%q) after a suppressed trip = false, want true", id)
					}
				}
			}
			if got := g.Suppressed(); got != suppressed {
				t.Errorf("Suppressed() = %d, want %d", got, suppressed)
			}
		})
	}
}

func TestEjectionCapFreedByRestore(t *testing.T) {
	g := newTestGroup(t, Config{ConsecutiveFailures: 1}, "a", "b", "c", "d")
	fail(g, "a", t0, 1)
	fail(g, "b", t0, 1)
	if got := g.Failure("c", t0, "x"); got != Suppressed {
		t.Fatalf("third trip: Failure() = %v, want suppressed", got)
	}
	end := t0.Add(DefaultBaseEjection)
	g.Allow("a", end)
	g.Success("a", end)
	if got := g.Failure("c", end, "x"); got != Ejected {
		t.Errorf("trip after a restore freed the cap: Failure() = %v, want ejected", got)
	}
}

func TestPanicMode(t *testing.T) {
	ids := []string{"a", "b", "c", "d"}
	tests := []struct {
		name      string
		cfg       Config
		unhealthy []string
		tripped   []string
		manual    []string
		wantPanic bool
		want      map[string]bool // Available
	}{
		{
			name:      "half available is not below 50%",
			unhealthy: []string{"a", "b"},
			want:      map[string]bool{"a": false, "b": false, "c": true, "d": true},
		},
		{
			name:      "health checks below threshold",
			unhealthy: []string{"a", "b", "c"},
			wantPanic: true,
			want:      map[string]bool{"a": true, "b": true, "c": true, "d": true},
		},
		{
			name:      "ejections and health checks together",
			tripped:   []string{"a", "b"},
			unhealthy: []string{"b", "c"},
			wantPanic: true,
			want:      map[string]bool{"a": true, "b": true, "c": true, "d": true},
		},
		{
			name:      "overlapping ejection and health check count once",
			tripped:   []string{"a"},
			unhealthy: []string{"a", "b"},
			want:      map[string]bool{"a": false, "b": false, "c": true, "d": true},
		},
		{
			name:      "disabled",
			cfg:       Config{PanicThresholdPercent: Disabled},
			unhealthy: []string{"a", "b", "c", "d"},
			want:      map[string]bool{"a": false, "b": false, "c": false, "d": false},
		},
		{
			name:      "operator ejections stay out",
			manual:    []string{"a", "b"},
			unhealthy: []string{"c"},
			wantPanic: true,
			want:      map[string]bool{"a": false, "b": false, "c": true, "d": true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.ConsecutiveFailures = 1
			g := newTestGroup(t, cfg, ids...)
			for _, id := range tt.tripped {
				if got := g.Failure(id, t0, "x"); got != Ejected {
					t.Fatalf("Failure(%q) = %v, want ejected", id, got)
				}
			}
			for _, id := range tt.unhealthy {
				if err := g.SetHealthy(id, false); err != nil {
					t.Fatalf("SetHealthy(%q) error = %v", id, err)
				}
			}
			for _, id := range tt.manual {
				if err := g.Eject(id, 0, t0); err != nil {
					t.Fatalf("Eject(%q) error = %v", id, err)
				}
			}
			if got := g.Panicking(); got != tt.wantPanic {
				t.Errorf("Panicking() = %v, want %v", got, tt.wantPanic)
			}
			for _, id := range ids {
				if got := g.Available(id, t0); got != tt.want[id] {
					t.Errorf("Available(%q) = %v, want %v", id, got, tt.want[id])
				}
				if got := g.Allow(id, t0); got != tt.want[id] {
					t.Errorf("Allow(%q) = %v, want %v", id, got, tt.want[id])
				}
			}
		})
	}
}

func TestHealthCheckRecovery(t *testing.T) {
	g := newTestGroup(t, Config{}, "a", "b", "c")
	if err := g.SetHealthy("a", false); err != nil {
		t.Fatalf("SetHealthy() error = %v", err)
	}
	if got := state(t, g, "a", t0).State; got != StateUnhealthy {
		t.Errorf("State = %q, want %q", got, StateUnhealthy)
	}
	if g.Allow("a", t0) {
		t.Error("Allow() of an unhealthy replica = true, want false")
	}
	if err := g.SetHealthy("a", true); err != nil {
		t.Fatalf("SetHealthy() error = %v", err)
	}
	if !g.Allow("a", t0) {
		t.Error("Allow() after the health check passed = false, want true")
	}
	if err := g.SetHealthy("zz", true); !errors.Is(err, ErrUnknownReplica) {
		t.Errorf("SetHealthy(unknown) error = %v, want ErrUnknownReplica", err)
	}
}

func TestManualEjectAndRestore(t *testing.T) {
	t.Run("for a duration", func(t *testing.T) {
		g := newTestGroup(t, Config{MaxEjectedPercent: 10}, "a", "b", "c", "d")
		if err := g.Eject("a", time.Minute, t0); err != nil {
			t.Fatalf("Eject() error = %v", err)
		}
		st := state(t, g, "a", t0)
		if st.State != StateEjected || !st.Manual || !st.EjectedUntil.Equal(t0.Add(time.Minute)) {
			t.Errorf("State() = %+v, want manual ejection until %v", st, t0.Add(time.Minute))
		}
		if g.Allow("a", t0.Add(time.Minute-time.Nanosecond)) {
			t.Error("Allow() during the ejection = true, want false")
		}
		// The cap (one replica at 10%) does not apply to the operator.
		if err := g.Eject("b", time.Minute, t0); err != nil {
			t.Fatalf("Eject() error = %v", err)
		}
		if g.Allow("b", t0) {
			t.Error("second manual ejection beyond the cap: Allow() = true, want false")
		}
		if !g.Allow("a", t0.Add(time.Minute)) {
			t.Error("Allow() at the end of the ejection = false, want true (probe)")
		}
	})

	t.Run("until restored", func(t *testing.T) {
		g := newTestGroup(t, Config{ConsecutiveFailures: 1}, "a", "b")
		fail(g, "a", t0, 1)
		if err := g.Eject("a", 0, t0); err != nil {
			t.Fatalf("Eject() error = %v", err)
		}
		later := t0.Add(1000 * time.Hour)
		if g.Allow("a", later) {
			t.Fatal("Allow() long after an indefinite ejection = true, want false")
		}
		if st := state(t, g, "a", later); !st.EjectedUntil.IsZero() || !st.Manual {
			t.Errorf("State() = %+v, want manual with zero EjectedUntil", st)
		}
		if err := g.Restore("a", later); err != nil {
			t.Fatalf("Restore() error = %v", err)
		}
		st := state(t, g, "a", later)
		if st.State != StateHealthy || st.Manual || st.Ejections != 0 {
			t.Errorf("State() after Restore = %+v, want healthy, not manual, 0 ejections", st)
		}
		if !g.Allow("a", later) {
			t.Error("Allow() after Restore = false, want true")
		}
		// The freed slot counts: b may trip now.
		if got := g.Failure("b", later, "x"); got != Ejected {
			t.Errorf("Failure(b) after Restore(a) = %v, want ejected", got)
		}
	})

	t.Run("unknown replica", func(t *testing.T) {
		g := newTestGroup(t, Config{}, "a")
		if err := g.Eject("zz", time.Minute, t0); !errors.Is(err, ErrUnknownReplica) {
			t.Errorf("Eject(unknown) error = %v, want ErrUnknownReplica", err)
		}
		if err := g.Restore("zz", t0); !errors.Is(err, ErrUnknownReplica) {
			t.Errorf("Restore(unknown) error = %v, want ErrUnknownReplica", err)
		}
	})
}

func TestNilGroup(t *testing.T) {
	bs := New(nil, nil)
	g := bs.For("nope")
	if g != nil {
		t.Fatalf("For(unknown) = %v, want nil", g)
	}
	if !g.Allow("a", t0) || !g.Available("a", t0) || g.Panicking() {
		t.Error("nil group: Allow/Available = false or Panicking = true, want true, true, false")
	}
	if got := g.Failure("a", t0, "x"); got != None {
		t.Errorf("nil group: Failure() = %v, want none", got)
	}
	if err := g.Eject("a", 0, t0); !errors.Is(err, ErrUnknownReplica) {
		t.Errorf("nil group: Eject() error = %v, want ErrUnknownReplica", err)
	}
	if got := len(g.Statuses(t0)); got != 0 {
		t.Errorf("nil group: len(Statuses()) = %d, want 0", got)
	}
}

func TestSyncKeepsStateOfKeptReplicas(t *testing.T) {
	bs := newTestBreakers(t, Config{ConsecutiveFailures: 1}, "a", "b", "c", "d")
	g := bs.For("svc")
	fail(g, "a", t0, 1)
	fail(g, "b", t0, 1)
	if err := g.SetHealthy("c", false); err != nil {
		t.Fatalf("SetHealthy() error = %v", err)
	}

	// b goes, e comes.
	bs.Sync(testSnap("svc", "a", "c", "d", "e"), t0)
	if got := bs.For("svc"); got != g {
		t.Fatal("For() after Sync returned a different group for a kept service")
	}
	if g.Breaker("b") != nil {
		t.Error(`Breaker("b") after removal != nil`)
	}
	st := g.Statuses(t0)
	want := map[string]string{"a": StateEjected, "c": StateUnhealthy, "d": StateHealthy, "e": StateHealthy}
	if len(st) != len(want) {
		t.Errorf("len(Statuses()) = %d, want %d", len(st), len(want))
	}
	for id, w := range want {
		if st[id].State != w {
			t.Errorf("Statuses()[%q].State = %q, want %q", id, st[id].State, w)
		}
	}
	// The removed replica's ejection no longer counts: with 4 replicas and
	// a 50% cap, one more may be ejected.
	if got := g.Failure("d", t0, "x"); got != Ejected {
		t.Errorf("Failure(d) = %v, want ejected (removed b freed its slot)", got)
	}
	if got := g.Failure("e", t0, "x"); got != Suppressed {
		t.Errorf("Failure(e) = %v, want suppressed", got)
	}

	// A replica that comes back starts afresh.
	bs.Sync(testSnap("svc", "a", "b", "c", "d", "e"), t0)
	if got := state(t, g, "b", t0).State; got != StateHealthy {
		t.Errorf("returning replica State = %q, want %q", got, StateHealthy)
	}

	// A service that goes is forgotten.
	bs.Sync(testSnap("other", "x"), t0)
	if bs.For("svc") != nil {
		t.Error(`For("svc") after the service went != nil`)
	}
	if bs.For("other") == nil {
		t.Error(`For("other") = nil, want a group`)
	}
}

func TestSyncConfigChange(t *testing.T) {
	cfg := Config{ConsecutiveFailures: 5}
	bs := New(func(*snapshot.Service) Config { return cfg }, nil)
	snap := testSnap("svc", "a", "b", "c", "d")
	bs.Sync(snap, t0)
	g := bs.For("svc")
	fail(g, "a", t0, 2)

	cfg = Config{ConsecutiveFailures: 3}
	bs.Sync(snap, t0)
	if got := g.Failure("a", t0, "x"); got != Ejected {
		t.Errorf("third failure after lowering the threshold to 3: Failure() = %v, want ejected", got)
	}

	cfg = Config{ConsecutiveFailures: -7} // invalid: defaults apply
	bs.Sync(snap, t0)
	if got := fail(g, "b", t0, DefaultConsecutiveFailures); got != Ejected {
		t.Errorf("after an invalid config: %d failures: Failure() = %v, want ejected", DefaultConsecutiveFailures, got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "zero", cfg: Config{}},
		{name: "disabled triggers", cfg: Config{ConsecutiveFailures: Disabled, FailureRatio: Disabled, PanicThresholdPercent: Disabled}},
		{name: "full", cfg: Config{ConsecutiveFailures: 3, FailureRatio: 1, Window: time.Second, MinRequests: 5, BaseEjection: time.Second, MaxEjection: time.Second, MaxEjectedPercent: 100, PanicThresholdPercent: 100, ProbeTimeout: time.Second}},
		{name: "negative consecutive", cfg: Config{ConsecutiveFailures: -2}, wantErr: true},
		{name: "ratio above 1", cfg: Config{FailureRatio: 1.5}, wantErr: true},
		{name: "negative ratio", cfg: Config{FailureRatio: -0.5}, wantErr: true},
		{name: "tiny window", cfg: Config{Window: 5}, wantErr: true},
		{name: "negative min requests", cfg: Config{MinRequests: -1}, wantErr: true},
		{name: "max below base", cfg: Config{BaseEjection: time.Minute, MaxEjection: time.Second}, wantErr: true},
		{name: "max below default base", cfg: Config{MaxEjection: time.Second}, wantErr: true},
		{name: "negative base", cfg: Config{BaseEjection: -time.Second}, wantErr: true},
		{name: "percent above 100", cfg: Config{MaxEjectedPercent: 101}, wantErr: true},
		{name: "panic above 100", cfg: Config{PanicThresholdPercent: 101}, wantErr: true},
		{name: "negative probe timeout", cfg: Config{ProbeTimeout: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
