package boltstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		// A short sweep interval so that lease deletions reach watchers soon.
		return open(t, filepath.Join(t.TempDir(), "store.db"), Options{SweepInterval: 50 * time.Millisecond})
	})
}

func open(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%q) error = %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// clock is a settable time source: the lease logic takes Options.Now, so
// expiry can be tested without waiting.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestOpenCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "store.db")
	s := open(t, path, Options{})
	if _, err := s.Put(t.Context(), "k", []byte("v"), store.PutOptions{}); err != nil {
		t.Fatalf("Put() error = %v", err)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	clk := newClock()
	s := open(t, path, Options{Now: clk.Now})
	ctx := t.Context()
	revs := map[string]int64{}
	for _, k := range []string{"a", "b", "gone", "lease"} {
		opts := store.PutOptions{}
		if k == "lease" {
			opts.TTL = time.Minute
		}
		rev, err := s.Put(ctx, k, []byte("v-"+k), opts)
		if err != nil {
			t.Fatalf("Put(%q) error = %v", k, err)
		}
		revs[k] = rev
	}
	if err := s.Delete(ctx, "gone", 0); err != nil {
		t.Fatalf("Delete() error = %v", err)
	}
	_, last, err := s.List(ctx, "")
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}

	s = open(t, path, Options{Now: clk.Now})
	tests := []struct {
		key     string
		advance time.Duration // of the clock, before the Get
		wantErr error
	}{
		{key: "a"},
		{key: "b"},
		{key: "gone", wantErr: store.ErrNotFound},
		{key: "lease"},
		{key: "lease", advance: time.Minute, wantErr: store.ErrNotFound},
	}
	for _, tt := range tests {
		clk.Advance(tt.advance)
		kv, err := s.Get(ctx, tt.key)
		if !errors.Is(err, tt.wantErr) {
			t.Fatalf("after reopen, Get(%q) error = %v, want %v", tt.key, err, tt.wantErr)
		}
		if err == nil && (string(kv.Value) != "v-"+tt.key || kv.Revision != revs[tt.key]) {
			t.Errorf("after reopen, Get(%q) = %q at %d, want %q at %d", tt.key, kv.Value, kv.Revision, "v-"+tt.key, revs[tt.key])
		}
	}
	if _, got, err := s.List(ctx, ""); err != nil || got != last {
		t.Errorf("after reopen, List() revision = %d, %v; want %d", got, err, last)
	}
	if rev, err := s.Put(ctx, "c", nil, store.PutOptions{}); err != nil || rev <= last {
		t.Errorf("after reopen, Put() = %d, %v; want a revision > %d", rev, err, last)
	}
}

func TestExpiry(t *testing.T) {
	const ttl = 10 * time.Second
	tests := []struct {
		name string
		// after runs once the lease has run out and returns the events a
		// watcher should then see.
		after func(t *testing.T, s *Store) []store.Event
	}{
		{name: "Get", after: func(t *testing.T, s *Store) []store.Event {
			if kv, err := s.Get(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get() = %+v, %v; want ErrNotFound", kv, err)
			}
			return nil
		}},
		{name: "List", after: func(t *testing.T, s *Store) []store.Event {
			if kvs, _, err := s.List(t.Context(), ""); err != nil || len(kvs) != 0 {
				t.Errorf("List() = %+v, %v; want nothing", kvs, err)
			}
			return nil
		}},
		{name: "Delete", after: func(t *testing.T, s *Store) []store.Event {
			if err := s.Delete(t.Context(), "k", 0); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Delete() error = %v, want ErrNotFound", err)
			}
			return nil
		}},
		{name: "sweep", after: func(t *testing.T, s *Store) []store.Event {
			if err := s.sweep(); err != nil {
				t.Fatalf("sweep() error = %v", err)
			}
			return []store.Event{{Type: store.EventDelete, KV: store.KV{Key: "k", Revision: 2}}}
		}},
		{name: "Put absent", after: func(t *testing.T, s *Store) []store.Event {
			if _, err := s.Put(t.Context(), "k", []byte("new"), store.PutOptions{IfRevision: store.Absent}); err != nil {
				t.Errorf("Put(IfRevision: Absent) error = %v", err)
			}
			return []store.Event{
				{Type: store.EventDelete, KV: store.KV{Key: "k", Revision: 2}},
				{Type: store.EventPut, KV: store.KV{Key: "k", Value: []byte("new"), Revision: 3}},
			}
		}},
		{name: "Incr restarts", after: func(t *testing.T, s *Store) []store.Event {
			if n, err := s.Incr(t.Context(), "k", 1, 0); err != nil || n != 1 {
				t.Errorf("Incr() = %d, %v; want 1", n, err)
			}
			return []store.Event{
				{Type: store.EventDelete, KV: store.KV{Key: "k", Revision: 2}},
				{Type: store.EventPut, KV: store.KV{Key: "k", Value: []byte("1"), Revision: 3}},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			// The sweeper's own ticks are kept out of the way: sweep is
			// called directly.
			s := open(t, filepath.Join(t.TempDir(), "store.db"), Options{Now: clk.Now, SweepInterval: time.Hour})
			ch, err := s.Watch(t.Context(), "", 0)
			if err != nil {
				t.Fatalf("Watch() error = %v", err)
			}
			if _, err := s.Put(t.Context(), "k", []byte("7"), store.PutOptions{TTL: ttl}); err != nil {
				t.Fatalf("Put() error = %v", err)
			}
			clk.Advance(ttl - time.Nanosecond)
			if _, err := s.Get(t.Context(), "k"); err != nil {
				t.Fatalf("Get() just before expiry error = %v", err)
			}
			clk.Advance(time.Nanosecond)
			want := append([]store.Event{{Type: store.EventPut, KV: store.KV{Key: "k", Value: []byte("7"), Revision: 1}}}, tt.after(t, s)...)
			if err := s.Close(); err != nil {
				t.Fatalf("Close() error = %v", err)
			}
			var got []store.Event
			for ev := range ch {
				got = append(got, ev)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("events = %v, want %v", got, want)
			}
		})
	}
}

func TestRenewedLeaseSurvivesSweep(t *testing.T) {
	clk := newClock()
	s := open(t, filepath.Join(t.TempDir(), "store.db"), Options{Now: clk.Now, SweepInterval: time.Hour})
	ctx := t.Context()
	if _, err := s.Put(ctx, "k", []byte("v"), store.PutOptions{TTL: time.Second}); err != nil {
		t.Fatalf("Put() error = %v", err)
	}
	rev, err := s.Put(ctx, "k", []byte("v"), store.PutOptions{TTL: time.Minute})
	if err != nil {
		t.Fatalf("Put() error = %v", err)
	}
	clk.Advance(time.Second)
	if err := s.sweep(); err != nil {
		t.Fatalf("sweep() error = %v", err)
	}
	if kv, err := s.Get(ctx, "k"); err != nil || kv.Revision != rev {
		t.Errorf("Get() after the first lease's end = %+v, %v; want revision %d", kv, err, rev)
	}
	clk.Advance(time.Minute)
	if err := s.sweep(); err != nil {
		t.Fatalf("sweep() error = %v", err)
	}
	if _, last, err := s.List(ctx, ""); err != nil || last != rev+1 {
		t.Errorf("List() revision after the sweep = %d, %v; want %d (one delete)", last, err, rev+1)
	}
}

func TestWatchCompacted(t *testing.T) {
	tests := []struct {
		name    string
		history int
		reopen  bool
		writes  int
		from    int64
		wantErr error
		want    []int64 // revisions replayed
	}{
		{name: "fresh store from 0", from: 0},
		{name: "all kept", writes: 5, from: 0, want: []int64{1, 2, 3, 4, 5}},
		{name: "oldest kept", history: 4, writes: 10, from: 6, want: []int64{7, 8, 9, 10}},
		{name: "older than kept", history: 4, writes: 10, from: 5, wantErr: store.ErrCompacted},
		{name: "reopened from current", reopen: true, writes: 3, from: 3},
		{name: "reopened from older", reopen: true, writes: 3, from: 2, wantErr: store.ErrCompacted},
		{name: "reopened from 0", reopen: true, writes: 3, from: 0, wantErr: store.ErrCompacted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			opts := Options{History: tt.history}
			s := open(t, path, opts)
			for i := range tt.writes {
				if _, err := s.Put(t.Context(), fmt.Sprint("k", i), nil, store.PutOptions{}); err != nil {
					t.Fatalf("Put() error = %v", err)
				}
			}
			if tt.reopen {
				if err := s.Close(); err != nil {
					t.Fatalf("Close() error = %v", err)
				}
				s = open(t, path, opts)
			}
			ch, err := s.Watch(t.Context(), "", tt.from)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Watch(from %d) error = %v, want %v", tt.from, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			// A live write marks the end of the replay.
			live, err := s.Put(t.Context(), "live", nil, store.PutOptions{})
			if err != nil {
				t.Fatalf("Put() error = %v", err)
			}
			var got []int64
			for ev := range ch {
				if ev.KV.Key == "live" {
					break
				}
				got = append(got, ev.KV.Revision)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Watch(from %d) replayed revisions %v, want %v (then %d live)", tt.from, got, tt.want, live)
			}
		})
	}
}

func TestSlowWatcherDoesNotBlockWriters(t *testing.T) {
	const buffer = 8
	s := open(t, filepath.Join(t.TempDir(), "store.db"), Options{WatchBuffer: buffer})
	ch, err := s.Watch(t.Context(), "", 0)
	if err != nil {
		t.Fatalf("Watch() error = %v", err)
	}
	// Never read from ch while writing; were Put to wait for the watcher,
	// this would hang until the test binary times out.
	for i := range 2 * buffer {
		if _, err := s.Put(t.Context(), fmt.Sprint("k", i), nil, store.PutOptions{}); err != nil {
			t.Fatalf("Put() error = %v", err)
		}
	}
	// The watcher gets what fitted, in order, then a closed channel.
	var got int
	for ev := range ch {
		got++
		if ev.KV.Revision != int64(got) {
			t.Errorf("event %d revision = %d, want %d", got, ev.KV.Revision, got)
		}
	}
	if got != buffer {
		t.Errorf("slow watcher received %d events before its channel closed, want %d", got, buffer)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{name: "zero", opts: Options{}},
		{name: "negative sweep interval", opts: Options{SweepInterval: -time.Second}, wantErr: true},
		{name: "negative history", opts: Options{History: -1}, wantErr: true},
		{name: "negative watch buffer", opts: Options{WatchBuffer: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error: %t", err, tt.wantErr)
			}
		})
	}
}

func BenchmarkGet(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "store.db"), Options{})
	if _, err := s.Put(b.Context(), "routes/api", make([]byte, 256), store.PutOptions{}); err != nil {
		b.Fatalf("Put() error = %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(b.Context(), "routes/api"); err != nil {
			b.Fatalf("Get() error = %v", err)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "store.db"), Options{})
	value := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Put(b.Context(), "routes/api", value, store.PutOptions{}); err != nil {
			b.Fatalf("Put() error = %v", err)
		}
	}
}
