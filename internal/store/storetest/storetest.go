// Package storetest is the conformance suite for store.Store backends. Every
// backend runs it, the networked ones against a real server.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

const (
	// eventTimeout is how long to wait for an event that should come promptly.
	eventTimeout = 5 * time.Second
	// leaseTTL is the TTL of test leases. It is real time: a real server
	// cannot take a fake clock.
	leaseTTL = time.Second
	// expiryDeadline is how long after its TTL a lease may take to be gone
	// and announced.
	expiryDeadline = 10 * time.Second
	// pollInterval is how often a condition is polled.
	pollInterval = 20 * time.Millisecond
)

// Run runs the conformance suite. open is called once per subtest and must
// return an open store; the suite closes it (Close may therefore be called
// twice if open also registers a cleanup). Subtests may run in parallel,
// each under its own key prefix, unique to this run, so stores sharing one
// server do not interfere, even with keys left over from earlier runs.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	r := &runner{open: open, nonce: nonce(t)}
	t.Run("GetMissing", r.testGetMissing)
	t.Run("PutGet", r.testPutGet)
	t.Run("List", r.testList)
	t.Run("CompareAndSwap", r.testCompareAndSwap)
	t.Run("Delete", r.testDelete)
	t.Run("WatchFromList", r.testWatchFromList)
	t.Run("WatchReplay", r.testWatchReplay)
	t.Run("WatchCancel", r.testWatchCancel)
	t.Run("Incr", r.testIncr)
	t.Run("IncrConcurrent", r.testIncrConcurrent)
	t.Run("IncrNotInteger", r.testIncrNotInteger)
	t.Run("ConcurrentCAS", r.testConcurrentCAS)
	t.Run("Close", r.testClose)
	// The lease tests wait for real time; they run in parallel with each
	// other, after the rest.
	t.Run("Leases", func(t *testing.T) {
		t.Run("Expiry", r.testLeaseExpiry)
		t.Run("Renewal", r.testLeaseRenewal)
	})
}

type runner struct {
	open  func(t *testing.T) store.Store
	nonce string
}

// setup opens a store for t and returns it with t's key prefix.
func (r *runner) setup(t *testing.T) (store.Store, string) {
	t.Helper()
	s := r.open(t)
	t.Cleanup(func() { _ = s.Close() })
	return s, "storetest/" + r.nonce + "/" + keySafe(t.Name()) + "/"
}

func nonce(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("rand.Read() error = %v", err)
	}
	return hex.EncodeToString(b)
}

// keySafe replaces anything but letters, digits, '/', '-' and '_' in a test
// name, so that the prefix is a valid key in every backend.
func keySafe(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '/', r == '-':
			return r
		}
		return '_'
	}, name)
}

func (r *runner) testGetMissing(t *testing.T) {
	s, p := r.setup(t)
	ctx := t.Context()
	tests := []struct {
		name  string
		setup func(t *testing.T, key string)
	}{
		{name: "never written", setup: func(*testing.T, string) {}},
		{name: "deleted", setup: func(t *testing.T, key string) {
			mustPut(t, s, key, "v", store.PutOptions{})
			if err := s.Delete(ctx, key, 0); err != nil {
				t.Fatalf("Delete(%q) error = %v", key, err)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("%sk%d", p, i)
			tt.setup(t, key)
			if kv, err := s.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(%q) = %+v, %v; want ErrNotFound", key, kv, err)
			}
		})
	}
}

func (r *runner) testPutGet(t *testing.T) {
	s, p := r.setup(t)
	tests := []struct {
		name  string
		value []byte
	}{
		{name: "text", value: []byte("hello")},
		{name: "binary", value: []byte{0, 1, 0xfe, 0xff, '\n'}},
		{name: "large", value: bytes.Repeat([]byte("0123456789abcdef"), 4096)},
	}
	var last int64
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("%sk%d", p, i)
			for _, v := range [][]byte{tt.value, append([]byte("new "), tt.value...)} {
				rev, err := s.Put(t.Context(), key, v, store.PutOptions{})
				if err != nil {
					t.Fatalf("Put(%q) error = %v", key, err)
				}
				if rev <= last {
					t.Errorf("Put(%q) revision = %d, want > %d (the previous write's)", key, rev, last)
				}
				last = rev
				wantKV(t, s, key, v, rev)
			}
		})
	}
}

func (r *runner) testList(t *testing.T) {
	s, p := r.setup(t)
	ctx := t.Context()
	revs := map[string]int64{}
	// Written out of order: the listing must sort.
	for _, k := range []string{"a/2", "ab", "a/3/x", "b/1", "a/1"} {
		revs[k] = mustPut(t, s, p+k, "v-"+k, store.PutOptions{})
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{prefix: "a/", want: []string{"a/1", "a/2", "a/3/x"}},
		{prefix: "a", want: []string{"a/1", "a/2", "a/3/x", "ab"}},
		{prefix: "b/", want: []string{"b/1"}},
		{prefix: "c/", want: nil},
	}
	for _, tt := range tests {
		t.Run(keySafe(tt.prefix), func(t *testing.T) {
			kvs, rev, err := s.List(ctx, p+tt.prefix)
			if err != nil {
				t.Fatalf("List(%q) error = %v", p+tt.prefix, err)
			}
			var got []string
			for _, kv := range kvs {
				k := strings.TrimPrefix(kv.Key, p)
				got = append(got, k)
				if want := "v-" + k; string(kv.Value) != want {
					t.Errorf("List(%q): %s value = %q, want %q", tt.prefix, k, kv.Value, want)
				}
				if kv.Revision != revs[k] {
					t.Errorf("List(%q): %s revision = %d, want %d", tt.prefix, k, kv.Revision, revs[k])
				}
				if rev < kv.Revision {
					t.Errorf("List(%q) revision = %d, want >= %d (of %s)", tt.prefix, rev, kv.Revision, k)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("List(%q) keys = %q, want %q", tt.prefix, got, tt.want)
			}
		})
	}
}

func (r *runner) testCompareAndSwap(t *testing.T) {
	s, p := r.setup(t)
	ctx := t.Context()
	tests := []struct {
		name    string
		writes  int  // writes before the CAS
		deleted bool // delete after them
		// ifRevision picks the condition given the revisions of the writes.
		ifRevision func(revs []int64) int64
		wantErr    error
	}{
		{name: "absent on missing", ifRevision: absent},
		{name: "absent on existing", writes: 1, ifRevision: absent, wantErr: store.ErrConflict},
		{name: "absent after delete", writes: 1, deleted: true, ifRevision: absent},
		{name: "current revision", writes: 2, ifRevision: func(r []int64) int64 { return r[1] }},
		{name: "stale revision", writes: 2, ifRevision: func(r []int64) int64 { return r[0] }, wantErr: store.ErrConflict},
		{name: "revision on missing", ifRevision: func([]int64) int64 { return 1 }, wantErr: store.ErrConflict},
		{name: "revision after delete", writes: 1, deleted: true, ifRevision: func(r []int64) int64 { return r[0] }, wantErr: store.ErrConflict},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("%sk%d", p, i)
			var revs []int64
			for w := range tt.writes {
				revs = append(revs, mustPut(t, s, key, fmt.Sprint("old", w), store.PutOptions{}))
			}
			if tt.deleted {
				if err := s.Delete(ctx, key, 0); err != nil {
					t.Fatalf("Delete(%q) error = %v", key, err)
				}
			}
			before, beforeErr := s.Get(ctx, key)

			ifRev := tt.ifRevision(revs)
			rev, err := s.Put(ctx, key, []byte("new"), store.PutOptions{IfRevision: ifRev})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Put(%q, IfRevision: %d) error = %v, want %v", key, ifRev, err, tt.wantErr)
			}
			if err == nil {
				wantKV(t, s, key, []byte("new"), rev)
				return
			}
			// A failed condition changes nothing.
			after, afterErr := s.Get(ctx, key)
			if errors.Is(afterErr, store.ErrNotFound) != errors.Is(beforeErr, store.ErrNotFound) ||
				!bytes.Equal(after.Value, before.Value) || after.Revision != before.Revision {
				t.Errorf("after failed CAS Get(%q) = %+v, %v; want %+v, %v", key, after, afterErr, before, beforeErr)
			}
		})
	}
}

func absent([]int64) int64 { return store.Absent }

func (r *runner) testDelete(t *testing.T) {
	s, p := r.setup(t)
	ctx := t.Context()
	tests := []struct {
		name       string
		writes     int
		deleted    bool
		ifRevision func(revs []int64) int64
		wantErr    error
	}{
		{name: "missing", ifRevision: unconditional, wantErr: store.ErrNotFound},
		{name: "already deleted", writes: 1, deleted: true, ifRevision: unconditional, wantErr: store.ErrNotFound},
		{name: "unconditional", writes: 2, ifRevision: unconditional},
		{name: "current revision", writes: 2, ifRevision: func(r []int64) int64 { return r[1] }},
		{name: "stale revision", writes: 2, ifRevision: func(r []int64) int64 { return r[0] }, wantErr: store.ErrConflict},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("%sk%d", p, i)
			var revs []int64
			for w := range tt.writes {
				revs = append(revs, mustPut(t, s, key, fmt.Sprint("v", w), store.PutOptions{}))
			}
			if tt.deleted {
				if err := s.Delete(ctx, key, 0); err != nil {
					t.Fatalf("Delete(%q) error = %v", key, err)
				}
			}
			ifRev := tt.ifRevision(revs)
			err := s.Delete(ctx, key, ifRev)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Delete(%q, %d) error = %v, want %v", key, ifRev, err, tt.wantErr)
			}
			switch {
			case err == nil:
				if kv, err := s.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("after Delete, Get(%q) = %+v, %v; want ErrNotFound", key, kv, err)
				}
			case errors.Is(err, store.ErrConflict):
				wantKV(t, s, key, fmt.Append(nil, "v", tt.writes-1), revs[len(revs)-1])
			}
		})
	}
}

func unconditional([]int64) int64 { return 0 }

func (r *runner) testWatchFromList(t *testing.T) {
	s, p := r.setup(t)
	ctx := t.Context()
	wp := p + "w/"
	before := mustPut(t, s, wp+"before", "b", store.PutOptions{})
	_, rev, err := s.List(ctx, wp)
	if err != nil {
		t.Fatalf("List(%q) error = %v", wp, err)
	}
	if rev < before {
		t.Fatalf("List(%q) revision = %d, want >= %d", wp, rev, before)
	}
	ch, err := s.Watch(ctx, wp, rev)
	if err != nil {
		t.Fatalf("Watch(%q, %d) error = %v", wp, rev, err)
	}
	// Writes outside the prefix are interleaved: were any delivered, the
	// expected sequence would break.
	want := []store.Event{putEvent(wp+"a", "1", mustPut(t, s, wp+"a", "1", store.PutOptions{}))}
	mustPut(t, s, p+"x/a", "outside", store.PutOptions{})
	mustPut(t, s, p+"w", "outside", store.PutOptions{})
	want = append(want, putEvent(wp+"a", "2", mustPut(t, s, wp+"a", "2", store.PutOptions{})))
	if err := s.Delete(ctx, wp+"before", 0); err != nil {
		t.Fatalf("Delete() error = %v", err)
	}
	want = append(want, deleteEvent(wp+"before"))
	if err := s.Delete(ctx, p+"x/a", 0); err != nil {
		t.Fatalf("Delete() error = %v", err)
	}
	want = append(want, putEvent(wp+"b", "3", mustPut(t, s, wp+"b", "3", store.PutOptions{})))
	wantEvents(t, ch, want)
}

func (r *runner) testWatchReplay(t *testing.T) {
	s, p := r.setup(t)
	ctx := t.Context()
	from := mustPut(t, s, p+"k1", "1", store.PutOptions{})
	want := []store.Event{putEvent(p+"k2", "2", mustPut(t, s, p+"k2", "2", store.PutOptions{}))}
	mustPut(t, s, "storetest-outside/"+r.nonce, "x", store.PutOptions{})
	if err := s.Delete(ctx, p+"k1", 0); err != nil {
		t.Fatalf("Delete() error = %v", err)
	}
	want = append(want, deleteEvent(p+"k1"))
	want = append(want, putEvent(p+"k2", "3", mustPut(t, s, p+"k2", "3", store.PutOptions{})))

	ch, err := s.Watch(ctx, p, from)
	if err != nil {
		t.Fatalf("Watch(%q, %d) from a few writes ago: error = %v, want the replay", p, from, err)
	}
	wantEvents(t, ch, want)
	// The replay continues into live events.
	wantEvents(t, ch, []store.Event{putEvent(p+"k3", "4", mustPut(t, s, p+"k3", "4", store.PutOptions{}))})
}

func (r *runner) testWatchCancel(t *testing.T) {
	s, p := r.setup(t)
	tests := []struct {
		name   string
		unread int // events left unread when the context ends
	}{
		{name: "idle"},
		{name: "with unread events", unread: 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wp := fmt.Sprintf("%s%d/", p, i)
			_, rev, err := s.List(t.Context(), wp)
			if err != nil {
				t.Fatalf("List(%q) error = %v", wp, err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ch, err := s.Watch(ctx, wp, rev)
			if err != nil {
				t.Fatalf("Watch(%q, %d) error = %v", wp, rev, err)
			}
			for n := range tt.unread {
				mustPut(t, s, fmt.Sprint(wp, n), "v", store.PutOptions{})
			}
			cancel()
			waitClosed(t, ch)
		})
	}
}

func (r *runner) testIncr(t *testing.T) {
	s, p := r.setup(t)
	key := p + "counter"
	steps := []struct {
		delta int64
		want  int64
	}{
		{delta: 5, want: 5}, // created at 0
		{delta: -2, want: 3},
		{delta: 0, want: 3},
		{delta: -10, want: -7},
	}
	for _, st := range steps {
		got, err := s.Incr(t.Context(), key, st.delta, 0)
		if err != nil {
			t.Fatalf("Incr(%q, %d) error = %v", key, st.delta, err)
		}
		if got != st.want {
			t.Errorf("Incr(%q, %d) = %d, want %d", key, st.delta, got, st.want)
		}
		kv, err := s.Get(t.Context(), key)
		if err != nil || string(kv.Value) != fmt.Sprint(st.want) {
			t.Errorf("Get(%q) = %q, %v; want %q", key, kv.Value, err, fmt.Sprint(st.want))
		}
	}
}

func (r *runner) testIncrConcurrent(t *testing.T) {
	s, p := r.setup(t)
	const workers, each = 20, 50
	key := p + "counter"
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := s.Incr(t.Context(), key, 1, 0); err != nil {
					t.Errorf("Incr(%q) error = %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := fmt.Sprint(workers * each)
	if kv, err := s.Get(t.Context(), key); err != nil || string(kv.Value) != want {
		t.Errorf("Get(%q) after %d×%d Incr = %q, %v; want %q", key, workers, each, kv.Value, err, want)
	}
}

func (r *runner) testIncrNotInteger(t *testing.T) {
	s, p := r.setup(t)
	for i, v := range []string{"abc", "1.5", "12abc"} {
		t.Run(keySafe(v), func(t *testing.T) {
			key := fmt.Sprintf("%sk%d", p, i)
			rev := mustPut(t, s, key, v, store.PutOptions{})
			if got, err := s.Incr(t.Context(), key, 1, 0); err == nil {
				t.Errorf("Incr(%q) on %q = %d, nil; want an error", key, v, got)
			}
			wantKV(t, s, key, []byte(v), rev)
		})
	}
}

func (r *runner) testConcurrentCAS(t *testing.T) {
	s, p := r.setup(t)
	const workers, each = 10, 20
	key := p + "counter"
	mustPut(t, s, key, "0", store.PutOptions{})
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins = map[int64]int{} // revision read → successful writes based on it
	)
	for range workers {
		wg.Go(func() {
			for done := 0; done < each; {
				kv, err := s.Get(t.Context(), key)
				if err != nil {
					t.Errorf("Get(%q) error = %v", key, err)
					return
				}
				var n int
				if _, err := fmt.Sscan(string(kv.Value), &n); err != nil {
					t.Errorf("Get(%q) = %q, not a number", key, kv.Value)
					return
				}
				_, err = s.Put(t.Context(), key, fmt.Append(nil, n+1), store.PutOptions{IfRevision: kv.Revision})
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				if err != nil {
					t.Errorf("Put(%q) error = %v", key, err)
					return
				}
				mu.Lock()
				wins[kv.Revision]++
				mu.Unlock()
				done++
			}
		})
	}
	wg.Wait()
	for rev, n := range wins {
		if n != 1 {
			t.Errorf("%d CAS writes succeeded on revision %d, want 1", n, rev)
		}
	}
	want := fmt.Sprint(workers * each)
	if kv, err := s.Get(t.Context(), key); err != nil || string(kv.Value) != want {
		t.Errorf("Get(%q) after %d×%d CAS increments = %q, %v; want %q", key, workers, each, kv.Value, err, want)
	}
}

func (r *runner) testClose(t *testing.T) {
	s, p := r.setup(t)
	ctx := t.Context()
	key := p + "k"
	rev := mustPut(t, s, key, "v", store.PutOptions{})
	ch, err := s.Watch(ctx, p, rev)
	if err != nil {
		t.Fatalf("Watch(%q, %d) error = %v", p, rev, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	waitClosed(t, ch)

	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, key); return err }},
		{"List", func() error { _, _, err := s.List(ctx, p); return err }},
		{"Put", func() error { _, err := s.Put(ctx, key, []byte("v"), store.PutOptions{}); return err }},
		{"Delete", func() error { return s.Delete(ctx, key, 0) }},
		{"Watch", func() error { _, err := s.Watch(ctx, p, rev); return err }},
		{"Incr", func() error { _, err := s.Incr(ctx, p+"n", 1, 0); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("after Close, %s() error = %v, want ErrClosed", c.name, err)
		}
	}
	if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close() error = %v, want nil or ErrClosed", err)
	}
}

func (r *runner) testLeaseExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write func(t *testing.T, s store.Store, key string)
	}{
		{name: "put", write: func(t *testing.T, s store.Store, key string) {
			mustPut(t, s, key, "v", store.PutOptions{TTL: leaseTTL})
		}},
		{name: "incr", write: func(t *testing.T, s store.Store, key string) {
			mustIncr(t, s, key, leaseTTL)
		}},
		{name: "incr without ttl keeps it", write: func(t *testing.T, s store.Store, key string) {
			mustIncr(t, s, key, leaseTTL)
			mustIncr(t, s, key, 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, p := r.setup(t)
			ctx := t.Context()
			key := p + "lease"
			_, rev, err := s.List(ctx, p)
			if err != nil {
				t.Fatalf("List(%q) error = %v", p, err)
			}
			ch, err := s.Watch(ctx, p, rev)
			if err != nil {
				t.Fatalf("Watch(%q, %d) error = %v", p, rev, err)
			}
			tt.write(t, s, key)
			deadline := time.Now().Add(leaseTTL + expiryDeadline)

			poll(t, deadline, func() (bool, error) {
				_, err := s.Get(ctx, key)
				if errors.Is(err, store.ErrNotFound) {
					return true, nil
				}
				return false, err
			}, "Get(%q) to return ErrNotFound after the lease ends", key)
			kvs, _, err := s.List(ctx, p)
			if err != nil || len(kvs) != 0 {
				t.Errorf("List(%q) after the lease ended = %+v, %v; want nothing", p, kvs, err)
			}
			var last int64
			for {
				ev := recv(t, ch, time.Until(deadline))
				if ev.KV.Key != key || ev.KV.Revision <= last {
					t.Fatalf("event %+v: want key %q and a revision > %d", ev, key, last)
				}
				last = ev.KV.Revision
				if ev.Type == store.EventDelete {
					break
				}
			}
		})
	}
}

func (r *runner) testLeaseRenewal(t *testing.T) {
	t.Parallel()
	putLease := func(ttl time.Duration) func(t *testing.T, s store.Store, key string) {
		return func(t *testing.T, s store.Store, key string) {
			mustPut(t, s, key, "v", store.PutOptions{TTL: ttl})
		}
	}
	incrLease := func(ttl time.Duration) func(t *testing.T, s store.Store, key string) {
		return func(t *testing.T, s store.Store, key string) { mustIncr(t, s, key, ttl) }
	}
	tests := []struct {
		name         string
		write, renew func(t *testing.T, s store.Store, key string)
	}{
		{name: "put longer ttl", write: putLease(leaseTTL), renew: putLease(time.Minute)},
		{name: "put without ttl", write: putLease(leaseTTL), renew: putLease(0)},
		{name: "incr longer ttl", write: incrLease(leaseTTL), renew: incrLease(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, p := r.setup(t)
			key := p + "lease"
			start := time.Now()
			tt.write(t, s, key)
			tt.renew(t, s, key)
			// Present throughout, until well after the first lease would
			// have ended.
			until := start.Add(leaseTTL + leaseTTL/2)
			tick := time.NewTicker(4 * pollInterval)
			defer tick.Stop()
			for time.Now().Before(until) {
				if kv, err := s.Get(t.Context(), key); err != nil {
					t.Fatalf("Get(%q) %v after the renewed write = %+v, %v; want the key", key, time.Since(start), kv, err)
				}
				<-tick.C
			}
		})
	}
}

// mustPut writes key and returns its revision.
func mustPut(t *testing.T, s store.Store, key, value string, opts store.PutOptions) int64 {
	t.Helper()
	rev, err := s.Put(t.Context(), key, []byte(value), opts)
	if err != nil {
		t.Fatalf("Put(%q, %+v) error = %v", key, opts, err)
	}
	return rev
}

func mustIncr(t *testing.T, s store.Store, key string, ttl time.Duration) {
	t.Helper()
	if _, err := s.Incr(t.Context(), key, 1, ttl); err != nil {
		t.Fatalf("Incr(%q, 1, %v) error = %v", key, ttl, err)
	}
}

// wantKV checks that Get(key) returns value at revision rev.
func wantKV(t *testing.T, s store.Store, key string, value []byte, rev int64) {
	t.Helper()
	kv, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q) error = %v", key, err)
	}
	if kv.Key != key || !bytes.Equal(kv.Value, value) || kv.Revision != rev {
		t.Errorf("Get(%q) = {%q %.40q %d}, want {%q %.40q %d}", key, kv.Key, kv.Value, kv.Revision, key, value, rev)
	}
}

func putEvent(key, value string, rev int64) store.Event {
	return store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: []byte(value), Revision: rev}}
}

// deleteEvent is an expected deletion; its revision, which Delete does not
// return, is only checked to fall between its neighbours'.
func deleteEvent(key string) store.Event {
	return store.Event{Type: store.EventDelete, KV: store.KV{Key: key}}
}

// wantEvents receives len(want) events from ch and checks them in order.
func wantEvents(t *testing.T, ch <-chan store.Event, want []store.Event) {
	t.Helper()
	var prev int64
	for i, w := range want {
		got := recv(t, ch, eventTimeout)
		ok := got.Type == w.Type && got.KV.Key == w.KV.Key && bytes.Equal(got.KV.Value, w.KV.Value)
		if w.KV.Revision != 0 {
			ok = ok && got.KV.Revision == w.KV.Revision
		} else {
			next := int64(1<<63 - 1)
			if i+1 < len(want) && want[i+1].KV.Revision != 0 {
				next = want[i+1].KV.Revision
			}
			ok = ok && got.KV.Revision > prev && got.KV.Revision < next
		}
		if !ok {
			t.Fatalf("event %d = %s, want %s", i, fmtEvent(got), fmtEvent(w))
		}
		prev = got.KV.Revision
	}
}

func fmtEvent(ev store.Event) string {
	typ := map[store.EventType]string{store.EventPut: "put", store.EventDelete: "delete"}[ev.Type]
	if typ == "" {
		typ = fmt.Sprint("type ", int(ev.Type))
	}
	return fmt.Sprintf("{%s %q %q rev %d}", typ, ev.KV.Key, ev.KV.Value, ev.KV.Revision)
}

// recv returns the next event, failing t if none comes within timeout or the
// channel closes.
func recv(t *testing.T, ch <-chan store.Event, timeout time.Duration) store.Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want an event")
		}
		return ev
	case <-timer.C:
		t.Fatalf("no event within %v", timeout)
	}
	return store.Event{}
}

// waitClosed drains ch until it closes, failing t if it stays open.
func waitClosed(t *testing.T, ch <-chan store.Event) {
	t.Helper()
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("watch channel still open %v later, want it closed", eventTimeout)
		}
	}
}

// poll calls cond until it reports true, failing t if deadline passes first
// or cond returns an error.
func poll(t *testing.T, deadline time.Time, cond func() (bool, error), format string, args ...any) {
	t.Helper()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for "+format+": %v", append(args, err)...)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		<-tick.C
	}
}
