package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// fast is a check quick enough for tests: thresholds stay at their defaults
// (2 and 3).
var fast = Check{Interval: 10 * time.Millisecond, Timeout: time.Second}

// upstream is a replica whose answer the test sets: a status, or blocking
// until the probe gives up.
type upstream struct {
	*httptest.Server
	status  atomic.Int32
	block   atomic.Bool
	served  [600]atomic.Int64 // requests answered, by status set
	blocked atomic.Int64      // requests held until they timed out
	release chan struct{}     // closed by Close: held requests end
	once    sync.Once

	mu   sync.Mutex
	last *http.Request // the last request's headers and URL
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{release: make(chan struct{})}
	u.status.Store(http.StatusOK)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		u.mu.Unlock()
		if u.block.Load() {
			u.blocked.Add(1)
			select {
			case <-r.Context().Done():
			case <-u.release:
			}
			return
		}
		status := int(u.status.Load())
		u.served[status].Add(1)
		w.WriteHeader(status)
	}))
	t.Cleanup(u.Close)
	return u
}

// Close releases held requests, then closes the server: httptest waits for
// requests in progress.
func (u *upstream) Close() {
	u.once.Do(func() { close(u.release) })
	u.Server.Close()
}

func (u *upstream) target(t *testing.T, service, id string, chk Check) Target {
	t.Helper()
	parsed, err := url.Parse(u.URL)
	if err != nil {
		t.Fatalf("url.Parse(%q) error = %v", u.URL, err)
	}
	return Target{Service: service, Replica: &snapshot.Replica{ID: id, URL: parsed, Weight: 1}, Check: chk}
}

func (u *upstream) lastRequest() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// event is one call of the Reporter.
type event struct {
	service, replicaID string
	healthy            bool
	// served is how many requests the replica's upstream had answered with
	// its current status, or held, when the report came.
	served int64
}

// recorder is the Reporter of these tests.
type recorder struct {
	mu        sync.Mutex
	events    []event
	upstreams map[string]*upstream // by replica ID
}

func newRecorder() *recorder { return &recorder{upstreams: map[string]*upstream{}} }

func (r *recorder) SetHealthy(service, replicaID string, healthy bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := event{service: service, replicaID: replicaID, healthy: healthy}
	if u := r.upstreams[replicaID]; u != nil {
		if u.block.Load() {
			e.served = u.blocked.Load()
		} else {
			e.served = u.served[u.status.Load()].Load()
		}
	}
	r.events = append(r.events, e)
}

func (r *recorder) all() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

// eventually polls cond until it holds, failing the test after 3 seconds.
// Probes run on real sockets and timers, so their outcome is awaited.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(3 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// start runs c until the end of the test, when Run must return nil.
func start(t *testing.T, c *Checker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
}

func newTestChecker(t *testing.T, rec Reporter) *Checker {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return New(&http.Client{Transport: tr}, rec, nil)
}

// probed waits until the loop of (service, id) has probed at least n times
// in a row with the same outcome, and returns its result.
func probed(t *testing.T, c *Checker, service, id string, n int, healthy bool) Result {
	t.Helper()
	var r Result
	eventually(t, service+"/"+id+" probed", func() bool {
		var ok bool
		r, ok = c.Status(service, id)
		streak := r.Failures
		if healthy {
			streak = r.Successes
		}
		return ok && r.Healthy == healthy && streak >= n
	})
	return r
}

func TestCheckerTransitions(t *testing.T) {
	tests := []struct {
		name       string
		check      Check
		fail       func(u *upstream)
		wantStatus int  // of the last failed probe
		counted    bool // the upstream counts the failed probes
		recover    func(u *upstream)
	}{
		{
			name:       "status 500",
			check:      fast,
			fail:       func(u *upstream) { u.status.Store(500) },
			wantStatus: 500,
			counted:    true,
			recover:    func(u *upstream) { u.status.Store(204) },
		},
		{
			name:       "unexpected status",
			check:      Check{Interval: fast.Interval, Timeout: fast.Timeout, ExpectedStatuses: []int{200, 204}},
			fail:       func(u *upstream) { u.status.Store(302) },
			wantStatus: 302,
			counted:    true,
			recover:    func(u *upstream) { u.status.Store(204) },
		},
		{
			name:    "timeout",
			check:   Check{Interval: fast.Interval, Timeout: 20 * time.Millisecond},
			fail:    func(u *upstream) { u.block.Store(true) },
			counted: true,
			recover: func(u *upstream) { u.status.Store(204); u.block.Store(false) },
		},
		{
			name:  "server closed",
			check: fast,
			fail:  func(u *upstream) { u.Close() },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t)
			rec := newRecorder()
			rec.upstreams["r1"] = u
			c := newTestChecker(t, rec)
			start(t, c)
			c.Sync([]Target{u.target(t, "svc", "r1", tt.check)})

			probed(t, c, "svc", "r1", 3, true)
			if got := rec.all(); len(got) != 0 {
				t.Fatalf("reports while healthy = %+v, want none", got)
			}

			tt.fail(u)
			eventually(t, "unhealthy report", func() bool { return len(rec.all()) >= 1 })
			got := rec.all()[0]
			if got.service != "svc" || got.replicaID != "r1" || got.healthy {
				t.Errorf("report = %+v, want svc/r1 unhealthy", got)
			}
			if tt.counted && got.served != DefaultUnhealthyThreshold {
				t.Errorf("unhealthy reported after %d failed probes, want %d", got.served, DefaultUnhealthyThreshold)
			}
			r, _ := c.Status("svc", "r1")
			if r.Healthy || r.Failures < DefaultUnhealthyThreshold || r.Err == nil || r.Status != tt.wantStatus || r.Checked.IsZero() {
				t.Errorf("Status() = %+v, want unhealthy, %d+ failures, an error, status %d", r, DefaultUnhealthyThreshold, tt.wantStatus)
			}
			if tt.recover == nil {
				return
			}

			tt.recover(u)
			eventually(t, "healthy report", func() bool { return len(rec.all()) >= 2 })
			got = rec.all()[1]
			if !got.healthy {
				t.Errorf("second report = %+v, want healthy", got)
			}
			if got.served != DefaultHealthyThreshold {
				t.Errorf("healthy reported after %d successful probes, want %d", got.served, DefaultHealthyThreshold)
			}
			r, _ = c.Status("svc", "r1")
			if !r.Healthy || r.Err != nil || r.Status != 204 {
				t.Errorf("Status() = %+v, want healthy, no error, status 204", r)
			}
		})
	}
}

func TestCheckerRequest(t *testing.T) {
	elsewhere := newUpstream(t)
	var mu sync.Mutex
	var last *http.Request
	u := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Clone(context.Background())
		mu.Unlock()
		http.Redirect(w, r, elsewhere.URL, http.StatusFound)
	}))
	defer u.Close()
	rec := newRecorder()
	c := newTestChecker(t, rec)
	start(t, c)
	chk := fast
	chk.Path = "/healthz?deep=1"
	chk.Host = "api.internal"
	c.Sync([]Target{(&upstream{Server: u, release: make(chan struct{})}).target(t, "svc", "r1", chk)})

	r := probed(t, c, "svc", "r1", 3, true)
	if r.Status != http.StatusFound {
		t.Errorf("Status().Status = %d, want 302: redirects are not followed", r.Status)
	}
	if n := elsewhere.served[200].Load(); n != 0 {
		t.Errorf("redirect target probed %d times, want 0", n)
	}
	if want := u.URL + "/healthz?deep=1"; r.URL != want {
		t.Errorf("Status().URL = %q, want %q", r.URL, want)
	}
	mu.Lock()
	req := last
	mu.Unlock()
	if req.Method != http.MethodGet || req.URL.Path != "/healthz" || req.URL.RawQuery != "deep=1" || req.Host != "api.internal" {
		t.Errorf("probe = %s %s?%s Host %q, want GET /healthz?deep=1 Host api.internal", req.Method, req.URL.Path, req.URL.RawQuery, req.Host)
	}
	if got := rec.all(); len(got) != 0 {
		t.Errorf("reports = %+v, want none", got)
	}
}

func TestCheckerSync(t *testing.T) {
	a, b := newUpstream(t), newUpstream(t)
	c := newTestChecker(t, nil)
	start(t, c)

	ta, tb := a.target(t, "svc", "a", fast), b.target(t, "svc", "b", fast)
	invalid := b.target(t, "svc", "invalid", Check{Path: "no-slash"})
	noURL := Target{Service: "svc", Replica: &snapshot.Replica{ID: "nourl"}}
	c.Sync([]Target{ta, invalid, noURL})
	before := probed(t, c, "svc", "a", 10, true)
	if n := b.served[200].Load(); n != 0 {
		t.Errorf("b probed %d times before it was declared, want 0", n)
	}

	// Adding b keeps a's loop: its streak goes on rather than restarting.
	// A fresh Replica value with the same ID and URL, as a new snapshot
	// brings, is the same target.
	ta2 := a.target(t, "svc", "a", fast)
	c.Sync([]Target{ta2, tb, invalid, noURL})
	probed(t, c, "svc", "b", 1, true)
	if r, _ := c.Status("svc", "a"); r.Successes < before.Successes {
		t.Errorf("a's successes went from %d to %d: its loop restarted on an identical Sync", before.Successes, r.Successes)
	}
	for _, id := range []string{"invalid", "nourl"} {
		if _, ok := c.Status("svc", id); ok {
			t.Errorf("Status(svc, %s) found a loop, want none for an invalid target", id)
		}
	}

	// Changing a's check restarts its loop with the new path.
	ta3 := a.target(t, "svc", "a", Check{Path: "/other", Interval: fast.Interval, Timeout: fast.Timeout})
	c.Sync([]Target{ta3, tb})
	eventually(t, "a probed on /other", func() bool {
		req := a.lastRequest()
		return req != nil && req.URL.Path == "/other"
	})

	// Removing a stops its loop: Status forgets a loop only once it ended.
	c.Sync([]Target{tb})
	eventually(t, "a's loop to stop", func() bool { _, ok := c.Status("svc", "a"); return !ok })
	if got := c.Statuses(); len(got) != 1 || got[0].ReplicaID != "b" {
		t.Errorf("Statuses() = %+v, want only b", got)
	}

	c.Sync(nil)
	eventually(t, "all loops to stop", func() bool { return len(c.Statuses()) == 0 })
}

func TestCheckerSameReplicaInTwoServices(t *testing.T) {
	u := newUpstream(t)
	c := newTestChecker(t, nil)
	start(t, c)
	c.Sync([]Target{u.target(t, "one", "static:x", fast), u.target(t, "two", "static:x", fast)})
	probed(t, c, "one", "static:x", 1, true)
	probed(t, c, "two", "static:x", 1, true)
	if got := c.Statuses(); len(got) != 2 || got[0].Service != "one" || got[1].Service != "two" {
		t.Errorf("Statuses() = %+v, want one and two", got)
	}
}

func TestCheckerRemovedUnhealthyReportedHealthy(t *testing.T) {
	u := newUpstream(t)
	u.status.Store(503)
	rec := newRecorder()
	c := newTestChecker(t, rec)
	start(t, c)
	c.Sync([]Target{u.target(t, "svc", "r1", fast)})
	eventually(t, "unhealthy report", func() bool { return len(rec.all()) == 1 })

	c.Sync(nil)
	eventually(t, "the loop to stop", func() bool { _, ok := c.Status("svc", "r1"); return !ok })
	got := rec.all()
	if len(got) != 2 || got[0].healthy || !got[1].healthy {
		t.Errorf("reports = %+v, want unhealthy then healthy when the check was removed", got)
	}
}

func TestCheckerRunEndStopsLoops(t *testing.T) {
	baseline := runtime.NumGoroutine()
	tr := &http.Transport{}
	rec := newRecorder()
	c := New(&http.Client{Transport: tr}, rec, nil)

	var targets []Target
	var ups []*upstream
	for i := range 5 {
		u := newUpstream(t)
		ups = append(ups, u)
		targets = append(targets, u.target(t, "svc", string(rune('a'+i)), fast))
	}
	// A replica that failed, then stopped answering: its loop is stuck in a
	// probe whose timeout is far beyond the test's, and must report the
	// replica healthy again on its way out, before Run returns.
	stuck := newUpstream(t)
	stuck.status.Store(500)
	targets = append(targets, stuck.target(t, "svc", "stuck", Check{Interval: fast.Interval, Timeout: time.Hour}))
	c.Sync(targets)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	for _, tg := range targets[:5] {
		probed(t, c, "svc", tg.Replica.ID, 1, true)
	}
	eventually(t, "stuck reported unhealthy", func() bool { return len(rec.all()) == 1 })
	stuck.block.Store(true)
	eventually(t, "the stuck probe", func() bool { return stuck.blocked.Load() > 0 })
	if err := c.Run(ctx); err == nil {
		t.Errorf("second Run() = nil, want an error while running")
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := c.Statuses(); len(got) != 0 {
		t.Errorf("Statuses() after Run returned = %d loops, want 0", len(got))
	}
	if got := rec.all(); len(got) != 2 || got[1].replicaID != "stuck" || !got[1].healthy {
		t.Errorf("reports when Run returned = %+v, want stuck unhealthy, then healthy as its loop ended", got)
	}

	// Every goroutine the checker started is gone once the connections are.
	for _, u := range append(ups, stuck) {
		u.Close()
	}
	tr.CloseIdleConnections()
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= baseline })

	// Sync after Run ended starts nothing.
	c.Sync(targets[:1])
	if got := c.Statuses(); len(got) != 0 {
		t.Errorf("Statuses() after Sync without Run = %d loops, want 0", len(got))
	}
}

func TestCheckerNilCollaborators(t *testing.T) {
	u := newUpstream(t)
	u.status.Store(500)
	c := New(nil, nil, nil)
	start(t, c)
	c.Sync([]Target{u.target(t, "svc", "r1", fast)})
	r := probed(t, c, "svc", "r1", 3, false)
	if r.Err == nil {
		t.Errorf("Status().Err = %v, want an error", r.Err)
	}
}
