package apikey

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
)

// testSecret is the server secret of the tests' managers and indexes.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// t0 is the tests' fixed clock.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func openStore(t testing.TB, opts boltstore.Options) *boltstore.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), opts)
	if err != nil {
		t.Fatalf("boltstore.Open() error = %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// logBuffer collects everything logged, to search it for secrets.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type fixture struct {
	st   *boltstore.Store
	idx  *Index
	mgr  *Manager
	logs *logBuffer
}

// newFixture returns a Manager and an Index over one fresh store, with the
// Index wired as the Manager's applier when wired is true. The Index is not
// running; call run.
func newFixture(t testing.TB, wired bool) *fixture {
	t.Helper()
	f := &fixture{st: openStore(t, boltstore.Options{}), logs: &logBuffer{}}
	cfg := Config{Secret: testSecret, Now: func() time.Time { return t0 }, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond}
	var err error
	if f.idx, err = NewIndex(f.st, cfg, f.logs.logger()); err != nil {
		t.Fatalf("NewIndex() error = %v", err)
	}
	var local Applier
	if wired {
		local = f.idx
	}
	if f.mgr, err = NewManager(f.st, local, cfg, f.logs.logger()); err != nil {
		t.Fatalf("NewManager() error = %v", err)
	}
	return f
}

// run starts x.Run until the test ends (or the returned stop is called,
// which waits for Run to return) and waits for the first load.
func run(t testing.TB, x *Index) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run() = %v, want nil after cancel", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Run() did not return within 5s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	waitFor(t, "the index to load", x.Ready)
	return stop
}

// waitFor polls cond until it holds or 5s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 5s waiting for %s", what)
		}
		<-tick.C
	}
}

// resultIs returns a condition for waitFor: x.Check(key, now) gives want.
func resultIs(x *Index, key string, now time.Time, want Result) func() bool {
	return func() bool { _, got := x.Check(key, now); return got == want }
}

func isValidation(err error) bool {
	var verr ValidationError
	return errors.As(err, &verr)
}
