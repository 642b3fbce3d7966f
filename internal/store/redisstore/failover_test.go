package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/redisstore/redistest"
)

// failoverTimeout bounds how long the sentinels may take to replace a
// paused master: 1s to think it down, then an election and a promotion.
const failoverTimeout = 15 * time.Second

func TestFailoverKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartSentinel(t, redistest.SentinelConfig{})
	s := open(t, Config{Client: cluster.FailoverClient(0), WaitReplicas: 1, WaitTimeout: 500 * time.Millisecond})
	ctx := t.Context()
	from, err := cluster.CurrentMaster(ctx)
	if err != nil {
		t.Fatal(err)
	}

	const writes, pauseAt = 200, 100
	acked := make([]bool, writes)
	var (
		nAcked, nUnconfirmed, nFailed int
		paused                        time.Time
		firstErrs                     []string
	)
	for i := range writes {
		if i == pauseAt {
			cluster.ServerAt(from).Pause(t)
			paused = time.Now()
		}
		if !paused.IsZero() && time.Since(paused) > failoverTimeout {
			t.Fatalf("write %d still failing %v after the master was paused", i, failoverTimeout)
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := s.Put(cctx, fmt.Sprint("k", i), []byte(fmt.Sprint("v", i)), store.PutOptions{})
		cancel()
		switch {
		case err == nil:
			acked[i] = true
			nAcked++
			continue
		case errors.Is(err, store.ErrNotReplicated):
			nUnconfirmed++
		default:
			nFailed++
		}
		if len(firstErrs) < 5 {
			firstErrs = append(firstErrs, fmt.Sprintf("write %d at %v: %v", i, time.Since(paused).Round(time.Millisecond), err))
		}
	}
	to, err := cluster.WaitFailover(waitCtx(t, failoverTimeout), from)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("master %s paused after write %d; %s is master after %v; writes: %d acknowledged, %d not confirmed by a replica, %d failed; first failures:\n%s",
		from, pauseAt, to, time.Since(paused).Round(time.Millisecond), nAcked, nUnconfirmed, nFailed, strings.Join(firstErrs, "\n"))
	if nAcked <= pauseAt {
		t.Errorf("%d writes acknowledged, want some after the failover too (more than %d)", nAcked, pauseAt)
	}

	direct := cluster.ServerAt(to).Client(t, 0)
	lost := 0
	for i, ok := range acked {
		if !ok {
			continue
		}
		key, want := fmt.Sprint("k", i), fmt.Sprint("v", i)
		got, err := direct.HGet(ctx, s.kvp+key, "v").Result()
		if err != nil || got != want {
			lost++
			t.Errorf("new master %s has %q = %q, %v; want %q: an acknowledged write was lost", to, key, got, err, want)
		}
	}
	t.Logf("%d of %d acknowledged writes lost", lost, nAcked)

	// The store follows the new master, and says so.
	if err := pollHealth(ctx, s, failoverTimeout, func(err error) bool { return err == nil }); err != nil {
		t.Errorf("Health() after the failover: %v", err)
	}
}

func TestFailoverLostWritesRestartWatches(t *testing.T) {
	// Writes not waited for are lost when the master fails over before its
	// replicas got them; the watches that received them must end, so that
	// their consumers re-list, rather than skip the new master's writes that
	// reuse those revisions.
	t.Parallel()
	cluster := redistest.StartSentinel(t, redistest.SentinelConfig{})
	client := cluster.FailoverClient(0)
	prefix := testPrefix(t, "")
	logs := &logBuffer{}
	s := open(t, Config{Client: client, Prefix: prefix, BlockTimeout: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond, Logger: logs.logger()})
	waiting := open(t, Config{Client: client, Prefix: prefix, WaitReplicas: 1, WaitTimeout: 300 * time.Millisecond})
	ctx := t.Context()
	from, err := cluster.CurrentMaster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, waiting, "before", "v", store.PutOptions{})
	_, rev, err := s.List(ctx, "")
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	ch, err := s.Watch(ctx, "", rev)
	if err != nil {
		t.Fatalf("Watch() error = %v", err)
	}

	// Cut the replicas off: paused, and dropped by the master, they get
	// nothing more from it.
	for _, r := range cluster.Replicas {
		r.Pause(t)
	}
	if err := cluster.ServerAt(from).Client(t, 0).Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		t.Fatalf("CLIENT KILL TYPE replica error = %v", err)
	}
	lostRev := mustPut(t, s, "lost", "v", store.PutOptions{})
	if ev := recv(t, ch); ev.KV.Key != "lost" {
		t.Fatalf("event = %s, want the put of %q", fmtEvent(ev), "lost")
	}
	_, err = waiting.Put(ctx, "refused", []byte("v"), store.PutOptions{})
	if want := "0 of 1 replicas acknowledged within 300ms"; !errors.Is(err, store.ErrNotReplicated) || !strings.Contains(err.Error(), want) {
		t.Errorf("Put() with the replicas cut off error = %v, want ErrNotReplicated saying %q", err, want)
	}

	cluster.ServerAt(from).Pause(t)
	for _, r := range cluster.Replicas {
		r.Resume()
	}
	to, err := cluster.WaitFailover(waitCtx(t, failoverTimeout), from)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failed over from %s to %s", from, to)

	// The watch ends, without an event from the new master.
	timer := time.NewTimer(failoverTimeout)
	defer timer.Stop()
	for open := true; open; {
		select {
		case ev, ok := <-ch:
			if ok {
				// The "refused" write, applied by the old master.
				t.Logf("event after the cut: %s", fmtEvent(ev))
			}
			open = ok
		case <-timer.C:
			t.Fatalf("watch still open %v after the failover, want it closed", failoverTimeout)
		}
	}
	if err := logs.wait(ctx, "store revision went back"); err != nil {
		t.Error(err)
	}

	// The premise: the new master lacks the write the old one acknowledged.
	if _, err := s.Get(ctx, "lost"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(lost) on the new master error = %v, want ErrNotFound (the write lost)", err)
	}
	_, rev, err = s.List(ctx, "")
	if err != nil {
		t.Fatalf("List() on the new master error = %v", err)
	}
	if rev >= lostRev {
		t.Errorf("List() revision on the new master = %d, want below the lost write's %d", rev, lostRev)
	}
	ch, err = s.Watch(ctx, "", rev)
	if err != nil {
		t.Fatalf("Watch(from %d) on the new master error = %v", rev, err)
	}
	after := mustPut(t, s, "after", "v", store.PutOptions{})
	if got, want := fmtEvent(recv(t, ch)), fmt.Sprintf(`{put "after" "v" rev %d}`, after); got != want {
		t.Errorf("event on the new master = %s, want %s", got, want)
	}
	t.Logf("lost write at revision %d; the new master's next write took revision %d", lostRev, after)
}
