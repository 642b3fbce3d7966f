package retry

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is at a bucket boundary of every window used here, so that offsets say
// exactly which bucket an event falls in.
var t0 = time.Unix(1_000_000, 0)

// retries asks for n retries at now and returns how many were allowed.
func retries(b *Budget, now time.Time, n int) int {
	allowed := 0
	for range n {
		if b.TryRetry(now) {
			allowed++
		}
	}
	return allowed
}

func TestBudgetAllowsRatioPlusFloor(t *testing.T) {
	tests := []struct {
		name string
		cfg  BudgetConfig
		want int // Ratio × 1000 + MinPerSecond × Window
	}{
		{"defaults", BudgetConfig{}, 200 + 30},
		{"half, 1/s over 2s", BudgetConfig{Ratio: 0.5, MinPerSecond: 1, Window: 2 * time.Second}, 500 + 2},
		{"tiny ratio", BudgetConfig{Ratio: 0.001, MinPerSecond: 0.5, Window: 10 * time.Second}, 1 + 5},
	}
	for _, tt := range tests {
		t.Run(tt.name+" all at once", func(t *testing.T) {
			b := NewBudget(tt.cfg)
			for range 1000 {
				b.Request(t0)
			}
			if got := retries(b, t0, 1000); got != tt.want {
				t.Errorf("TryRetry allowed %d of 1000 after 1000 requests, want %d", got, tt.want)
			}
		})
		t.Run(tt.name+" interleaved", func(t *testing.T) {
			b := NewBudget(tt.cfg)
			got := 0
			for i := range 1000 {
				// Spread over one bucket: the whole run stays in the window.
				now := t0.Add(time.Duration(i) * b.Config().Window / buckets / 1000)
				b.Request(now)
				got += retries(b, now, 1)
			}
			if got != tt.want {
				t.Errorf("TryRetry allowed %d of 1000 interleaved with 1000 requests, want %d", got, tt.want)
			}
			req, ret := b.Counts(t0.Add(time.Second))
			if req != 1000 || ret != uint64(tt.want) {
				t.Errorf("Counts() = %d, %d, want 1000, %d", req, ret, tt.want)
			}
		})
	}
}

func TestBudgetSlides(t *testing.T) {
	// Default window 10s: buckets of 1s.
	tests := []struct {
		name      string
		requestAt time.Duration // 1000 requests at t0 + requestAt
		retriedAt time.Duration // 100 retries spent at t0 + retriedAt
		checkAt   time.Duration
		want      int
	}{
		{"same bucket", 0, 0, 0, 230 - 100},
		{"requests still in window", 0, 0, 9 * time.Second, 230 - 100},
		{"end of last bucket", 0, 0, 9*time.Second + 999*time.Millisecond, 230 - 100},
		{"requests and retries slid out", 0, 0, 10 * time.Second, 30},
		{"retries slid out, requests not", 5 * time.Second, 0, 10 * time.Second, 230},
		{"requests slid out, retries not", 0, 5 * time.Second, 10 * time.Second, 0},
		{"long idle", 0, 0, 1000 * time.Hour, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBudget(BudgetConfig{})
			for range 1000 {
				b.Request(t0.Add(tt.requestAt))
			}
			if got := retries(b, t0.Add(tt.retriedAt), 100); got != 100 {
				t.Fatalf("TryRetry allowed %d of the first 100, want 100", got)
			}
			if got := retries(b, t0.Add(tt.checkAt), 1000); got != tt.want {
				t.Errorf("TryRetry allowed %d of 1000 at +%s, want %d", got, tt.checkAt, tt.want)
			}
		})
	}
}

func TestBudgetConcurrentNeverExceeds(t *testing.T) {
	const goroutines, each, want = 100, 20, 230
	b := NewBudget(BudgetConfig{})
	for range 1000 {
		b.Request(t0)
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if b.TryRetry(t0) {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	got := int(allowed.Load())
	if got > want {
		t.Fatalf("%d goroutines were allowed %d retries, want at most %d", goroutines, got, want)
	}
	// Refusals may briefly hold budget they then give back; none may leak.
	if topUp := retries(b, t0, 1000); got+topUp != want {
		t.Errorf("allowed %d concurrently + %d after = %d, want %d", got, topUp, got+topUp, want)
	}
}

func TestBudgetConcurrentRequestsAndRetries(t *testing.T) {
	// Requests and retries race across bucket changes; -race checks the
	// rest, and the totals must still add up.
	b := NewBudget(BudgetConfig{Window: time.Second})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 100 {
		wg.Go(func() {
			for i := range 50 {
				now := t0.Add(time.Duration(i+g%3) * 10 * time.Millisecond)
				b.Request(now)
				if b.TryRetry(now) {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	req, ret := b.Counts(t0.Add(600 * time.Millisecond))
	if req != 5000 || ret != uint64(allowed.Load()) {
		t.Errorf("Counts() = %d, %d, want 5000, %d", req, ret, allowed.Load())
	}
	if bound := uint64(0.2*5000 + 3); ret > bound {
		t.Errorf("retries = %d, want at most %d", ret, bound)
	}
}

func TestCounterKeepsNewerEpoch(t *testing.T) {
	var c counter
	if got := c.add(7); got != 7 {
		t.Errorf("add(7) = %d, want 7", got)
	}
	// A caller whose clock is behind counts into the newer bucket rather
	// than resetting it.
	if got := c.add(6); got != 7 {
		t.Errorf("add(6) after add(7) = %d, want 7", got)
	}
	if got := c.count(7); got != 2 {
		t.Errorf("count(7) = %d, want 2", got)
	}
	if got := c.add(8); got != 8 {
		t.Errorf("add(8) = %d, want 8", got)
	}
	if got := c.count(8); got != 1 {
		t.Errorf("count(8) after reset = %d, want 1", got)
	}
	c.sub(7) // stale: ignored
	c.sub(8)
	c.sub(8) // never below zero
	if got := c.count(8); got != 0 {
		t.Errorf("count(8) after sub = %d, want 0", got)
	}
}

func TestBudgetConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     BudgetConfig
		wantErr bool
	}{
		{"zero", BudgetConfig{}, false},
		{"set", BudgetConfig{Ratio: 1, MinPerSecond: 0.5, Window: time.Minute}, false},
		{"negative ratio", BudgetConfig{Ratio: -0.1}, true},
		{"ratio above 1", BudgetConfig{Ratio: 1.5}, true},
		{"NaN ratio", BudgetConfig{Ratio: math.NaN()}, true},
		{"negative floor", BudgetConfig{MinPerSecond: -1}, true},
		{"infinite floor", BudgetConfig{MinPerSecond: math.Inf(1)}, true},
		{"short window", BudgetConfig{Window: time.Millisecond}, true},
		{"negative window", BudgetConfig{Window: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
			if got := NewBudget(tt.cfg).Config(); got.Validate() != nil || got.Ratio == 0 || got.Window == 0 {
				t.Errorf("NewBudget(%+v).Config() = %+v, want valid defaults", tt.cfg, got)
			}
		})
	}
}

func TestBudgets(t *testing.T) {
	var bs Budgets
	a := bs.For("a", BudgetConfig{})
	if got := bs.For("a", BudgetConfig{Ratio: DefaultBudgetRatio, Window: DefaultBudgetWindow}); got != a {
		t.Errorf("For(a, explicit defaults) = %p, want the same Budget %p", got, a)
	}
	if got := bs.For("b", BudgetConfig{}); got == a {
		t.Errorf("For(b) returned a's Budget")
	}
	changed := bs.For("a", BudgetConfig{Ratio: 0.5})
	if changed == a || changed.Config().Ratio != 0.5 {
		t.Errorf("For(a, Ratio 0.5) = %p with %+v, want a new Budget with Ratio 0.5", changed, changed.Config())
	}
	if got := bs.For("a", BudgetConfig{Ratio: 0.5}); got != changed {
		t.Errorf("For(a, Ratio 0.5) again = %p, want %p", got, changed)
	}
	bs.Retain(func(s string) bool { return s == "b" })
	if got := bs.For("a", BudgetConfig{Ratio: 0.5}); got == changed {
		t.Errorf("For(a) after Retain dropped it returned the old Budget")
	}
}

func TestBudgetsConcurrentFirstUse(t *testing.T) {
	var bs Budgets
	got := make([]*Budget, 50)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = bs.For("svc", BudgetConfig{}) })
	}
	wg.Wait()
	for i, b := range got {
		if b != got[0] {
			t.Fatalf("For(svc) in goroutine %d = %p, want %p as in goroutine 0", i, b, got[0])
		}
	}
}

func TestBudgetNoAllocs(t *testing.T) {
	var bs Budgets
	bs.For("svc", BudgetConfig{})
	service := string([]byte("svc")) // not a constant: as a request would pass it
	if n := testing.AllocsPerRun(100, func() {
		b := bs.For(service, BudgetConfig{})
		b.Request(t0)
		b.TryRetry(t0)
	}); n != 0 {
		t.Errorf("For+Request+TryRetry allocates %v times, want 0", n)
	}
}
