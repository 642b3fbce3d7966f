package apikey

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
)

// TestWatchDeliversAnotherWritersChanges wires no applier: the Index learns
// of every change only through Run's watch, as it does of a write made by
// another instance.
func TestWatchDeliversAnotherWritersChanges(t *testing.T) {
	f := newFixture(t, false)
	run(t, f.idx)

	k, clear, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	waitFor(t, "the created key to be valid", resultIs(f.idx, clear, t0, Valid))

	limit := Limit{Requests: 3, Per: config.Duration(time.Second)}
	if _, err := f.mgr.Update(t.Context(), k.ID, func(k *Key) error { k.RateLimit = &limit; return nil }); err != nil {
		t.Fatalf("Update() error = %v", err)
	}
	waitFor(t, "the new rate limit", func() bool {
		e, _ := f.idx.Check(clear, t0)
		return e != nil && e.RateLimit != nil && *e.RateLimit == limit
	})

	if _, err := f.mgr.Revoke(t.Context(), k.ID); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	waitFor(t, "the revocation", resultIs(f.idx, clear, t0, Revoked))

	if err := f.mgr.Delete(t.Context(), k.ID); err != nil {
		t.Fatalf("Delete() error = %v", err)
	}
	waitFor(t, "the deletion", resultIs(f.idx, clear, t0, Unknown))
	if f.idx.Len() != 0 {
		t.Errorf("Len() after the deletion = %d, want 0", f.idx.Len())
	}
}

// TestRestartReconciles changes the store while no Run is watching; the
// next Run's listing must bring the Index up to date, removing the key
// deleted meanwhile.
func TestRestartReconciles(t *testing.T) {
	f := newFixture(t, false)
	stop := run(t, f.idx)
	a, clearA, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	b, clearB, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	waitFor(t, "both keys", func() bool { return f.idx.Len() == 2 })
	stop()

	if err := f.mgr.Delete(t.Context(), b.ID); err != nil {
		t.Fatalf("Delete() error = %v", err)
	}
	if _, err := f.mgr.Revoke(t.Context(), a.ID); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	_, clearC, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if _, got := f.idx.Check(clearB, t0); got != Valid {
		t.Fatalf("Check(b) while not watching = %v, want %v still", got, Valid)
	}

	run(t, f.idx)
	waitFor(t, "the deleted key to disappear", resultIs(f.idx, clearB, t0, Unknown))
	waitFor(t, "the revocation", resultIs(f.idx, clearA, t0, Revoked))
	waitFor(t, "the new key", resultIs(f.idx, clearC, t0, Valid))
	if f.idx.Len() != 2 {
		t.Errorf("Len() = %d, want 2", f.idx.Len())
	}
}

// TestFallingBehindRelists makes Run's watch fall behind: while the test
// holds the writers' lock, Run cannot apply, its one-event watch buffer
// overflows and the store closes the watch. Run must list again and end up
// with the store's state.
func TestFallingBehindRelists(t *testing.T) {
	logs := &logBuffer{}
	st := openStore(t, boltstore.Options{WatchBuffer: 1})
	x, err := NewIndex(st, Config{Secret: testSecret}, logs.logger())
	if err != nil {
		t.Fatalf("NewIndex() error = %v", err)
	}
	m, err := NewManager(st, nil, Config{Secret: testSecret, Now: func() time.Time { return t0 }}, nil)
	if err != nil {
		t.Fatalf("NewManager() error = %v", err)
	}
	run(t, x)
	first, clearFirst, err := m.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	waitFor(t, "the watch to deliver", resultIs(x, clearFirst, t0, Valid))

	x.wmu.Lock()
	var clears []string
	for range 4 {
		_, clear, err := m.Create(t.Context(), Spec{})
		if err != nil {
			x.wmu.Unlock()
			t.Fatalf("Create() error = %v", err)
		}
		clears = append(clears, clear)
	}
	err = m.Delete(t.Context(), first.ID)
	x.wmu.Unlock()
	if err != nil {
		t.Fatalf("Delete() error = %v", err)
	}

	waitFor(t, "the deleted key to disappear", resultIs(x, clearFirst, t0, Unknown))
	for _, c := range clears {
		waitFor(t, "every new key", resultIs(x, c, t0, Valid))
	}
	if !strings.Contains(logs.String(), "api key watch ended; listing again") {
		t.Errorf("logs = %s\nwant the watch to have ended and Run to have listed again", logs)
	}
}

// TestReloadKeepsNewerLocalEntries lists while a local write newer than
// the listing is already applied: the reload must not undo it.
func TestReloadKeepsNewerLocalEntries(t *testing.T) {
	f := newFixture(t, true)
	_, clear, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	_, rev, err := f.st.List(t.Context(), Prefix)
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	f.idx.Apply(testKey("0000000000aa", "gh_applied-after-the-listing", false, rev+1))
	f.idx.Apply(testKey("0000000000bb", "gh_never-stored", false, 0))
	if _, err := f.idx.load(t.Context()); err != nil {
		t.Fatalf("load() error = %v", err)
	}
	tests := []struct {
		presented string
		want      Result
	}{
		{presented: clear, want: Valid},
		{presented: "gh_applied-after-the-listing", want: Valid},
		{presented: "gh_never-stored", want: Unknown},
	}
	for _, tt := range tests {
		if _, got := f.idx.Check(tt.presented, t0); got != tt.want {
			t.Errorf("Check(%s) after load = %v, want %v", tt.presented, got, tt.want)
		}
	}
}

// TestStoreGoneKeepsServing closes the store under a running Index: Run
// must keep retrying, report Degraded, and Check keep answering.
func TestStoreGoneKeepsServing(t *testing.T) {
	f := newFixture(t, false)
	stop := run(t, f.idx)
	k, clear, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	waitFor(t, "the key", resultIs(f.idx, clear, t0, Valid))
	if f.idx.Degraded() {
		t.Errorf("Degraded() with the store up = true, want false")
	}

	if err := f.st.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	waitFor(t, "Degraded", f.idx.Degraded)
	waitFor(t, "a retry", func() bool { return strings.Count(f.logs.String(), "cannot read api keys") >= 2 })
	if e, got := f.idx.Check(clear, t0); got != Valid || e.ID != k.ID || !f.idx.Ready() {
		t.Errorf("Check() with the store gone = %v, ready %t; want %v from the keys held", got, f.idx.Ready(), Valid)
	}
	if !strings.Contains(f.logs.String(), store.ErrClosed.Error()) {
		t.Errorf("logs = %s\nwant the store error", f.logs)
	}
	stop() // fails the test if Run does not return promptly
}

func TestRunWithoutStore(t *testing.T) {
	x, err := NewIndex(nil, Config{}, nil)
	if err != nil {
		t.Fatalf("NewIndex() error = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := x.Run(ctx); err == nil {
		t.Errorf("Run() without a store = nil, want an error")
	}
}

// TestTombstonesEndWithTheWatch deletes keys through a wired Manager: each
// local Remove leaves a tombstone, which the watch's delete event clears.
func TestTombstonesEndWithTheWatch(t *testing.T) {
	f := newFixture(t, true)
	run(t, f.idx)
	for range 3 {
		k, _, err := f.mgr.Create(t.Context(), Spec{})
		if err != nil {
			t.Fatalf("Create() error = %v", err)
		}
		if err := f.mgr.Delete(t.Context(), k.ID); err != nil {
			t.Fatalf("Delete() error = %v", err)
		}
	}
	waitFor(t, "no tombstones left", func() bool {
		f.idx.wmu.Lock()
		defer f.idx.wmu.Unlock()
		return len(f.idx.gone) == 0
	})
}

// TestRemoveAfterWatchLeavesNoTombstone: when the watch applies a deletion
// before the local Remove runs, Remove must not leave a tombstone that
// nothing would ever clear.
func TestRemoveAfterWatchLeavesNoTombstone(t *testing.T) {
	f := newFixture(t, false)
	run(t, f.idx)
	k, _, err := f.mgr.Create(t.Context(), Spec{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	waitFor(t, "the key through the watch", func() bool { return f.idx.Len() == 1 })
	if err := f.mgr.Delete(t.Context(), k.ID); err != nil {
		t.Fatalf("Delete() error = %v", err)
	}
	waitFor(t, "the deletion through the watch", func() bool { return f.idx.Len() == 0 })
	f.idx.Remove(k.ID) // what a wired Manager does after its write
	f.idx.wmu.Lock()
	defer f.idx.wmu.Unlock()
	if n := len(f.idx.gone); n != 0 {
		t.Errorf("tombstones after Remove of a key the watch already deleted = %d, want 0", n)
	}
}
