package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/redisstore/redistest"
	"github.com/gatehouse-gw/gatehouse/internal/store/watchset"
)

// pollHealth polls s.Health until ok accepts it, for at most d.
func pollHealth(ctx context.Context, s *Store, d time.Duration, ok func(error) bool) error {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.Health()
		if ok(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still %v after %v", err, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name  string
		watch bool
	}{
		// Only the health check and the reaper see Redis.
		{name: "no watch"},
		// The change stream reader too, with BlockTimeout well under the
		// client's 1s ReadTimeout: most of its reads end with nothing to
		// read, which is not a failure.
		{name: "watching", watch: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A server of its own, to pause.
			srv := redistest.Start(t, redistest.Config{})
			s := open(t, Config{Client: srv.Client(t, 0), BlockTimeout: 50 * time.Millisecond})
			ctx := t.Context()
			if tt.watch {
				if _, err := s.Watch(ctx, "", 0); err != nil {
					t.Fatalf("Watch() error = %v", err)
				}
			}
			// Sampled for 1s: two health checks, five reaps and (watching)
			// twenty empty reads, any of which could set it.
			sample := time.NewTicker(5 * time.Millisecond)
			defer sample.Stop()
			for end := time.Now().Add(time.Second); time.Now().Before(end); <-sample.C {
				if err := s.Health(); err != nil {
					t.Fatalf("Health() with Redis up = %v, want nil", err)
				}
			}

			srv.Pause(t)
			paused := time.Now()
			if err := pollHealth(ctx, s, 3*time.Second, func(err error) bool { return err != nil }); err != nil {
				t.Fatalf("Health() with Redis paused: %v, want an error within 3s", err)
			}
			t.Logf("Health() with Redis paused = %v, after %v", s.Health(), time.Since(paused).Round(time.Millisecond))

			srv.Resume()
			resumed := time.Now()
			if err := pollHealth(ctx, s, 3*time.Second, func(err error) bool { return err == nil }); err != nil {
				t.Fatalf("Health() with Redis resumed: %v, want nil within 3s", err)
			}
			t.Logf("Health() nil again %v after resuming", time.Since(resumed).Round(time.Millisecond))

			_ = s.Close()
			if err := s.Health(); !errors.Is(err, store.ErrClosed) {
				t.Errorf("Health() after Close = %v, want ErrClosed", err)
			}
		})
	}
}

func TestRewind(t *testing.T) {
	// What a Sentinel failover that lost writes leaves behind, made by hand
	// on one server: the change stream and the revision of an older (or
	// another) history.
	tests := []struct {
		name string
		// history lists the keys of the new history's events (revisions
		// 1, 2, ...); the store's revision becomes its length.
		history []string
		wantLog string
	}{
		{name: "revision below", history: []string{"a", "b"}, wantLog: "store revision went back from 5 to 2"},
		{name: "revision caught up", history: []string{"a", "b", "x", "y", "z"}, wantLog: "store history differs at revision 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &logBuffer{}
			// The reader's read from before the rewind blocks for
			// BlockTimeout before the next one reads from the new position.
			s := open(t, Config{PingInterval: 20 * time.Millisecond, BlockTimeout: 100 * time.Millisecond, Logger: logs.logger()})
			raw := redisServer.Server(t).Client(t, 0)
			ctx := t.Context()
			ch, err := s.Watch(ctx, "", 0)
			if err != nil {
				t.Fatalf("Watch() error = %v", err)
			}
			for _, k := range []string{"a", "b", "c", "d", "e"} {
				mustPut(t, s, k, "v", store.PutOptions{})
			}
			for range 5 { // through the reader, which then knows the event at 5
				recv(t, ch)
			}

			_, err = raw.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Del(ctx, s.keys[1])
				for i, k := range tt.history {
					p.XAdd(ctx, &redis.XAddArgs{Stream: s.keys[1], ID: streamID(int64(i + 1)), Values: []any{"t", "p", "k", k, "v", "v"}})
				}
				p.Set(ctx, s.keys[0], len(tt.history), 0)
				return nil
			})
			if err != nil {
				t.Fatalf("rewrite the history error = %v", err)
			}
			timer := time.NewTimer(eventTimeout)
			defer timer.Stop()
			select {
			case ev, ok := <-ch:
				if ok {
					t.Fatalf("event %s after the history changed, want the watch closed", fmtEvent(ev))
				}
			case <-timer.C:
				t.Fatalf("watch still open %v after the history changed", eventTimeout)
			}
			// Logged once the watches are closed.
			if err := logs.wait(ctx, tt.wantLog); err != nil {
				t.Error(err)
			}

			_, rev, err := s.List(ctx, "")
			if err != nil {
				t.Fatalf("List() error = %v", err)
			}
			ch, err = s.Watch(ctx, "", rev)
			if err != nil {
				t.Fatalf("Watch(from %d) error = %v", rev, err)
			}
			next := mustPut(t, s, "new", "v", store.PutOptions{})
			if want := int64(len(tt.history) + 1); next != want {
				t.Errorf("Put() revision = %d, want %d", next, want)
			}
			if got, want := fmtEvent(recv(t, ch)), fmt.Sprintf(`{put "new" "v" rev %d}`, next); got != want {
				t.Errorf("event after the rewind = %s, want %s", got, want)
			}
		})
	}
}

func TestHubRewind(t *testing.T) {
	h := newHub(slog.New(slog.DiscardHandler))
	ctx := t.Context()
	start := func() {} // no reader: the test publishes
	put := func(rev int64) store.Event {
		return store.Event{Type: store.EventPut, KV: store.KV{Key: "k", Revision: rev}}
	}
	gen := h.generation()
	old := watchset.NewWatch("", 0, 8)
	if ok, err := h.join(ctx, old, 0, gen, start); !ok || err != nil {
		t.Fatalf("join() = %t, %v; want true, nil", ok, err)
	}
	h.publish(gen, []store.Event{put(1), put(2), put(3)})
	if m := h.mark(); m.high != 3 || m.last == nil || m.last.KV.Revision != 3 {
		t.Fatalf("mark() = %+v, want high 3 and the event at 3", m)
	}

	// A replay that began before the rewind, joining after it.
	stale := watchset.NewWatch("", 0, 8)
	if !h.rewind(gen, 1) {
		t.Fatal("rewind() = false, want true")
	}
	if h.rewind(gen, 1) {
		t.Error("second rewind() of the same generation = true, want false")
	}
	if ok, err := h.join(ctx, stale, 3, gen, start); !ok || err != nil {
		t.Fatalf("join() of a stale watch = %t, %v; want true, nil", ok, err)
	}
	for name, w := range map[string]*watchset.Watch{"watch joined before": old, "stale watch": stale} {
		if !isClosed(w.C()) {
			t.Errorf("%s is open after the rewind, want it closed", name)
		}
	}

	// A read begun before the rewind publishes nothing; the next one does.
	gen = h.generation()
	w := watchset.NewWatch("", 1, 8)
	if ok, err := h.join(ctx, w, 1, gen, start); !ok || err != nil {
		t.Fatalf("join() after the rewind = %t, %v; want true, nil", ok, err)
	}
	h.publish(gen-1, []store.Event{put(4)})
	h.publish(gen, []store.Event{put(2)})
	select {
	case ev := <-w.C():
		if ev.KV.Revision != 2 {
			t.Errorf("event after the rewind = %s, want revision 2", fmtEvent(ev))
		}
	default:
		t.Error("no event after the rewind, want revision 2")
	}
	select {
	case ev := <-w.C():
		t.Errorf("event %s, want none (published with the generation before the rewind)", fmtEvent(ev))
	default:
	}
}

// logBuffer collects a store's logs, for tests that check what it
// reported.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wait polls the logs until they contain want, for at most eventTimeout.
func (l *logBuffer) wait(ctx context.Context, want string) error {
	deadline := time.Now().Add(eventTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(l.String(), want) {
		if time.Now().After(deadline) {
			return fmt.Errorf("logs = %q after %v, want %q", l.String(), eventTimeout, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, nil))
}

// isClosed drains what ch holds and reports whether it is closed.
func isClosed(ch <-chan store.Event) bool {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return true
			}
		default:
			return false
		}
	}
}
