package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/redisstore/redistest"
)

// replicaValue reads key's value straight from a replica: "" and false if
// the replica does not have the key.
func replicaValue(t *testing.T, replica *redis.Client, s *Store, key string) (string, bool) {
	t.Helper()
	v, err := replica.HGet(t.Context(), s.kvp+key, "v").Result()
	if errors.Is(err, redis.Nil) {
		return "", false
	}
	if err != nil {
		t.Fatalf("HGET %q on the replica error = %v", key, err)
	}
	return v, true
}

func TestWaitReplicas(t *testing.T) {
	// A master of its own with one replica: the subtests pause the replica.
	master := redistest.Start(t, redistest.Config{})
	replica := redistest.Start(t, redistest.Config{ReplicaOf: master.Addr})
	rc := replica.Client(t, 0)
	const waitTimeout = 200 * time.Millisecond
	s := open(t, Config{Client: master.Client(t, 0), WaitReplicas: 1, WaitTimeout: waitTimeout})
	ctx := t.Context()

	t.Run("acknowledged writes are on the replica", func(t *testing.T) {
		const n = 100
		missing := 0
		for i := range n {
			key, value := fmt.Sprint("k", i), fmt.Sprint("v", i)
			mustPut(t, s, key, value, store.PutOptions{})
			if got, ok := replicaValue(t, rc, s, key); !ok || got != value {
				missing++
				t.Errorf("replica has %q = %q, %t right after Put returned; want %q", key, got, ok, value)
			}
			if i%2 == 0 {
				continue
			}
			if err := s.Delete(ctx, key, 0); err != nil {
				t.Fatalf("Delete(%q) error = %v", key, err)
			}
			if _, ok := replicaValue(t, rc, s, key); ok {
				missing++
				t.Errorf("replica still has %q right after Delete returned", key)
			}
		}
		t.Logf("%d puts and %d deletes, %d missing from the replica when they returned", n, n/2, missing)
	})

	t.Run("put waits for a paused replica", func(t *testing.T) {
		// The replica answers nothing for 100ms: an acknowledged write
		// must have waited that long for it.
		const pause = 100 * time.Millisecond
		replica.Pause(t)
		start := time.Now()
		resume := time.AfterFunc(pause, replica.Resume)
		defer resume.Stop()
		mustPut(t, s, "paused", "v", store.PutOptions{})
		took := time.Since(start)
		if took < pause {
			t.Errorf("Put() with the replica paused for %v returned after %v, want it to wait for the replica", pause, took)
		}
		if got, ok := replicaValue(t, rc, s, "paused"); !ok || got != "v" {
			t.Errorf("replica has %q = %q, %t right after Put returned; want %q", "paused", got, ok, "v")
		}
		t.Logf("Put() with the replica paused for %v took %v", pause, took.Round(time.Millisecond))
	})

	t.Run("after SCRIPT FLUSH", func(t *testing.T) {
		// A promoted replica has no scripts loaded: the write must fall
		// back to EVAL, and still wait.
		if err := master.Client(t, 0).ScriptFlush(ctx).Err(); err != nil {
			t.Fatalf("SCRIPT FLUSH error = %v", err)
		}
		mustPut(t, s, "flushed", "v", store.PutOptions{})
		if got, ok := replicaValue(t, rc, s, "flushed"); !ok || got != "v" {
			t.Errorf("replica has %q = %q, %t right after Put returned; want %q", "flushed", got, ok, "v")
		}
	})

	t.Run("leases and counters do not wait", func(t *testing.T) {
		replica.Pause(t)
		defer replica.Resume()
		calls := []struct {
			name string
			call func() error
		}{
			{"Put(TTL)", func() error {
				_, err := s.Put(ctx, "lease", []byte("v"), store.PutOptions{TTL: time.Minute})
				return err
			}},
			{"Incr", func() error { _, err := s.Incr(ctx, "counter", 1, 0); return err }},
		}
		for _, c := range calls {
			start := time.Now()
			err := c.call()
			took := time.Since(start)
			if err != nil {
				t.Errorf("%s with the replica paused error = %v", c.name, err)
			}
			// Waiting would take WaitTimeout and fail.
			if took >= waitTimeout {
				t.Errorf("%s with the replica paused took %v, want under WaitTimeout (%v): not waited for", c.name, took, waitTimeout)
			}
			t.Logf("%s with the replica paused took %v", c.name, took.Round(time.Microsecond))
		}
	})

	t.Run("fewer replicas than required", func(t *testing.T) {
		two := open(t, Config{Client: master.Client(t, 0), Prefix: s.cfg.Prefix, WaitReplicas: 2, WaitTimeout: waitTimeout})
		start := time.Now()
		rev, err := two.Put(ctx, "two", []byte("v"), store.PutOptions{})
		took := time.Since(start)
		const want = "1 of 2 replicas acknowledged within 200ms"
		if !errors.Is(err, store.ErrNotReplicated) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Put() with 1 replica for WaitReplicas 2 error = %v, want ErrNotReplicated saying %q", err, want)
		}
		t.Logf("Put() error after %v: %v", took.Round(time.Millisecond), err)
		if took < waitTimeout {
			t.Errorf("Put() failed after %v, want after WaitTimeout (%v)", took, waitTimeout)
		}
		// It was applied all the same, and says at which revision.
		if kv, err := two.Get(ctx, "two"); err != nil || kv.Revision != rev || rev == 0 {
			t.Errorf("Get() after the unconfirmed Put = revision %d, %v; want the revision Put returned (%d)", kv.Revision, err, rev)
		}
		err = two.Delete(ctx, "two", 0)
		if !errors.Is(err, store.ErrNotReplicated) || !strings.Contains(err.Error(), want) {
			t.Errorf("Delete() with 1 replica for WaitReplicas 2 error = %v, want ErrNotReplicated saying %q", err, want)
		}
		// A failed condition wrote nothing: it is a conflict, not a
		// replication failure.
		if _, err := two.Put(ctx, "k0", []byte("v"), store.PutOptions{IfRevision: store.Absent}); !errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotReplicated) {
			t.Errorf("Put(IfRevision: Absent) on an existing key error = %v, want ErrConflict only", err)
		}
	})
}

func TestWaitTimeoutWithinReadTimeout(t *testing.T) {
	srv := redisServer.Server(t)
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "not waiting", cfg: Config{WaitTimeout: 5 * time.Second}},
		{name: "room left", cfg: Config{WaitReplicas: 1, WaitTimeout: 900 * time.Millisecond}},
		{name: "default equals ReadTimeout", cfg: Config{WaitReplicas: 1}, wantErr: true},
		{name: "too little room", cfg: Config{WaitReplicas: 1, WaitTimeout: 901 * time.Millisecond}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Client = srv.Client(t, 0) // ReadTimeout 1s
			cfg.Prefix = testPrefix(t, "")
			s, err := Open(t.Context(), cfg)
			if err == nil {
				_ = s.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open(WaitReplicas %d, WaitTimeout %v) error = %v, want error: %t", cfg.WaitReplicas, cfg.WaitTimeout, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "WaitTimeout") {
				t.Errorf("Open() error = %q, want it to name WaitTimeout", err)
			}
		})
	}
}

// waitCtx returns a context that ends after d, for waits that have a
// bound.
func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
