package watchset

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

func put(key string, rev int64) store.Event {
	return store.Event{Type: store.EventPut, KV: store.KV{Key: key, Revision: rev}}
}

func TestDeliverFiltersAndDropsSlowWatches(t *testing.T) {
	var mu sync.Mutex
	s := New(slog.New(slog.DiscardHandler))
	remove := func(w *Watch) { mu.Lock(); defer mu.Unlock(); s.Remove(w) }
	wide := NewWatch("a/", 1, 8)
	tiny := NewWatch("a/", 0, 1)
	mu.Lock()
	s.Add(context.Background(), wide, remove)
	s.Add(context.Background(), tiny, remove)
	for _, ev := range []store.Event{put("a/x", 1), put("b/y", 2), put("a/z", 3)} {
		s.Deliver(ev)
	}
	mu.Unlock()

	var got []int64
	for ev := range drain(wide) {
		got = append(got, ev.KV.Revision)
	}
	if len(got) != 1 || got[0] != 3 {
		t.Errorf("wide watch got revisions %v, want [3] (not 1: already seen; not 2: other prefix)", got)
	}
	var tinyGot []int64
	for ev := range tiny.C() {
		tinyGot = append(tinyGot, ev.KV.Revision)
	}
	if len(tinyGot) != 1 || tinyGot[0] != 1 {
		t.Errorf("full watch got %v then should be closed, want [1]", tinyGot)
	}
}

func TestContextEndRemovesWatch(t *testing.T) {
	var mu sync.Mutex
	s := New(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	w := NewWatch("", 0, 1)
	mu.Lock()
	s.Add(ctx, w, func(w *Watch) { mu.Lock(); defer mu.Unlock(); s.Remove(w) })
	mu.Unlock()
	cancel()
	if _, open := <-w.C(); open {
		t.Fatal("watch channel still open after its context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if n := len(s.watches); n != 0 {
		t.Errorf("set holds %d watches after their context ended, want 0", n)
	}
}

// drain returns the events queued on a still-open watch.
func drain(w *Watch) <-chan store.Event {
	out := make(chan store.Event, cap(w.ch))
	for {
		select {
		case ev := <-w.ch:
			out <- ev
		default:
			close(out)
			return out
		}
	}
}
