package ratelimit

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
)

// openStore opens the real embedded store at path and closes it when the
// test ends (a second Close is harmless to the test).
func openStore(t testing.TB, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("boltstore.Open(%s) error = %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newQuotas(t testing.TB, s store.Store, cfg QuotaConfig) *Quotas {
	t.Helper()
	q, err := NewQuotas(s, cfg, nil)
	if err != nil {
		t.Fatalf("NewQuotas() error = %v", err)
	}
	return q
}

func use(t testing.TB, q *Quotas, key string, quota Quota, now time.Time) QuotaDecision {
	t.Helper()
	d, err := q.Use(context.Background(), key, quota, now)
	if err != nil {
		t.Fatalf("Use(%q, %+v, %v) error = %v", key, quota, now, err)
	}
	return d
}

// storedCount reads a flushed count straight from the store.
func storedCount(t testing.TB, s store.Store, key string) string {
	t.Helper()
	kv, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("store Get(%q) error = %v", key, err)
	}
	return string(kv.Value)
}

func TestQuotasAllowThenDeny(t *testing.T) {
	q := newQuotas(t, openStore(t, filepath.Join(t.TempDir(), "s.db")), QuotaConfig{})
	quota := Quota{Requests: 3, Period: Day}
	now := time.Date(2025, 3, 14, 18, 0, 0, 0, time.UTC) // 6h before the window ends
	want := []QuotaDecision{
		{Allowed: true, Limit: 3, Used: 1, Remaining: 2, Reset: 6 * time.Hour},
		{Allowed: true, Limit: 3, Used: 2, Remaining: 1, Reset: 6 * time.Hour},
		{Allowed: true, Limit: 3, Used: 3, Remaining: 0, Reset: 6 * time.Hour},
		{Limit: 3, Used: 3, Remaining: 0, Reset: 6 * time.Hour},
		{Limit: 3, Used: 3, Remaining: 0, Reset: 6 * time.Hour},
	}
	for i, w := range want {
		if got := use(t, q, "key:a", quota, now); got != w {
			t.Errorf("Use() #%d = %+v, want %+v", i+1, got, w)
		}
	}
	if d := use(t, q, "key:b", quota, now); !d.Allowed || d.Used != 1 {
		t.Errorf("Use(key:b) = %+v, want allowed with Used 1: keys are independent", d)
	}
}

func TestQuotasWindows(t *testing.T) {
	tests := []struct {
		name      string
		period    Period
		last      time.Time // the window is exhausted here
		same      time.Time // still in last's window
		next      time.Time // first instant of the next window
		wantReset time.Duration
		storeKeys []string // last's window, then next's
	}{
		{
			name:      "day resets at midnight UTC",
			period:    Day,
			last:      time.Date(2025, 3, 14, 23, 59, 59, 999999999, time.UTC),
			same:      time.Date(2025, 3, 15, 1, 59, 59, 0, time.FixedZone("UTC+2", 2*3600)),
			next:      time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC),
			wantReset: 24 * time.Hour,
			storeKeys: []string{"quota/key:a/20250314", "quota/key:a/20250315"},
		},
		{
			name:      "day resets at midnight UTC, not local midnight",
			period:    Day,
			last:      time.Date(2025, 3, 14, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600)), // 04:30Z on the 15th
			same:      time.Date(2025, 3, 15, 23, 59, 59, 0, time.UTC),
			next:      time.Date(2025, 3, 15, 19, 0, 0, 0, time.FixedZone("UTC-5", -5*3600)), // 00:00Z on the 16th
			wantReset: 24 * time.Hour,
			storeKeys: []string{"quota/key:a/20250315", "quota/key:a/20250316"},
		},
		{
			name:      "month resets on the 1st",
			period:    Month,
			last:      time.Date(2025, 1, 31, 23, 59, 59, 0, time.UTC),
			same:      time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
			next:      time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC),
			wantReset: 28 * 24 * time.Hour,
			storeKeys: []string{"quota/key:a/20250101", "quota/key:a/20250201"},
		},
		{
			name:      "month of a leap February",
			period:    Month,
			last:      time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC),
			same:      time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC),
			next:      time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
			wantReset: 31 * 24 * time.Hour,
			storeKeys: []string{"quota/key:a/20240201", "quota/key:a/20240301"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, filepath.Join(t.TempDir(), "s.db"))
			q := newQuotas(t, s, QuotaConfig{})
			quota := Quota{Requests: 2, Period: tt.period}
			use(t, q, "key:a", quota, tt.last)
			use(t, q, "key:a", quota, tt.last)
			if d := use(t, q, "key:a", quota, tt.same); d.Allowed {
				t.Errorf("Use() at %v, same window as %v = %+v, want denied", tt.same, tt.last, d)
			}
			want := QuotaDecision{Allowed: true, Limit: 2, Used: 1, Remaining: 1, Reset: tt.wantReset}
			if got := use(t, q, "key:a", quota, tt.next); got != want {
				t.Errorf("Use() at %v, a new window = %+v, want %+v", tt.next, got, want)
			}
			if err := q.Flush(context.Background()); err != nil {
				t.Fatalf("Flush() error = %v", err)
			}
			for i, wantCount := range []string{"2", "1"} {
				if got := storedCount(t, s, tt.storeKeys[i]); got != wantCount {
					t.Errorf("stored %s = %q, want %q", tt.storeKeys[i], got, wantCount)
				}
			}
		})
	}
}

func TestQuotasSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	quota := Quota{Requests: 7, Period: Month}
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

	s1 := openStore(t, path)
	q1 := newQuotas(t, s1, QuotaConfig{})
	for range 7 {
		use(t, q1, "key:a", quota, now)
	}
	if err := q1.Flush(context.Background()); err != nil {
		t.Fatalf("Flush() error = %v", err)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}

	q2 := newQuotas(t, openStore(t, path), QuotaConfig{})
	want := QuotaDecision{Limit: 7, Used: 7, Remaining: 0, Reset: 17*24*time.Hour + 11*time.Hour}
	if got := use(t, q2, "key:a", quota, now.Add(time.Hour)); got != want {
		t.Errorf("Use() after restart = %+v, want %+v", got, want)
	}
}

func TestQuotasRunFlushesOnCancel(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	// An hour between flushes: only the final flush can write the count.
	q := newQuotas(t, s, QuotaConfig{FlushInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()

	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	for range 3 {
		use(t, q, "key:a", Quota{Requests: 10, Period: Day}, now)
	}
	if _, err := s.Get(context.Background(), "quota/key:a/20250314"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("store Get before cancel error = %v, want ErrNotFound (nothing flushed yet)", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run() did not return within 10s of its context ending")
	}
	if got := storedCount(t, s, "quota/key:a/20250314"); got != "3" {
		t.Errorf("stored count after Run ended = %q, want %q", got, "3")
	}
}

func TestQuotasFailedFlushKeepsUsage(t *testing.T) {
	s := &countingStore{Store: openStore(t, filepath.Join(t.TempDir(), "s.db"))}
	q := newQuotas(t, s, QuotaConfig{})
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	for range 3 {
		use(t, q, "key:a", Quota{Requests: 10, Period: Day}, now)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Flush(canceled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush(canceled) = %v, want context.Canceled", err)
	}
	s.failIncr.Store(true)
	if err := q.Flush(context.Background()); !errors.Is(err, errInjected) {
		t.Fatalf("Flush() with a failing store = %v, want the store's error", err)
	}
	s.failIncr.Store(false)
	if err := q.Flush(context.Background()); err != nil {
		t.Fatalf("Flush() error = %v", err)
	}
	if got := storedCount(t, s, "quota/key:a/20250314"); got != "3" {
		t.Errorf("stored count = %q, want %q", got, "3")
	}
	// Flushed deltas are not written twice.
	if err := q.Flush(context.Background()); err != nil {
		t.Fatalf("Flush() error = %v", err)
	}
	if got := storedCount(t, s, "quota/key:a/20250314"); got != "3" {
		t.Errorf("stored count after another Flush = %q, want %q", got, "3")
	}
}

func TestQuotasSharedStore(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	// Flush's clock in the window, so that it keeps the counters.
	cfg := QuotaConfig{Now: func() time.Time { return now }}
	a := newQuotas(t, s, cfg)
	b := newQuotas(t, s, cfg)
	ctx := context.Background()
	quota := Quota{Requests: 10, Period: Day}

	for range 3 {
		use(t, a, "key:a", quota, now)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("a.Flush() error = %v", err)
	}
	if d := use(t, b, "key:a", quota, now); d.Used != 4 {
		t.Errorf("b.Use() after a flushed 3 = %+v, want Used 4", d)
	}
	use(t, a, "key:a", quota, now)
	use(t, a, "key:a", quota, now)
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("a.Flush() error = %v", err)
	}
	if err := b.Flush(ctx); err != nil { // learns of a's 2 more
		t.Fatalf("b.Flush() error = %v", err)
	}
	if d := use(t, b, "key:a", quota, now); d.Used != 7 {
		t.Errorf("b.Use() after both flushed = %+v, want Used 7 (3+1+2+1)", d)
	}
}

func TestQuotasForgetEndedWindows(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	var clock time.Time
	q := newQuotas(t, s, QuotaConfig{Now: func() time.Time { return clock }})
	quota := Quota{Requests: 10, Period: Day}
	use(t, q, "key:a", quota, time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC))

	clock = time.Date(2025, 3, 14, 23, 59, 59, 0, time.UTC)
	if err := q.Flush(context.Background()); err != nil {
		t.Fatalf("Flush() error = %v", err)
	}
	if got := q.Len(); got != 1 {
		t.Errorf("Len() before the window ends = %d, want 1", got)
	}
	clock = time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)
	if err := q.Flush(context.Background()); err != nil {
		t.Fatalf("Flush() error = %v", err)
	}
	if got := q.Len(); got != 0 {
		t.Errorf("Len() once the window ended = %d, want 0", got)
	}
	if got := storedCount(t, s, "quota/key:a/20250314"); got != "1" {
		t.Errorf("stored count = %q, want %q", got, "1")
	}
}

func TestQuotasConcurrentExact(t *testing.T) {
	const goroutines, attempts, limit = 50, 100, 2500 // half allowed: CAS races span the run
	s := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	q := newQuotas(t, s, QuotaConfig{})
	quota := Quota{Requests: limit, Period: Day}
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range goroutines {
		wg.Go(func() {
			<-start
			for range attempts {
				d, err := q.Use(context.Background(), "key:a", quota, now)
				if err != nil {
					t.Errorf("Use() error = %v", err)
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
	if got := allowed.Load(); got != limit {
		t.Errorf("%d×%d concurrent Use() allowed %d, want %d", goroutines, attempts, got, limit)
	}
	if err := q.Flush(context.Background()); err != nil {
		t.Fatalf("Flush() error = %v", err)
	}
	if got := storedCount(t, s, "quota/key:a/20250314"); got != "2500" {
		t.Errorf("stored count = %q, want %q", got, "2500")
	}
}

// countingStore wraps the real store to count reads and to fail writes on
// demand: the embedded store cannot be made to fail one Incr and then work.
type countingStore struct {
	store.Store
	gets     atomic.Int64
	failIncr atomic.Bool
}

func (c *countingStore) Get(ctx context.Context, key string) (store.KV, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

var errInjected = errors.New("injected incr failure")

func (c *countingStore) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if c.failIncr.Load() {
		return 0, errInjected
	}
	return c.Store.Incr(ctx, key, delta, ttl)
}

func TestQuotasLoadFailure(t *testing.T) {
	bolt := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	s := &countingStore{Store: bolt}
	q := newQuotas(t, s, QuotaConfig{LoadRetry: time.Second})
	if err := bolt.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	quota := Quota{Requests: 10, Period: Day}
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		at       time.Duration
		wantGets int64
	}{
		{name: "first use reads", at: 0, wantGets: 1},
		{name: "within LoadRetry the error is remembered", at: 999 * time.Millisecond, wantGets: 1},
		{name: "after LoadRetry reads again", at: time.Second, wantGets: 2},
	}
	for _, tt := range tests {
		_, err := q.Use(context.Background(), "key:a", quota, now.Add(tt.at))
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s: Use() error = %v, want store.ErrClosed", tt.name, err)
		}
		if got := s.gets.Load(); got != tt.wantGets {
			t.Errorf("%s: store reads = %d, want %d", tt.name, got, tt.wantGets)
		}
	}
}

func TestQuotasInvalid(t *testing.T) {
	q := newQuotas(t, openStore(t, filepath.Join(t.TempDir(), "s.db")), QuotaConfig{})
	if _, err := q.Use(context.Background(), "k", Quota{Requests: 1, Period: "week"}, t0); err == nil {
		t.Error("Use() with period week: error = nil, want an error")
	}
	if _, err := NewQuotas(nil, QuotaConfig{}, nil); err == nil {
		t.Error("NewQuotas(nil store): error = nil, want an error")
	}
}

func TestQuotasUseAllocs(t *testing.T) {
	q := newQuotas(t, openStore(t, filepath.Join(t.TempDir(), "s.db")), QuotaConfig{})
	quota := Quota{Requests: 1 << 40, Period: Month}
	use(t, q, "key:a", quota, t0)
	got := testing.AllocsPerRun(1000, func() {
		_, _ = q.Use(context.Background(), "key:a", quota, t0)
	})
	if got != 0 {
		t.Errorf("Use() on a loaded key: %v allocs, want 0", got)
	}
}

func TestPeriodWindow(t *testing.T) {
	tests := []struct {
		name      string
		period    Period
		now       time.Time
		wantStart time.Time
		wantEnd   time.Time
	}{
		{"day", Day, time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC), time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)},
		{"day at midnight", Day, time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)},
		{"day before 1970", Day, time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"day in another zone", Day, time.Date(2025, 3, 14, 22, 0, 0, 0, time.FixedZone("UTC-5", -5*3600)), time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 16, 0, 0, 0, 0, time.UTC)},
		{"month", Month, time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end := tt.period.window(tt.now)
			if !start.Equal(tt.wantStart) || !end.Equal(tt.wantEnd) {
				t.Errorf("window(%v) = %v, %v, want %v, %v", tt.now, start, end, tt.wantStart, tt.wantEnd)
			}
			if start.Location() != time.UTC {
				t.Errorf("window(%v) start in %v, want UTC", tt.now, start.Location())
			}
		})
	}
}
