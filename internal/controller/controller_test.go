package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
)

func newTestController(t *testing.T) (*Controller, store.Store) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "g.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := New(st, Config{ResyncInterval: time.Hour}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

func svc(name string) config.Service { return config.Service{Name: name} }

func TestUpdateAppliesBeforeReturning(t *testing.T) {
	c, _ := newTestController(t)
	ctx := context.Background()
	rev, err := c.Update(ctx, func(cfg *config.Config) error {
		cfg.SetService(svc("a"))
		cfg.SetRoute(config.Route{Name: "r", Service: "a", Paths: []string{"/a"}})
		return nil
	})
	if err != nil {
		t.Fatalf("Update() error = %v", err)
	}
	snap := c.Load()
	if snap == nil || snap.Revision < rev || snap.Service("a") == nil {
		t.Fatalf("after Update, Load() = %+v, want a snapshot at revision >= %d with service a", snap, rev)
	}
}

func TestUpdateRejectsInvalidAndStoresNothing(t *testing.T) {
	c, _ := newTestController(t)
	ctx := context.Background()
	if _, err := c.Update(ctx, func(cfg *config.Config) error { cfg.SetService(svc("a")); return nil }); err != nil {
		t.Fatal(err)
	}
	_, before, _ := c.Config(ctx)
	_, err := c.Update(ctx, func(cfg *config.Config) error {
		cfg.SetRoute(config.Route{Name: "r", Service: "missing"})
		return nil
	})
	var verrs config.Errors
	if !errors.As(err, &verrs) {
		t.Fatalf("Update(invalid) error = %v, want config.Errors", err)
	}
	cfg, after, _ := c.Config(ctx)
	if after != before || len(cfg.Routes) != 0 {
		t.Errorf("after a rejected update: revision %d (was %d), routes %v; want unchanged", after, before, cfg.Routes)
	}
}

func TestConcurrentUpdatesAllLand(t *testing.T) {
	c, _ := newTestController(t)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Update(ctx, func(cfg *config.Config) error {
				cfg.SetService(svc(string(rune('a' + i))))
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update() error = %v", err)
		}
	}
	cfg, _, _ := c.Config(ctx)
	if len(cfg.Services) != n {
		t.Errorf("services after %d concurrent updates = %d, want %d (a lost update)", n, len(cfg.Services), n)
	}
}

func TestRunFollowsRegistryWrites(t *testing.T) {
	c, st := newTestController(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.Update(ctx, func(cfg *config.Config) error { cfg.SetService(svc("api")); return nil }); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	// A registration written straight to the store (as another writer would)
	// reaches the snapshot through the watch, not through Refresh.
	reg := registry.New(st, registry.Config{})
	in, err := reg.Register(ctx, registry.Registration{Service: "api", Address: "http://127.0.0.1:9001"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica in snapshot", func() bool {
		s := c.Load().Service("api")
		return s != nil && len(s.Replicas) == 1 && s.Replicas[0].ID == in.ID
	})
	if err := reg.Deregister(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica gone from snapshot", func() bool { return len(c.Load().Service("api").Replicas) == 0 })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestBadStoredConfigKeepsLastSnapshot(t *testing.T) {
	c, st := newTestController(t)
	ctx := context.Background()
	if _, err := c.Update(ctx, func(cfg *config.Config) error { cfg.SetService(svc("good")); return nil }); err != nil {
		t.Fatal(err)
	}
	// Another (say, older) writer stores something that does not validate.
	if _, err := st.Put(ctx, ConfigKey, []byte(`{"routes":[{"name":"r","service":"ghost"}]}`), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("Refresh() of an invalid stored config = nil error, want one")
	}
	if c.Load().Service("good") == nil {
		t.Error("the last good snapshot was replaced by an invalid one")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOnPublishSeesEverySnapshotInOrder(t *testing.T) {
	c, _ := newTestController(t)
	ctx := context.Background()
	if _, err := c.Update(ctx, func(cfg *config.Config) error { cfg.SetService(svc("a")); return nil }); err != nil {
		t.Fatal(err)
	}
	var got []int64
	c.OnPublish(func(s *snapshot.Snapshot) { got = append(got, s.Revision) })
	if len(got) != 1 || got[0] != c.AppliedRevision() {
		t.Fatalf("OnPublish did not call back at once with the current snapshot: %v", got)
	}
	for _, name := range []string{"b", "c"} {
		if _, err := c.Update(ctx, func(cfg *config.Config) error { cfg.SetService(svc(name)); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 3 || got[1] >= got[2] || got[2] != c.AppliedRevision() {
		t.Errorf("published revisions = %v, want 3 increasing ending at %d", got, c.AppliedRevision())
	}
}
