package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// Reporter receives health transitions. The checker calls it from its probe
// loops, concurrently for different replicas, so it must be safe for
// concurrent use and should return quickly.
type Reporter interface {
	// SetHealthy records that replicaID of service became healthy or
	// unhealthy.
	SetHealthy(service, replicaID string, healthy bool)
}

// Target is one replica to check, as declared by the current snapshot.
type Target struct {
	// Service is the name of the replica's service.
	Service string
	// Replica is the replica checked; its ID and URL identify the target.
	Replica *snapshot.Replica
	// Check says how; zero fields take their defaults.
	Check Check
}

// Result is the latest outcome of a replica's health checks.
type Result struct {
	// Service and ReplicaID identify the replica.
	Service, ReplicaID string
	// URL is the URL probed.
	URL string
	// Healthy is the replica's health as last reported; true before any
	// probe.
	Healthy bool
	// Status is the status of the last response, 0 if there was none.
	Status int
	// Err is why the last probe failed, nil if it succeeded.
	Err error
	// Checked is when the last probe ended; zero before the first.
	Checked time.Time
	// Successes and Failures count the consecutive successes and failures
	// up to the last probe; one of them is zero.
	Successes, Failures int
}

// key identifies a probe loop: a static target's replica ID is derived from
// its URL, so two services may share one.
type key struct {
	service, replicaID string
}

// Checker runs one probe loop per target declared by Sync while Run runs.
// It is safe for concurrent use. Create it with New.
type Checker struct {
	client  *http.Client
	report  Reporter
	log     *slog.Logger
	changed chan struct{} // wakes Run after Sync; capacity 1
	running atomic.Bool

	mu      sync.Mutex
	targets map[key]Target // declared by the last Sync
	loops   map[key]*loop  // running
}

// New returns a Checker that probes with a copy of client (nil means a
// client with net/http defaults) set never to follow redirects nor keep
// cookies, reports transitions to report (nil: none, results are only
// available through Status) and logs transitions to log (nil: discarded).
func New(client *http.Client, report Reporter, log *slog.Logger) *Checker {
	c := http.Client{}
	if client != nil {
		c = *client
	}
	c.Jar = nil
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checker{
		client:  &c,
		report:  report,
		log:     log,
		changed: make(chan struct{}, 1),
		targets: map[key]Target{},
		loops:   map[key]*loop{},
	}
}

// Sync declares the complete set of targets to check, replacing the previous
// one; it does not block. While Run runs, a loop starts for each new target,
// the loop of each target no longer declared stops, a loop whose URL or
// check changed restarts, and the others keep running undisturbed. Targets
// with a nil replica or URL, or an invalid check, are logged and skipped; of
// duplicates (same service and replica ID), the last wins.
func (c *Checker) Sync(targets []Target) {
	declared := make(map[key]Target, len(targets))
	for _, t := range targets {
		if t.Replica == nil || t.Replica.URL == nil {
			c.log.Error("health check target without a replica URL", "service", t.Service)
			continue
		}
		if err := t.Check.Validate(); err != nil {
			c.log.Error("invalid health check", "service", t.Service, "replica_id", t.Replica.ID, "error", err)
			continue
		}
		t.Check = t.Check.withDefaults()
		declared[key{t.Service, t.Replica.ID}] = t
	}
	c.mu.Lock()
	c.targets = declared
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Run runs the probe loops of the declared targets, following Sync, until
// ctx ends; then it stops every loop, waits for them and returns nil. It
// returns an error at once if the Checker is already running.
func (c *Checker) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("health checker is already running")
	}
	defer c.running.Store(false)
	defer c.stopAll()
	for {
		c.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-c.changed:
		}
	}
}

// Status returns the latest result of the checks of replicaID in service,
// and false if no loop checks it.
func (c *Checker) Status(service, replicaID string) (Result, bool) {
	c.mu.Lock()
	l := c.loops[key{service, replicaID}]
	c.mu.Unlock()
	if l == nil {
		return Result{}, false
	}
	return l.result(), true
}

// Statuses returns the latest result of every replica checked, sorted by
// service and replica ID.
func (c *Checker) Statuses() []Result {
	c.mu.Lock()
	results := make([]Result, 0, len(c.loops))
	for _, l := range c.loops {
		results = append(results, l.result())
	}
	c.mu.Unlock()
	slices.SortFunc(results, func(a, b Result) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ReplicaID, b.ReplicaID))
	})
	return results
}

// reconcile brings the running loops in line with the declared targets.
// Loops to stop are stopped and waited for before their replacements start,
// so that an old loop's last report cannot follow a new loop's first.
func (c *Checker) reconcile(ctx context.Context) {
	c.mu.Lock()
	var stop []*loop
	for k, l := range c.loops {
		if t, ok := c.targets[k]; !ok || !l.same(t) {
			stop = append(stop, l)
		}
	}
	c.mu.Unlock()
	c.stop(stop)

	c.mu.Lock()
	defer c.mu.Unlock()
	for k, t := range c.targets {
		if _, ok := c.loops[k]; ok {
			continue
		}
		l, err := newLoop(t)
		if err != nil {
			c.log.Error("health check not started", "service", t.Service, "replica_id", t.Replica.ID, "error", err)
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		l.cancel = cancel
		c.loops[k] = l
		go c.run(lctx, l)
	}
}

// stopAll stops every loop; Run calls it on its way out.
func (c *Checker) stopAll() {
	c.mu.Lock()
	all := make([]*loop, 0, len(c.loops))
	for _, l := range c.loops {
		all = append(all, l)
	}
	c.mu.Unlock()
	c.stop(all)
}

// stop cancels loops, waits for them to end and forgets them.
func (c *Checker) stop(loops []*loop) {
	for _, l := range loops {
		l.cancel()
	}
	for _, l := range loops {
		<-l.done
	}
	c.mu.Lock()
	for _, l := range loops {
		if k := l.key(); c.loops[k] == l {
			delete(c.loops, k)
		}
	}
	c.mu.Unlock()
}

// loop is the probe loop of one target.
type loop struct {
	target Target // Check with defaults
	url    string
	cancel context.CancelFunc
	done   chan struct{}
	last   atomic.Pointer[Result] // nil before the first probe
}

func newLoop(t Target) (*loop, error) {
	ref, err := url.Parse(t.Check.Path)
	if err != nil {
		return nil, fmt.Errorf("parse path %q: %w", t.Check.Path, err)
	}
	return &loop{
		target: t,
		url:    t.Replica.URL.ResolveReference(ref).String(),
		done:   make(chan struct{}),
	}, nil
}

func (l *loop) key() key { return key{l.target.Service, l.target.Replica.ID} }

// same reports whether t is the target l already checks.
func (l *loop) same(t Target) bool {
	return l.target.Replica.URL.String() == t.Replica.URL.String() && l.target.Check.equal(t.Check)
}

func (l *loop) result() Result {
	if r := l.last.Load(); r != nil {
		return *r
	}
	return Result{Service: l.target.Service, ReplicaID: l.target.Replica.ID, URL: l.url, Healthy: true}
}

// run probes l's target until ctx ends. If the replica was reported
// unhealthy, it is reported healthy on the way out, so that a check removed
// from the configuration never leaves its replica ejected.
func (c *Checker) run(ctx context.Context, l *loop) {
	defer close(l.done)
	chk := l.target.Check
	st := newState()
	defer func() {
		if !st.healthy {
			c.setHealthy(l, true)
		}
	}()
	// The first probe comes after a random part of the interval, so that
	// the replicas of a new snapshot are not all probed at once.
	timer := time.NewTimer(rand.N(chk.Interval))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		status, err := c.probe(ctx, l)
		if ctx.Err() != nil {
			return // stopping: this failure says nothing about the replica
		}
		changed := st.observe(err == nil, chk)
		l.last.Store(&Result{
			Service:   l.target.Service,
			ReplicaID: l.target.Replica.ID,
			URL:       l.url,
			Healthy:   st.healthy,
			Status:    status,
			Err:       err,
			Checked:   time.Now(),
			Successes: st.successes,
			Failures:  st.failures,
		})
		if changed {
			if st.healthy {
				c.log.Info("replica healthy", "service", l.target.Service, "replica_id", l.target.Replica.ID, "status", status)
			} else {
				c.log.Warn("replica unhealthy", "service", l.target.Service, "replica_id", l.target.Replica.ID,
					"status", status, "error", err, "failures", st.failures)
			}
			c.setHealthy(l, st.healthy)
		}
		timer.Reset(chk.Interval)
	}
}

func (c *Checker) setHealthy(l *loop, healthy bool) {
	if c.report != nil {
		c.report.SetHealthy(l.target.Service, l.target.Replica.ID, healthy)
	}
}

// maxDrain bounds the response body read so that the connection can be
// reused; a longer body is cut and its connection closed.
const maxDrain = 64 << 10

// probe sends one check request and returns the response status (0 if
// none) and why it failed (nil on success).
func (c *Checker) probe(ctx context.Context, l *loop) (int, error) {
	chk := l.target.Check
	ctx, cancel := context.WithTimeout(ctx, chk.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		return 0, fmt.Errorf("health check request: %w", err)
	}
	if chk.Host != "" {
		req.Host = chk.Host
	}
	req.Header.Set("User-Agent", "gatehouse-health-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("health check: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain)); err != nil {
		return resp.StatusCode, fmt.Errorf("health check: read body: %w", err)
	}
	if !chk.expects(resp.StatusCode) {
		return resp.StatusCode, fmt.Errorf("health check: unexpected status %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
