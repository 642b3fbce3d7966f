package breaker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
)

// openStore opens a real embedded store, closed at the end of the test.
func openStore(t *testing.T, opts boltstore.Options) *boltstore.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), opts)
	if err != nil {
		t.Fatalf("boltstore.Open() error = %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// node is one simulated gateway instance: its breakers and its syncer.
type node struct {
	b *Breakers
	s *Syncer
}

// startNode creates a node synced to service "svc" with replicas ids. With
// run, its Syncer runs until the end of the test.
func startNode(t *testing.T, st store.Store, id string, run bool, ids ...string) node {
	t.Helper()
	b := New(nil, nil)
	b.Sync(testSnap("svc", ids...), time.Now())
	s, err := NewSyncer(st, b, SyncConfig{Node: id, FlushInterval: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("NewSyncer() error = %v", err)
	}
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() error = %v", err)
			}
		})
	}
	return node{b: b, s: s}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func TestSyncEjectionAndRestoreAcrossNodes(t *testing.T) {
	st := openStore(t, boltstore.Options{})
	ids := []string{"r1", "r2", "r3", "r4"}
	a := startNode(t, st, "A", true, ids...)
	b := startNode(t, st, "B", true, ids...)
	ga, gb := a.b.For("svc"), b.b.For("svc")

	now := time.Now()
	if got := fail(ga, "r1", now, DefaultConsecutiveFailures); got != Ejected {
		t.Fatalf("Failure() on A = %v, want ejected", got)
	}
	eventually(t, "B to honour A's ejection of r1", func() bool { return !gb.Available("r1", time.Now()) })
	sa, sb := state(t, ga, "r1", now), state(t, gb, "r1", now)
	if !sb.EjectedUntil.Equal(sa.EjectedUntil) || sb.Ejections != sa.Ejections {
		t.Errorf("B's r1 = until %v, %d ejections; want A's until %v, %d ejections", sb.EjectedUntil, sb.Ejections, sa.EjectedUntil, sa.Ejections)
	}
	if !gb.Available("r2", time.Now()) {
		t.Error("B's r2 Available() = false, want true")
	}

	kv, err := st.Get(t.Context(), RecordPrefix+"r1")
	if err != nil {
		t.Fatalf("Get(record) error = %v", err)
	}
	for _, want := range []string{`"node":"A"`, `"state":"ejected"`, `"replica_id":"r1"`, `"address":"http://r1.test:8080"`, `"last_error":"status 503"`} {
		if !strings.Contains(string(kv.Value), want) {
			t.Errorf("record %s does not contain %s", kv.Value, want)
		}
	}

	if err := ga.Restore("r1", time.Now()); err != nil {
		t.Fatalf("Restore() error = %v", err)
	}
	eventually(t, "B to honour A's restore of r1", func() bool { return gb.Available("r1", time.Now()) })
	if got := state(t, gb, "r1", time.Now()).State; got != StateHealthy {
		t.Errorf("B's r1 State = %q, want %q", got, StateHealthy)
	}

	// Operator ejection on B, until restored, reaches A.
	if err := gb.Eject("r2", 0, time.Now()); err != nil {
		t.Fatalf("Eject() error = %v", err)
	}
	eventually(t, "A to honour B's manual ejection of r2", func() bool { return !ga.Available("r2", time.Now()) })
	if st := state(t, ga, "r2", time.Now()); !st.Manual || !st.EjectedUntil.IsZero() {
		t.Errorf("A's r2 = %+v, want a manual ejection until restored", st)
	}
}

func TestSyncEjectionOfReplicaNotYetKnown(t *testing.T) {
	st := openStore(t, boltstore.Options{})
	a := startNode(t, st, "A", true, "r1", "r2", "r3")
	b := startNode(t, st, "B", true, "r1", "r2")
	if err := a.b.For("svc").Eject("r3", time.Hour, time.Now()); err != nil {
		t.Fatalf("Eject() error = %v", err)
	}
	eventually(t, "B to hold A's record for r3", func() bool {
		b.b.mu.Lock()
		defer b.b.mu.Unlock()
		_, ok := b.b.pending["r3"]
		return ok
	})
	b.b.Sync(testSnap("svc", "r1", "r2", "r3"), time.Now())
	if b.b.For("svc").Available("r3", time.Now()) {
		t.Error("B's r3 Available() after it appeared = true, want false (ejected by A)")
	}
}

func TestSyncFollowsAfterWatchDropped(t *testing.T) {
	// A watch buffer of one makes the store close B's watch when writes
	// come faster than B reads; B must list again and still converge.
	st := openStore(t, boltstore.Options{WatchBuffer: 1})
	var ids []string
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("r%d", i))
	}
	a := startNode(t, st, "A", true, ids...)
	b := startNode(t, st, "B", true, ids...)
	for _, id := range ids {
		if err := a.b.For("svc").Eject(id, time.Hour, time.Now()); err != nil {
			t.Fatalf("Eject(%q) error = %v", id, err)
		}
	}
	eventually(t, "B to honour all of A's ejections", func() bool {
		for _, id := range ids {
			if b.b.For("svc").Available(id, time.Now()) {
				return false
			}
		}
		return true
	})
}

func TestFlushFailureCounters(t *testing.T) {
	st := openStore(t, boltstore.Options{})
	a := startNode(t, st, "A", false, "r1", "r2")
	b := startNode(t, st, "B", false, "r1", "r2")
	ctx := t.Context()
	count := func(id string) string {
		t.Helper()
		kv, err := st.Get(ctx, FailuresPrefix+id)
		if err != nil {
			t.Fatalf("Get(%q) error = %v", FailuresPrefix+id, err)
		}
		return string(kv.Value)
	}

	now := time.Now()
	fail(a.b.For("svc"), "r1", now, 3)
	a.b.For("svc").Success("r1", now)
	if err := a.s.Flush(ctx); err != nil {
		t.Fatalf("Flush() error = %v", err)
	}
	if got := count("r1"); got != "3" {
		t.Errorf("counter after A's flush = %s, want 3", got)
	}
	if _, err := st.Get(ctx, FailuresPrefix+"r2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(counter of r2 without failures) error = %v, want ErrNotFound", err)
	}

	fail(b.b.For("svc"), "r1", now, 2)
	for range 2 { // a second flush adds nothing new
		if err := b.s.Flush(ctx); err != nil {
			t.Fatalf("Flush() error = %v", err)
		}
		if err := a.s.Flush(ctx); err != nil {
			t.Fatalf("Flush() error = %v", err)
		}
	}
	if got := count("r1"); got != "5" {
		t.Errorf("counter after both flushes = %s, want 5 (3 from A + 2 from B)", got)
	}
}

func TestFlushKeepsCountsWhileStoreFails(t *testing.T) {
	st := openStore(t, boltstore.Options{})
	a := startNode(t, st, "A", false, "r1", "r2")
	fail(a.b.For("svc"), "r1", time.Now(), 2)
	if err := st.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if err := a.s.Flush(t.Context()); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Flush() on a closed store error = %v, want ErrClosed", err)
	}
	if got := a.b.For("svc").Breaker("r1").unflushed.Load(); got != 2 {
		t.Errorf("unflushed failures after a failed flush = %d, want 2", got)
	}
}

func TestStoreOutageDoesNotAffectLocalBreaking(t *testing.T) {
	st := openStore(t, boltstore.Options{})
	if err := st.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	a := startNode(t, st, "A", true, "r1", "r2")
	g := a.b.For("svc")
	now := time.Now()
	if got := fail(g, "r1", now, DefaultConsecutiveFailures); got != Ejected {
		t.Fatalf("Failure() with the store down = %v, want ejected", got)
	}
	if g.Allow("r1", now) {
		t.Error("Allow() of an ejected replica with the store down = true, want false")
	}
	// Run (started by startNode) must still stop when its context ends:
	// the cleanup waits for it.
}

func TestFullQueueDoesNotBlock(t *testing.T) {
	bs := newTestBreakers(t, Config{}, "a", "b") // no Syncer drains the queue
	g := bs.For("svc")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2 * queueSize {
			_ = g.Eject("a", time.Minute, t0)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("transitions blocked on a full queue")
	}
	if got := bs.Dropped(); got != queueSize {
		t.Errorf("Dropped() = %d, want %d", got, queueSize)
	}
}

func TestSyncConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     SyncConfig
		wantErr bool
	}{
		{name: "node only", cfg: SyncConfig{Node: "n1"}},
		{name: "no node", cfg: SyncConfig{}, wantErr: true},
		{name: "negative flush", cfg: SyncConfig{Node: "n1", FlushInterval: -1}, wantErr: true},
		{name: "negative margin", cfg: SyncConfig{Node: "n1", TTLMargin: -1}, wantErr: true},
		{name: "negative backoff", cfg: SyncConfig{Node: "n1", MaxBackoff: -1}, wantErr: true},
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
