package redislimit

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-gw/gatehouse/internal/ratelimit"
	"github.com/gatehouse-gw/gatehouse/internal/store/redisstore/redistest"
)

var redisServer redistest.Shared

func TestMain(m *testing.M) { os.Exit(redisServer.Run(m)) }

// scriptCounter counts the rate-limit scripts a client sends (EVALSHA and
// EVAL), so that tests can tell which requests reached Redis by count
// rather than by timing.
type scriptCounter struct{ n atomic.Int64 }

func (c *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (c *scriptCounter) load() int64 { return c.n.Load() }

// since returns how many scripts were sent since the count was base.
func (c *scriptCounter) since(base int64) int64 { return c.n.Load() - base }

// fakeClock is the clock of a Limiter's backoff, advanced by the test: the
// Redis calls themselves run in real time.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// share returns a Config.Share reporting n instances.
func share(n int) func() int { return func() int { return n } }

var t0 = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

// instance is one Limiter with its own client, as one gateway instance has.
type instance struct {
	*Limiter
	client  *redis.Client
	scripts *scriptCounter
}

// newInstance returns a Limiter on srv with its own client and a fresh
// Local fallback; cfg's Client and Fallback are filled in. A zero Timeout
// is 5s rather than the default: tests that are not about timeouts must get
// Redis's decisions even on a loaded machine.
func newInstance(t testing.TB, srv *redistest.Server, cfg Config) *instance {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	c := srv.Client(t, 0)
	sc := &scriptCounter{}
	c.AddHook(sc)
	fb, err := ratelimit.NewLocal(ratelimit.LocalConfig{})
	if err != nil {
		t.Fatalf("NewLocal() error = %v", err)
	}
	cfg.Client, cfg.Fallback = c, fb
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return &instance{Limiter: l, client: c, scripts: sc}
}

// runs numbers the prefixes handed out, so that a test run again on the
// shared server (-count) does not see the keys of its last run.
var runs atomic.Int64

// prefix returns a new key prefix of t's own on the shared server.
func prefix(t testing.TB) string {
	return "test:" + t.Name() + ":" + strconv.FormatInt(runs.Add(1), 10) + ":"
}

func allow(t testing.TB, l ratelimit.Limiter, key string, limit ratelimit.Limit) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), key, limit, time.Now())
	if err != nil {
		t.Fatalf("Allow(%q, %+v) error = %v", key, limit, err)
	}
	return d
}

// tat returns the TAT stored for a Redis key, or 0 if it is absent.
func tat(t testing.TB, c *redis.Client, rkey string) int64 {
	t.Helper()
	v, err := c.Get(context.Background(), rkey).Result()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	if err != nil {
		t.Fatalf("GET %s: %v", rkey, err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("GET %s = %q, want decimal Unix nanoseconds: %v", rkey, v, err)
	}
	return n
}

// TestAllowMatchesLocal checks every decision against ratelimit.Local's at
// the instant Redis decided. That instant is read back from the TAT the
// script leaves: after an allowed request it is now + Reset, and a denied
// one leaves it where it was, at now + RetryAfter + tau - t. The instant
// must then be a whole Redis microsecond near the test's clock, so a script
// that computes a wrong TAT or a wrong decision fails one check or another.
func TestAllowMatchesLocal(t *testing.T) {
	srv := redisServer.Server(t)
	tests := []struct {
		name  string
		limit ratelimit.Limit
	}{
		{"10 per 200ms", ratelimit.Limit{Requests: 10, Per: 200 * time.Millisecond}},
		// 33333333ns per request: not a whole number of microseconds.
		{"3 per 100ms burst 5", ratelimit.Limit{Requests: 3, Per: 100 * time.Millisecond, Burst: 5}},
		{"7 per 70ms burst 1", ratelimit.Limit{Requests: 7, Per: 70 * time.Millisecond, Burst: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := prefix(t)
			l := newInstance(t, srv, Config{Prefix: p})
			local, err := ratelimit.NewLocal(ratelimit.LocalConfig{})
			if err != nil {
				t.Fatal(err)
			}
			const key = "route:r"
			rkey := p + key
			burst := tt.limit.Burst
			if burst == 0 {
				burst = tt.limit.Requests
			}
			interval := int64(tt.limit.Per) / int64(tt.limit.Requests)
			tau := int64(burst) * interval

			var allowed, denied, reallowed int
			check := func() ratelimit.Decision {
				t.Helper()
				before := tat(t, l.client, rkey)
				d := allow(t, l, key, tt.limit)
				wall := time.Now().UnixNano()
				after := tat(t, l.client, rkey)
				var now int64
				if d.Allowed {
					now = after - int64(d.Reset)
				} else {
					// The key may have expired since, not before its TAT.
					expired := after == 0 && time.Now().UnixNano() > before
					if after != before && !expired {
						t.Fatalf("denied request moved the TAT from %d to %d", before, after)
					}
					now = before + interval - tau - int64(d.RetryAfter)
				}
				if now%1000 != 0 || now > wall || wall-now > int64(time.Second) {
					t.Fatalf("decision %+v implies Redis decided at %d, want a whole microsecond just before %d", d, now, wall)
				}
				want, err := local.Allow(context.Background(), key, tt.limit, time.Unix(0, now))
				if err != nil {
					t.Fatal(err)
				}
				if d != want {
					t.Fatalf("Allow() = %+v, want %+v as Local decides", d, want)
				}
				if d.Allowed {
					if denied > 0 {
						reallowed++
					}
					allowed++
				} else {
					denied++
				}
				return d
			}

			// The burst, back to back. Remaining may be higher if the test
			// was held up for an interval; check compares it exactly.
			for i := range burst {
				if d := check(); !d.Allowed || d.Remaining < burst-1-i {
					t.Fatalf("request %d of the burst: Allow() = %+v, want allowed with %d remaining", i+1, d, burst-1-i)
				}
			}
			// Then requests every millisecond for two allowances: denied,
			// allowed again as the allowance refills, denied again.
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for end := time.Now().Add(2 * time.Duration(tau)); time.Now().Before(end); {
				check()
				<-tick.C
			}
			if denied == 0 || reallowed == 0 {
				t.Fatalf("after the burst, %d denied and %d allowed again, want some of each", denied, reallowed)
			}
			// Idle until the key expires: the allowance is full again.
			for deadline := time.Now().Add(5 * time.Second); ; <-tick.C {
				n, err := l.client.Exists(context.Background(), rkey).Result()
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("key %s still exists after 5s, want it to expire once the allowance is full", rkey)
				}
			}
			if d := check(); !d.Allowed || d.Remaining != burst-1 {
				t.Fatalf("after the key expired: Allow() = %+v, want allowed with %d remaining", d, burst-1)
			}
		})
	}
}

func TestAllowSharedAcrossInstances(t *testing.T) {
	srv := redisServer.Server(t)
	// 30 an hour: no refill, however slowly the calls run.
	limit := ratelimit.Limit{Requests: 30, Per: time.Hour, Burst: 30}
	var instances [3]*instance
	p := prefix(t)
	for i := range instances {
		instances[i] = newInstance(t, srv, Config{Prefix: p, Share: share(3)})
		warmUp(t, instances[i])
	}
	const calls = 90
	var allowed, fromRedis atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range calls {
		l := instances[i%len(instances)]
		wg.Go(func() {
			<-start
			d, err := l.Allow(context.Background(), "key:k1", limit, time.Now())
			if err != nil {
				t.Errorf("Allow() error = %v", err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
			if d.Limit == 30 { // the fallback's share would be 10
				fromRedis.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := allowed.Load(); got != 30 {
		t.Errorf("%d of %d concurrent calls on 3 instances allowed, want 30", got, calls)
	}
	if got := fromRedis.Load(); got != calls {
		t.Errorf("%d of %d decisions came from Redis, want all", got, calls)
	}
}

func TestAllowPrefixesApart(t *testing.T) {
	srv := redisServer.Server(t)
	limit := ratelimit.Limit{Requests: 5, Per: time.Minute}
	p := prefix(t)
	a := newInstance(t, srv, Config{Prefix: p + "a:"})
	b := newInstance(t, srv, Config{Prefix: p + "b:"})
	a2 := newInstance(t, srv, Config{Prefix: p + "a:"})
	count := func(l *instance) int {
		n := 0
		for range 8 {
			if allow(t, l, "key:k1", limit).Allowed {
				n++
			}
		}
		return n
	}
	if got := count(a); got != 5 {
		t.Errorf("prefix a: %d of 8 allowed, want 5", got)
	}
	if got := count(b); got != 5 {
		t.Errorf("prefix b after a: %d of 8 allowed, want 5 (b must not see a's counts)", got)
	}
	if got := count(a2); got != 0 {
		t.Errorf("another limiter on prefix a: %d of 8 allowed, want 0 (it shares a's counts)", got)
	}
}

func TestAllowRedisPaused(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{}) // its own: pausing stops every user
	const timeout, backoff = 200 * time.Millisecond, time.Second
	// Scheduling under -race can delay a return well past the deadline;
	// what matters is that it is bounded, and the counts below.
	const slack = 500 * time.Millisecond
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	l := newInstance(t, srv, Config{Prefix: prefix(t), Share: share(3), Timeout: timeout, Backoff: backoff, Logger: log})
	clock := newFakeClock()
	l.health = newHealth(backoff, clock.now)
	limit := ratelimit.Limit{Requests: 30, Per: time.Minute, Burst: 30}
	const key = "key:k1"

	warmUp(t, l)
	if d := allow(t, l, key, limit); !d.Allowed || d.Limit != 30 || l.Degraded() {
		t.Fatalf("before the pause: Allow() = %+v, Degraded() = %v, want allowed by Redis (limit 30), not degraded", d, l.Degraded())
	}

	srv.Pause(t)
	// 50 calls one after the other: the first waits for Timeout and fails,
	// the others go straight to the fallback during the Backoff.
	base := l.scripts.load()
	var allowed, slow int
	var longest time.Duration
	start := time.Now()
	for i := range 50 {
		t1 := time.Now()
		d := allow(t, l, key, limit)
		el := time.Since(t1)
		longest = max(longest, el)
		if el >= timeout {
			slow++
		}
		if d.Allowed {
			allowed++
		}
		if d.Limit != 10 || d.Policy != limit {
			t.Fatalf("call %d while paused: Allow() = %+v, want the fallback's share (limit 10) under policy %+v", i, d, limit)
		}
	}
	total := time.Since(start)
	if got := l.scripts.since(base); got != 1 {
		t.Errorf("50 calls while paused sent %d scripts to Redis, want 1 (then backoff)", got)
	}
	if slow != 1 {
		t.Errorf("%d of 50 calls while paused took Timeout %v or more, want 1", slow, timeout)
	}
	if longest > timeout+slack {
		t.Errorf("slowest call while paused took %v, want at most Timeout %v + %v", longest, timeout, slack)
	}
	if total > 10*timeout {
		t.Errorf("50 calls while paused took %v, want far below 50 × Timeout = %v", total, 50*timeout)
	}
	if allowed != 10 {
		t.Errorf("fallback allowed %d of 50, want 10 (a 30 burst shared by 3)", allowed)
	}
	if !l.Degraded() {
		t.Error("Degraded() = false while paused, want true")
	}

	// After the Backoff, concurrent requests: one probes Redis, the others
	// do not wait for it.
	clock.advance(backoff)
	base = l.scripts.load()
	var wg sync.WaitGroup
	var slowest atomic.Int64
	for range 50 {
		wg.Go(func() {
			t1 := time.Now()
			d, err := l.Allow(context.Background(), key, limit, time.Now())
			el := time.Since(t1)
			for {
				if old := slowest.Load(); int64(el) <= old || slowest.CompareAndSwap(old, int64(el)) {
					break
				}
			}
			if err != nil || d.Limit != 10 {
				t.Errorf("concurrent call after the backoff: Allow() = %+v, %v, want the fallback's decision", d, err)
			}
		})
	}
	wg.Wait()
	if got := l.scripts.since(base); got != 1 {
		t.Errorf("50 concurrent calls after the backoff sent %d scripts to Redis, want 1 probe", got)
	}
	if got := time.Duration(slowest.Load()); got > timeout+slack {
		t.Errorf("slowest concurrent call took %v, want at most Timeout %v + %v", got, timeout, slack)
	}
	if !l.Degraded() {
		t.Error("Degraded() = false after a failed probe, want true")
	}

	srv.Resume()
	// The failed probe started a new Backoff: Redis is not asked yet.
	base = l.scripts.load()
	if d := allow(t, l, key, limit); d.Limit != 10 || l.scripts.since(base) != 0 {
		t.Errorf("within the backoff after resuming: Allow() = %+v with %d scripts sent, want the fallback's and none", d, l.scripts.since(base))
	}
	// After it, one probe per Backoff until Redis answers within Timeout,
	// which a resumed server does at once unless the machine is loaded.
	for deadline := time.Now().Add(5 * time.Second); ; {
		clock.advance(backoff)
		base = l.scripts.load()
		d := allow(t, l, key, limit)
		if got := l.scripts.since(base); got != 1 {
			t.Fatalf("probe after resuming sent %d scripts, want 1", got)
		}
		if d.Limit == 30 {
			if !d.Allowed || l.Degraded() {
				t.Errorf("after the backoff: Allow() = %+v, Degraded() = %v, want allowed by Redis, not degraded", d, l.Degraded())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis still not used 5s after resuming: Allow() = %+v", d)
		}
	}
	if d := allow(t, l, key, limit); d.Limit != 30 {
		t.Errorf("after recovering: Allow() = %+v, want Redis's decision (limit 30)", d)
	}
	// One line for the outage (not one per failed call or probe) and one
	// for the recovery.
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 1 || !strings.Contains(out, "key="+key) {
		t.Errorf("log has %d warnings, want 1 naming key %s:\n%s", n, key, out)
	}
	if n := strings.Count(out, "level=INFO"); n != 1 || !strings.Contains(out, "recovered") {
		t.Errorf("log has %d info lines, want 1 about the recovery:\n%s", n, out)
	}
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// warmUp connects l's client and loads the script, so that the first Allow
// of a test with a short Timeout does not spend it on the handshake.
func warmUp(t testing.TB, l *instance) {
	t.Helper()
	if err := allowScript.Load(context.Background(), l.client).Err(); err != nil {
		t.Fatalf("load the script: %v", err)
	}
}

func TestAllowRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	const timeout = 200 * time.Millisecond
	l := newInstance(t, srv, Config{Prefix: prefix(t), Timeout: timeout, Share: share(2)})
	limit := ratelimit.Limit{Requests: 4, Per: time.Minute}
	warmUp(t, l)
	if d := allow(t, l, "key:k1", limit); d.Limit != 4 {
		t.Fatalf("before the shutdown: Allow() = %+v, want Redis's decision (limit 4)", d)
	}
	// The reply never comes: the server exits. Without retries, or go-redis
	// would redial the server it just shut down.
	opt := srv.Options(0)
	opt.MaxRetries = -1
	admin := redis.NewClient(opt)
	defer admin.Close()
	_ = admin.ShutdownNoSave(context.Background()).Err()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("redis-server at %s still accepts connections 5s after SHUTDOWN", srv.Addr)
		}
	}
	var allowed int
	for i := range 5 {
		t1 := time.Now()
		d := allow(t, l, "key:k1", limit)
		if el := time.Since(t1); el > timeout+500*time.Millisecond {
			t.Errorf("call %d with Redis down took %v, want at most Timeout %v + 500ms", i, el, timeout)
		}
		if d.Limit != 2 || d.Policy != limit {
			t.Fatalf("call %d with Redis down: Allow() = %+v, want the fallback's share (limit 2) under policy %+v", i, d, limit)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("fallback allowed %d of 5, want 2", allowed)
	}
	if !l.Degraded() {
		t.Error("Degraded() = false with Redis down, want true")
	}
}

// TestAllowCallerCanceled checks that a request its caller abandoned is
// decided by the fallback without taking Redis for failed.
func TestAllowCallerCanceled(t *testing.T) {
	l := newInstance(t, redisServer.Server(t), Config{Prefix: prefix(t), Share: share(3)})
	limit := ratelimit.Limit{Requests: 30, Per: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := l.Allow(ctx, "key:k1", limit, time.Now())
	if err != nil || d.Limit != 10 {
		t.Errorf("Allow(canceled) = %+v, %v, want the fallback's decision (limit 10)", d, err)
	}
	if l.Degraded() {
		t.Error("Degraded() = true after a canceled call, want false")
	}
	if d := allow(t, l, "key:k1", limit); d.Limit != 30 {
		t.Errorf("next call: Allow() = %+v, want Redis's decision (limit 30)", d)
	}
}

func TestAllowInvalidLimit(t *testing.T) {
	l := newInstance(t, redisServer.Server(t), Config{Prefix: prefix(t)})
	_, err := l.Allow(context.Background(), "key:k1", ratelimit.Limit{Requests: 0, Per: time.Second}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "requests 0 must be positive") {
		t.Errorf("Allow(requests 0) error = %v, want the limit's validation error", err)
	}
	if got := l.scripts.load(); got != 0 || l.Degraded() {
		t.Errorf("Allow(invalid) sent %d scripts, Degraded() = %v; want none, false", got, l.Degraded())
	}
}

func TestConfigValidate(t *testing.T) {
	client := func(ctxTimeout bool) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: ctxTimeout})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	fb, err := ratelimit.NewLocal(ratelimit.LocalConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none for valid
	}{
		{"valid", Config{Client: client(true), Fallback: fb}, nil},
		{"valid tunables", Config{Client: client(true), Fallback: fb, Prefix: "x:", Timeout: time.Second, Backoff: time.Minute, Share: share(2)}, nil},
		{"empty", Config{}, []string{"Client is nil", "Fallback is nil"}},
		{"negative durations", Config{Client: client(true), Fallback: fb, Timeout: -1, Backoff: -time.Second},
			[]string{"Timeout -1ns is negative", "Backoff -1s is negative"}},
		{"context deadlines ignored", Config{Client: client(false), Fallback: fb, Timeout: -1},
			[]string{"ContextTimeoutEnabled is false", "Timeout -1ns is negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			l, nerr := New(tt.cfg)
			if tt.want == nil {
				if err != nil || nerr != nil || l == nil {
					t.Fatalf("Validate() = %v, New() = %v, %v; want valid", err, l, nerr)
				}
				return
			}
			if nerr == nil {
				t.Errorf("New() error = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestScale(t *testing.T) {
	tests := []struct {
		name  string
		limit ratelimit.Limit
		n     int
		want  ratelimit.Limit
	}{
		{"one instance", ratelimit.Limit{Requests: 30, Per: time.Minute}, 1, ratelimit.Limit{Requests: 30, Per: time.Minute}},
		{"share below 1", ratelimit.Limit{Requests: 30, Per: time.Minute}, 0, ratelimit.Limit{Requests: 30, Per: time.Minute}},
		{"burst of requests", ratelimit.Limit{Requests: 30, Per: time.Minute}, 3, ratelimit.Limit{Requests: 10, Per: time.Minute, Burst: 10}},
		{"own burst", ratelimit.Limit{Requests: 100, Per: time.Minute, Burst: 20}, 3, ratelimit.Limit{Requests: 33, Per: time.Minute, Burst: 6}},
		{"at least 1", ratelimit.Limit{Requests: 2, Per: time.Second}, 3, ratelimit.Limit{Requests: 1, Per: time.Second, Burst: 1}},
		{"allowance kept in range", ratelimit.Limit{Requests: 5, Per: 5 * time.Second, Burst: 9223372036}, 3,
			ratelimit.Limit{Requests: 1, Per: 5 * time.Second, Burst: 1844674407}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.limit.Validate(); err != nil {
				t.Fatalf("test limit invalid: %v", err)
			}
			got := scale(tt.limit, tt.n)
			if got != tt.want {
				t.Errorf("scale(%+v, %d) = %+v, want %+v", tt.limit, tt.n, got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("scale(%+v, %d) is invalid: %v", tt.limit, tt.n, err)
			}
		})
	}
}
