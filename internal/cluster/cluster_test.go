package cluster

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{SweepInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type node struct {
	a   *Announcer
	rev atomic.Int64
	end context.CancelFunc
	out chan error
}

func startNode(t *testing.T, st store.Store, id string, cfg Config) *node {
	t.Helper()
	n := &node{out: make(chan error, 1)}
	a, err := New(st, Member{ID: id, Mode: "test"}, func() (int64, string) { return n.rev.Load(), "ready" }, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.a = a
	ctx, cancel := context.WithCancel(context.Background())
	n.end = cancel
	go func() { n.out <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-n.out })
	return n
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func members(t *testing.T, st store.Store) map[string]Member {
	t.Helper()
	ms, err := List(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]Member, len(ms))
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

func TestMembersSeeEachOtherAndTheirRevisions(t *testing.T) {
	st := openStore(t)
	cfg := Config{TTL: time.Second, Interval: 200 * time.Millisecond}
	a := startNode(t, st, "a", cfg)
	b := startNode(t, st, "b", cfg)
	waitFor(t, "two members", func() bool { return len(members(t, st)) == 2 })
	waitFor(t, "size 2 on both", func() bool { return a.a.Size() == 2 && b.a.Size() == 2 })

	// A kick publishes a new applied revision well before the interval.
	b.rev.Store(42)
	b.a.Kick()
	waitFor(t, "b's revision 42", func() bool { return members(t, st)["b"].AppliedRevision == 42 })
	if got := members(t, st)["a"].AppliedRevision; got != 0 {
		t.Errorf("a's revision = %d, want 0", got)
	}

	// A member that stops leaves the list at once.
	a.end()
	<-a.out
	a.out <- nil // for the cleanup
	ms := members(t, st)
	if _, ok := ms["a"]; ok || len(ms) != 1 {
		t.Fatalf("after a stopped, members = %v, want only b", ms)
	}
	waitFor(t, "b counts 1", func() bool { return b.a.Size() == 1 })
}

func TestDeadMemberDropsOutAfterTTL(t *testing.T) {
	st := openStore(t)
	// Written once, never renewed: what a killed instance leaves behind.
	if _, err := st.Put(context.Background(), Prefix+"dead", []byte(`{"id":"dead"}`), store.PutOptions{TTL: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	startNode(t, st, "live", Config{TTL: time.Second, Interval: 100 * time.Millisecond})
	waitFor(t, "both listed", func() bool { return len(members(t, st)) == 2 })
	waitFor(t, "dead gone", func() bool { _, ok := members(t, st)["dead"]; return !ok })
	if _, ok := members(t, st)["live"]; !ok {
		t.Fatal("the live member dropped out too")
	}
}

func TestMembersFallsBackToSelfWhenStoreFails(t *testing.T) {
	st := openStore(t)
	n := startNode(t, st, "self", Config{})
	n.rev.Store(7)
	waitFor(t, "announced", func() bool { return len(members(t, st)) == 1 })
	st.Close()
	ms, err := n.a.Members(context.Background())
	if err == nil {
		t.Fatal("Members on a closed store returned no error")
	}
	if len(ms) != 1 || ms[0].ID != "self" || ms[0].AppliedRevision != 7 {
		t.Fatalf("Members = %+v, want self at revision 7", ms)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{TTL: -1}, "TTL -1ns is negative"},
		{Config{Interval: -1}, "Interval -1ns is negative"},
		{Config{TTL: time.Second, Interval: 2 * time.Second}, "must be shorter than TTL"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	if _, err := New(nil, Member{}, nil, Config{}, nil); err == nil || !strings.Contains(err.Error(), "ID is empty") {
		t.Errorf("New without ID = %v", err)
	}
}
