package boltstore

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/watchset"
)

// hub keeps the recent history of events and fans new ones out to watchers.
// Everything it does under its lock is in memory and non-blocking, so a
// writer publishing never waits for a watcher.
type hub struct {
	mu      sync.Mutex
	history ring  // events with revisions base+1, base+2, ... in order
	base    int64 // history holds every event after this revision
	watches *watchset.Set
	buffer  int
	closed  bool
}

// newHub returns a hub for a store whose revision is rev. Nothing before rev
// can be replayed: that history was not kept across the restart.
func newHub(rev int64, history, buffer int, log *slog.Logger) *hub {
	return &hub{
		history: ring{buf: make([]store.Event, history)},
		base:    rev,
		watches: watchset.New(log),
		buffer:  buffer,
	}
}

// watch registers a watcher and queues the kept events after from. Events
// published later follow them, so none is missed or repeated.
func (h *hub) watch(ctx context.Context, prefix string, from int64) (<-chan store.Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, store.ErrClosed
	}
	if from < h.base {
		return nil, store.ErrCompacted
	}
	var replay []store.Event
	for i := h.history.search(from); i < h.history.n; i++ {
		if ev := h.history.at(i); strings.HasPrefix(ev.KV.Key, prefix) {
			replay = append(replay, ev)
		}
	}
	w := watchset.NewWatch(prefix, from, len(replay)+h.buffer)
	for _, ev := range replay {
		w.Offer(ev) // cannot fail: the channel has room for the replay
	}
	h.watches.Add(ctx, w, h.remove)
	return w.C(), nil
}

// publish records events, which are in revision order, and delivers them.
func (h *hub) publish(events []store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for _, ev := range events {
		if dropped, ok := h.history.push(ev); ok {
			h.base = dropped.KV.Revision
		}
		h.watches.Deliver(ev)
	}
}

// remove ends w if it is still registered.
func (h *hub) remove(w *watchset.Watch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watches.Remove(w)
}

// close ends every watch and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.watches.Close()
}

// ring is a fixed-size FIFO of events.
type ring struct {
	buf     []store.Event
	head, n int // index of the oldest event, and the count
}

// push appends ev, returning the oldest event if it had to make room.
func (r *ring) push(ev store.Event) (dropped store.Event, ok bool) {
	if len(r.buf) == 0 {
		return ev, true
	}
	if r.n == len(r.buf) {
		dropped, ok = r.buf[r.head], true
		r.buf[r.head] = ev
		r.head = (r.head + 1) % len(r.buf)
		return dropped, ok
	}
	r.buf[(r.head+r.n)%len(r.buf)] = ev
	r.n++
	return store.Event{}, false
}

// at returns the i-th oldest event.
func (r *ring) at(i int) store.Event {
	return r.buf[(r.head+i)%len(r.buf)]
}

// search returns the index of the first event with a revision above rev.
func (r *ring) search(rev int64) int {
	return sort.Search(r.n, func(i int) bool { return r.at(i).KV.Revision > rev })
}
