package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/redisstore/redistest"
	"github.com/gatehouse-gw/gatehouse/internal/store/storetest"
)

// redisServer is the one redis-server of this package's tests. Tests share
// it, each under Store prefixes of its own (runID and the test's name), so
// that they may run in parallel and leave nothing behind that a later run
// could trip on.
var redisServer redistest.Shared

// runID tells this run's keys from those of earlier runs on the same server.
var runID = func() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

// eventTimeout is how long to wait for an event that should come promptly.
const eventTimeout = 5 * time.Second

func TestMain(m *testing.M) { os.Exit(redisServer.Run(m)) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		// A short reap interval so that lease deletions reach watchers soon.
		return open(t, Config{ReapInterval: 50 * time.Millisecond})
	})
}

// open opens a store on database 0 of the shared server, under a prefix of
// t's own unless cfg has one, with a client of its own unless cfg has one.
func open(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Client == nil {
		cfg.Client = redisServer.Server(t).Client(t, 0)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = testPrefix(t, "")
	}
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open(prefix %q) error = %v", cfg.Prefix, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// prefixes numbers the prefixes testPrefix hands out, so that a test run
// again in the same process (go test -count) starts afresh.
var prefixes atomic.Int64

// testPrefix returns a Store prefix unique to this call, readable as the
// run, t and name. It ends with ':' so that no two are prefixes of one
// another.
func testPrefix(t testing.TB, name string) string {
	return fmt.Sprintf("test:%s:%d:%s:%s:", runID, prefixes.Add(1), t.Name(), name)
}

func mustPut(t *testing.T, s store.Store, key, value string, opts store.PutOptions) int64 {
	t.Helper()
	rev, err := s.Put(t.Context(), key, []byte(value), opts)
	if err != nil {
		t.Fatalf("Put(%q, %+v) error = %v", key, opts, err)
	}
	return rev
}

// recv returns the next event, failing t if none comes within eventTimeout.
func recv(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want an event")
		}
		return ev
	case <-timer.C:
		t.Fatalf("no event within %v", eventTimeout)
	}
	return store.Event{}
}

func fmtEvent(ev store.Event) string {
	typ := map[store.EventType]string{store.EventPut: "put", store.EventDelete: "delete"}[ev.Type]
	return fmt.Sprintf("{%s %q %q rev %d}", typ, ev.KV.Key, ev.KV.Value, ev.KV.Revision)
}

func TestPrefixIsolation(t *testing.T) {
	srv := redisServer.Server(t)
	// Database 1 is this test's alone: every key in it must belong to one
	// of the two stores.
	client := srv.Client(t, 1)
	if err := client.FlushDB(t.Context()).Err(); err != nil { // an earlier -count run's
		t.Fatalf("FLUSHDB error = %v", err)
	}
	pa, pb := testPrefix(t, "a"), testPrefix(t, "b")
	a := open(t, Config{Client: client, Prefix: pa})
	b := open(t, Config{Client: client, Prefix: pb})
	ctx := t.Context()

	chA, err := a.Watch(ctx, "", 0)
	if err != nil {
		t.Fatalf("a.Watch() error = %v", err)
	}
	chB, err := b.Watch(ctx, "", 0)
	if err != nil {
		t.Fatalf("b.Watch() error = %v", err)
	}
	// The same keys in both, with different values, leases and counters
	// included.
	for _, st := range []struct {
		s    *Store
		name string
	}{{a, "a"}, {b, "b"}} {
		mustPut(t, st.s, "k", "v-"+st.name, store.PutOptions{})
		mustPut(t, st.s, "lease", "l-"+st.name, store.PutOptions{TTL: time.Minute})
		if _, err := st.s.Incr(ctx, "n", 1, 0); err != nil {
			t.Fatalf("%s.Incr() error = %v", st.name, err)
		}
	}
	if err := b.Delete(ctx, "k", 0); err != nil {
		t.Fatalf("b.Delete() error = %v", err)
	}
	if kv, err := a.Get(ctx, "k"); err != nil || string(kv.Value) != "v-a" || kv.Revision != 1 {
		t.Errorf("a.Get(k) = %q at %d, %v; want %q at 1 (b's writes and delete unseen)", kv.Value, kv.Revision, err, "v-a")
	}
	kvs, rev, err := a.List(ctx, "")
	if err != nil || len(kvs) != 3 || rev != 3 {
		t.Errorf("a.List() = %d keys at %d, %v; want 3 at 3", len(kvs), rev, err)
	}
	for _, c := range []struct {
		name string
		ch   <-chan store.Event
		want []string
	}{
		{"a", chA, []string{`{put "k" "v-a" rev 1}`, `{put "lease" "l-a" rev 2}`, `{put "n" "1" rev 3}`}},
		{"b", chB, []string{`{put "k" "v-b" rev 1}`, `{put "lease" "l-b" rev 2}`, `{put "n" "1" rev 3}`, `{delete "k" "" rev 4}`}},
	} {
		for i, w := range c.want {
			if got := fmtEvent(recv(t, c.ch)); got != w {
				t.Errorf("%s event %d = %s, want %s", c.name, i, got, w)
			}
		}
	}
	// Nothing more for a: a marker write must be its next event.
	mustPut(t, a, "marker", "", store.PutOptions{})
	if got, want := fmtEvent(recv(t, chA)), `{put "marker" "" rev 4}`; got != want {
		t.Errorf("a's event after b's = %s, want %s", got, want)
	}

	keys, err := client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatalf("KEYS * error = %v", err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, pa) && !strings.HasPrefix(k, pb) {
			t.Errorf("Redis key %q is outside both prefixes %q and %q", k, pa, pb)
		}
	}
}

func TestReopen(t *testing.T) {
	prefix := testPrefix(t, "")
	s := open(t, Config{Prefix: prefix})
	ctx := t.Context()
	from := mustPut(t, s, "a", "1", store.PutOptions{})
	mustPut(t, s, "b", "2", store.PutOptions{})
	if err := s.Delete(ctx, "a", 0); err != nil {
		t.Fatalf("Delete() error = %v", err)
	}
	_, last, err := s.List(ctx, "")
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}

	s = open(t, Config{Prefix: prefix})
	if kv, err := s.Get(ctx, "b"); err != nil || string(kv.Value) != "2" || kv.Revision != from+1 {
		t.Errorf("after reopen, Get(b) = %q at %d, %v; want %q at %d", kv.Value, kv.Revision, err, "2", from+1)
	}
	if _, got, err := s.List(ctx, ""); err != nil || got != last {
		t.Errorf("after reopen, List() revision = %d, %v; want %d", got, err, last)
	}
	ch, err := s.Watch(ctx, "", from)
	if err != nil {
		t.Fatalf("after reopen, Watch(from %d) error = %v, want the replay", from, err)
	}
	next := mustPut(t, s, "c", "3", store.PutOptions{})
	if next != last+1 {
		t.Errorf("after reopen, Put() revision = %d, want %d", next, last+1)
	}
	for _, want := range []string{
		fmt.Sprintf(`{put "b" "2" rev %d}`, from+1),
		fmt.Sprintf(`{delete "a" "" rev %d}`, from+2),
		fmt.Sprintf(`{put "c" "3" rev %d}`, next),
	} {
		if got := fmtEvent(recv(t, ch)); got != want {
			t.Errorf("after reopen, event = %s, want %s", got, want)
		}
	}
}

func TestWatchCompacted(t *testing.T) {
	tests := []struct {
		name    string
		history int
		writes  int
		from    int64
		wantErr error
		want    []int64 // revisions replayed
	}{
		{name: "fresh store from 0", from: 0},
		{name: "all kept", writes: 5, from: 0, want: []int64{1, 2, 3, 4, 5}},
		{name: "oldest kept", history: 4, writes: 10, from: 6, want: []int64{7, 8, 9, 10}},
		{name: "older than kept", history: 4, writes: 10, from: 5, wantErr: store.ErrCompacted},
		{name: "from 0 when trimmed", history: 4, writes: 10, from: 0, wantErr: store.ErrCompacted},
		{name: "from current", history: 4, writes: 10, from: 10},
		{name: "from the future", writes: 2, from: 5},
		{name: "more than a page", writes: readBatch + 10, from: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t, Config{History: tt.history})
			ctx := t.Context()
			pipe := make([]int64, 0, tt.writes)
			for i := range tt.writes {
				pipe = append(pipe, mustPut(t, s, fmt.Sprint("k", i), "", store.PutOptions{}))
			}
			if tt.name == "more than a page" {
				tt.want = pipe[tt.from:]
			}
			ch, err := s.Watch(ctx, "", tt.from)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Watch(from %d) error = %v, want %v", tt.from, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			// A live write marks the end of the replay; writes at or below
			// from are not watched.
			live := mustPut(t, s, "live", "", store.PutOptions{})
			for live <= tt.from {
				live = mustPut(t, s, "live", "", store.PutOptions{})
			}
			var got []int64
			for {
				ev := recv(t, ch)
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

func TestTwoInstances(t *testing.T) {
	// Two stores with clients of their own on one prefix, as two gateway
	// instances sharing a Redis.
	prefix := testPrefix(t, "")
	a := open(t, Config{Prefix: prefix})
	b := open(t, Config{Prefix: prefix})
	ctx := t.Context()
	_, rev, err := a.List(ctx, "")
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	chA, err := a.Watch(ctx, "", rev)
	if err != nil {
		t.Fatalf("a.Watch() error = %v", err)
	}
	chB, err := b.Watch(ctx, "", rev)
	if err != nil {
		t.Fatalf("b.Watch() error = %v", err)
	}
	r1 := mustPut(t, a, "k", "from a", store.PutOptions{})
	r2 := mustPut(t, b, "k", "from b", store.PutOptions{IfRevision: r1})
	if _, err := a.Put(ctx, "k", []byte("stale"), store.PutOptions{IfRevision: r1}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a.Put(IfRevision: %d) after b's write error = %v, want ErrConflict", r1, err)
	}
	if kv, err := a.Get(ctx, "k"); err != nil || string(kv.Value) != "from b" || kv.Revision != r2 {
		t.Errorf("a.Get(k) = %q at %d, %v; want %q at %d", kv.Value, kv.Revision, err, "from b", r2)
	}
	want := []string{fmt.Sprintf(`{put "k" "from a" rev %d}`, r1), fmt.Sprintf(`{put "k" "from b" rev %d}`, r2)}
	for name, ch := range map[string]<-chan store.Event{"a": chA, "b": chB} {
		for i, w := range want {
			if got := fmtEvent(recv(t, ch)); got != w {
				t.Errorf("%s event %d = %s, want %s", name, i, got, w)
			}
		}
	}
}

func TestWatchJoinsWhileWriting(t *testing.T) {
	// Watches started while another instance writes flat out must each see
	// every revision after their start exactly once, in order: the handoff
	// from a watch's replay to the shared reader may lose or repeat none.
	prefix := testPrefix(t, "")
	writer := open(t, Config{Prefix: prefix})
	s := open(t, Config{Prefix: prefix})
	ctx := t.Context()
	if _, err := s.Watch(ctx, "", 0); err != nil { // starts the reader
		t.Fatalf("Watch() error = %v", err)
	}
	const writes, watches = 400, 40
	done := make(chan int64, 1)
	go func() {
		var rev int64
		for i := range writes {
			r, err := writer.Put(ctx, fmt.Sprint("k", i%7), []byte("v"), store.PutOptions{})
			if err != nil {
				t.Errorf("Put() error = %v", err)
				break
			}
			rev = r
		}
		done <- rev
	}()
	type started struct {
		from int64
		ch   <-chan store.Event
	}
	var ws []started
	for range watches {
		_, from, err := s.List(ctx, "")
		if err != nil {
			t.Fatalf("List() error = %v", err)
		}
		ch, err := s.Watch(ctx, "", from)
		if err != nil {
			t.Fatalf("Watch(from %d) error = %v", from, err)
		}
		ws = append(ws, started{from, ch})
	}
	last := <-done
	for i, w := range ws {
		for want := w.from + 1; want <= last; want++ {
			if ev := recv(t, w.ch); ev.KV.Revision != want {
				t.Fatalf("watch %d from %d: event %s, want revision %d", i, w.from, fmtEvent(ev), want)
			}
		}
	}
}

func TestLeaseReapedOnce(t *testing.T) {
	// Two instances reaping the same prefix often, racing for every lease.
	prefix := testPrefix(t, "")
	a := open(t, Config{Prefix: prefix, ReapInterval: 5 * time.Millisecond})
	b := open(t, Config{Prefix: prefix, ReapInterval: 5 * time.Millisecond})
	ctx := t.Context()
	_, rev, err := a.List(ctx, "")
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	ch, err := a.Watch(ctx, "", rev)
	if err != nil {
		t.Fatalf("Watch() error = %v", err)
	}
	const leases = 20
	for i := range leases {
		s := a
		if i%2 == 1 {
			s = b
		}
		mustPut(t, s, fmt.Sprint("lease/", i), "v", store.PutOptions{TTL: 50 * time.Millisecond})
	}
	deleted := map[string]int{}
	for len(deleted) < leases {
		ev := recv(t, ch)
		if ev.Type == store.EventDelete {
			deleted[ev.KV.Key]++
		}
	}
	// Let both reapers run a few more times, then write a marker: it must
	// be the next event, no lease deleted twice before it.
	if err := waitReaps(ctx, a, 3); err != nil {
		t.Fatal(err)
	}
	mustPut(t, a, "marker", "", store.PutOptions{})
	for {
		ev := recv(t, ch)
		if ev.KV.Key == "marker" {
			break
		}
		t.Errorf("event %s after every lease was deleted, want none before the marker", fmtEvent(ev))
	}
	for k, n := range deleted {
		if n != 1 {
			t.Errorf("lease %q deleted %d times, want 1", k, n)
		}
	}
}

// waitReaps runs the reaper script n times itself: with other reapers
// running, it returns once every lease due before the call is gone.
func waitReaps(ctx context.Context, s *Store, n int) error {
	for range n {
		if _, err := s.run(ctx, reapScript, reapBatch).Int64(); err != nil {
			return fmt.Errorf("reap: %w", err)
		}
	}
	return nil
}

func TestExpiredBeforeReap(t *testing.T) {
	// No reaper to speak of: reads must still see the lease end, and the
	// next write to the key must announce its deletion first.
	s := open(t, Config{ReapInterval: time.Hour})
	ctx := t.Context()
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatalf("Watch() error = %v", err)
	}
	mustPut(t, s, "k", "v", store.PutOptions{TTL: 50 * time.Millisecond})
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := s.Get(ctx, "k")
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("Get() error = %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("Get() still finds the lease 5s after its 50ms TTL")
		}
		<-tick.C
	}
	if kvs, _, err := s.List(ctx, ""); err != nil || len(kvs) != 0 {
		t.Errorf("List() after the lease ended = %+v, %v; want nothing", kvs, err)
	}
	if err := s.Delete(ctx, "k", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete() after the lease ended error = %v, want ErrNotFound", err)
	}
	mustPut(t, s, "k", "new", store.PutOptions{IfRevision: store.Absent})
	for i, want := range []string{`{put "k" "v" rev 1}`, `{delete "k" "" rev 2}`, `{put "k" "new" rev 3}`} {
		if got := fmtEvent(recv(t, ch)); got != want {
			t.Errorf("event %d = %s, want %s", i, got, want)
		}
	}
}

func TestListSpecialKeys(t *testing.T) {
	s := open(t, Config{})
	// Glob characters mean nothing to a lexical range; 0xff bytes (never in
	// UTF-8, but keys are only by convention) test the range's upper bound.
	keys := []string{"x", "x*", "x?", "x[", "x\\", "x]", "x\xff", "x\xff\xff", "x\xffa", "y", "*"}
	for _, k := range keys {
		mustPut(t, s, k, "v", store.PutOptions{})
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{prefix: "", want: []string{"*", "x", "x*", "x?", "x[", "x\\", "x]", "x\xff", "x\xffa", "x\xff\xff", "y"}},
		{prefix: "*", want: []string{"*"}},
		{prefix: "x[", want: []string{"x["}},
		{prefix: "x\\", want: []string{"x\\"}},
		{prefix: "x\xff", want: []string{"x\xff", "x\xffa", "x\xff\xff"}},
		{prefix: "x\xff\xff", want: []string{"x\xff\xff"}},
		{prefix: "z", want: nil},
	}
	for _, tt := range tests {
		kvs, _, err := s.List(t.Context(), tt.prefix)
		if err != nil {
			t.Fatalf("List(%q) error = %v", tt.prefix, err)
		}
		var got []string
		for _, kv := range kvs {
			got = append(got, kv.Key)
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

func TestIncrRange(t *testing.T) {
	// Counter arithmetic must be exact over the whole int64 range: Lua's
	// numbers are doubles, exact only to 2^53.
	s := open(t, Config{})
	ctx := t.Context()
	tests := []struct {
		name    string
		start   string
		delta   int64
		want    int64
		wantErr bool
	}{
		{name: "to max", start: "9223372036854775806", delta: 1, want: 1<<63 - 1},
		{name: "past max", start: "9223372036854775807", delta: 1, wantErr: true},
		{name: "to min", start: "-9223372036854775807", delta: -1, want: -1 << 63},
		{name: "above 2^53", start: "9007199254740993", delta: 2, want: 9007199254740995},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprint("n", i)
			rev := mustPut(t, s, key, tt.start, store.PutOptions{})
			got, err := s.Incr(ctx, key, tt.delta, 0)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Incr(%s%+d) = %d, %v; want %d, error: %t", tt.start, tt.delta, got, err, tt.want, tt.wantErr)
			}
			kv, err := s.Get(ctx, key)
			want := fmt.Sprint(tt.want)
			if tt.wantErr {
				want = tt.start
			} else {
				rev++
			}
			if err != nil || string(kv.Value) != want || kv.Revision != rev {
				t.Errorf("Get(%q) = %q at %d, %v; want %q at %d", key, kv.Value, kv.Revision, err, want, rev)
			}
		})
	}
}

func TestSlowWatcherDoesNotBlockOthers(t *testing.T) {
	const buffer = 8
	s := open(t, Config{WatchBuffer: buffer})
	ctx := t.Context()
	slow, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatalf("Watch() error = %v", err)
	}
	fast, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatalf("Watch() error = %v", err)
	}
	// Never read from slow; a reader that waited for it would stall fast.
	const writes = 4 * buffer
	for i := range writes {
		mustPut(t, s, fmt.Sprint("k", i), "", store.PutOptions{})
		if ev := recv(t, fast); ev.KV.Revision != int64(i+1) {
			t.Fatalf("fast watcher event %d = %s, want revision %d", i, fmtEvent(ev), i+1)
		}
	}
	// The slow watcher gets what fitted, in order, then a closed channel.
	var got int
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	for done := false; !done; {
		select {
		case ev, ok := <-slow:
			if !ok {
				done = true
				break
			}
			got++
			if ev.KV.Revision != int64(got) {
				t.Errorf("slow watcher event %d revision = %d, want %d", got, ev.KV.Revision, got)
			}
		case <-timer.C:
			t.Fatalf("slow watcher's channel still open after %d events and %v", got, eventTimeout)
		}
	}
	if got != buffer {
		t.Errorf("slow watcher received %d events before its channel closed, want %d", got, buffer)
	}
}

func TestHungRedis(t *testing.T) {
	// A server of its own: pausing the shared one would stall every test.
	srv := redistest.Start(t, redistest.Config{})
	opts := srv.Options(0)
	opts.ReadTimeout = 2 * time.Second
	opts.WriteTimeout = 2 * time.Second
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	s := open(t, Config{Client: client, BlockTimeout: 100 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	ctx := t.Context()
	mustPut(t, s, "k", "v", store.PutOptions{})
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatalf("Watch() error = %v", err)
	}
	recv(t, ch)

	srv.Pause(t)
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err }},
		{"Put", func(ctx context.Context) error { _, err := s.Put(ctx, "k", nil, store.PutOptions{}); return err }},
		{"List", func(ctx context.Context) error { _, _, err := s.List(ctx, ""); return err }},
		{"Watch", func(ctx context.Context) error { _, err := s.Watch(ctx, "", 0); return err }},
	}
	for _, c := range calls {
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		start := time.Now()
		err := c.call(cctx)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s() on a hung Redis error = %v, want context.DeadlineExceeded", c.name, err)
		}
		t.Logf("%s() on a hung Redis: %v after %v", c.name, err, took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("%s() on a hung Redis took %v with a 500ms context, want under 1s", c.name, took)
		}
	}

	// Once Redis answers again, so does the store, watches included.
	srv.Resume()
	rev := mustPut(t, s, "k", "after", store.PutOptions{})
	for {
		ev := recv(t, ch)
		if ev.KV.Revision == rev {
			if string(ev.KV.Value) != "after" {
				t.Errorf("event after resume = %s, want value %q", fmtEvent(ev), "after")
			}
			break
		}
	}
}

func TestPassword(t *testing.T) {
	const password = "s3cret-Pa55word"
	srv := redistest.Start(t, redistest.Config{Password: password})
	tests := []struct {
		name     string
		password string
		wantErr  bool
	}{
		{name: "right", password: password},
		{name: "wrong", password: "wrong-" + password, wantErr: true},
		{name: "none", password: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := srv.Options(0)
			opts.Password = tt.password
			client := redis.NewClient(opts)
			t.Cleanup(func() { _ = client.Close() })
			s, err := Open(t.Context(), Config{Client: client, Prefix: testPrefix(t, "")})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open() error = %v, want error: %t", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), password) {
					t.Errorf("Open() error = %q, contains the password", err)
				}
				return
			}
			defer s.Close()
			if _, err := s.Put(t.Context(), "k", []byte("v"), store.PutOptions{}); err != nil {
				t.Errorf("Put() error = %v", err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	srv := redisServer.Server(t)
	tests := []struct {
		name    string
		client  func() redis.UniversalClient
		wantErr string
	}{
		{name: "no client", client: func() redis.UniversalClient { return nil }, wantErr: "Client is nil"},
		{name: "read timeout disabled", client: func() redis.UniversalClient {
			o := srv.Options(0)
			o.ReadTimeout = -1
			return redis.NewClient(o)
		}, wantErr: "ReadTimeout"},
		{name: "nothing listening", client: func() redis.UniversalClient {
			o := srv.Options(0)
			o.Addr = "127.0.0.1:1"
			o.MaxRetries = -1
			return redis.NewClient(o)
		}, wantErr: "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.client()
			if c != nil {
				t.Cleanup(func() { _ = c.Close() })
			}
			s, err := Open(t.Context(), Config{Client: c, Prefix: testPrefix(t, "")})
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open() = nil error, want one mentioning %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open() error = %q, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestMapErr(t *testing.T) {
	s := &Store{}
	ioTimeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	expired, cancel := context.WithDeadline(t.Context(), time.Now())
	defer cancel()
	<-expired.Done()
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		closed bool
		want   []error // errors.Is targets
	}{
		{name: "driver error", ctx: t.Context(), err: ioTimeout, want: []error{os.ErrDeadlineExceeded}},
		{name: "deadline hit as an i/o timeout", ctx: expired, err: ioTimeout, want: []error{context.DeadlineExceeded, os.ErrDeadlineExceeded}},
		{name: "deadline from the driver", ctx: expired, err: context.DeadlineExceeded, want: []error{context.DeadlineExceeded}},
		{name: "client closed", ctx: t.Context(), err: redis.ErrClosed, want: []error{store.ErrClosed, redis.ErrClosed}},
		{name: "store closed", ctx: t.Context(), err: ioTimeout, closed: true, want: []error{store.ErrClosed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.closed.Store(tt.closed)
			got := s.mapErr(tt.ctx, tt.err)
			for _, w := range tt.want {
				if !errors.Is(got, w) {
					t.Errorf("mapErr(%v) = %v, want errors.Is %v", tt.err, got, w)
				}
			}
			if !strings.HasPrefix(got.Error(), "redis") && !errors.Is(got, store.ErrClosed) {
				t.Errorf("mapErr(%v) = %q, want it marked as Redis's", tt.err, got)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "client only", cfg: Config{Client: client}},
		{name: "no client", cfg: Config{}, wantErr: true},
		{name: "negative history", cfg: Config{Client: client, History: -1}, wantErr: true},
		{name: "negative watch buffer", cfg: Config{Client: client, WatchBuffer: -1}, wantErr: true},
		{name: "negative block timeout", cfg: Config{Client: client, BlockTimeout: -time.Second}, wantErr: true},
		{name: "block timeout under 1ms", cfg: Config{Client: client, BlockTimeout: time.Microsecond}, wantErr: true},
		{name: "negative poll interval", cfg: Config{Client: client, PollInterval: -time.Second}, wantErr: true},
		{name: "negative reap interval", cfg: Config{Client: client, ReapInterval: -time.Second}, wantErr: true},
		{name: "waiting for replicas", cfg: Config{Client: client, WaitReplicas: 2, WaitTimeout: 200 * time.Millisecond}},
		{name: "negative wait replicas", cfg: Config{Client: client, WaitReplicas: -1}, wantErr: true},
		{name: "negative wait timeout", cfg: Config{Client: client, WaitTimeout: -time.Second}, wantErr: true},
		{name: "wait timeout under 1ms", cfg: Config{Client: client, WaitTimeout: time.Microsecond}, wantErr: true},
		{name: "negative ping interval", cfg: Config{Client: client, PingInterval: -time.Second}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error: %t", err, tt.wantErr)
			}
		})
	}
}

func TestLexRange(t *testing.T) {
	tests := []struct {
		prefix, lo, hi string
	}{
		{prefix: "", lo: "-", hi: "+"},
		{prefix: "a/", lo: "[a/", hi: "(a0"},
		{prefix: "a\xff", lo: "[a\xff", hi: "(b"},
		{prefix: "\xff\xff", lo: "[\xff\xff", hi: "+"},
	}
	for _, tt := range tests {
		if lo, hi := lexRange(tt.prefix); lo != tt.lo || hi != tt.hi {
			t.Errorf("lexRange(%q) = %q, %q; want %q, %q", tt.prefix, lo, hi, tt.lo, tt.hi)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	s := open(b, Config{})
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
	s := open(b, Config{})
	value := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Put(b.Context(), "routes/api", value, store.PutOptions{}); err != nil {
			b.Fatalf("Put() error = %v", err)
		}
	}
}

func BenchmarkIncr(b *testing.B) {
	s := open(b, Config{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Incr(b.Context(), "limits/key", 1, time.Minute); err != nil {
			b.Fatalf("Incr() error = %v", err)
		}
	}
}
