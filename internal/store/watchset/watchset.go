// Package watchset is the fan-out that store backends share: a set of
// watches, each wanting the events under a key prefix after a revision, fed
// by the backend's publisher without ever blocking it. A watch that lets its
// buffer fill up is closed, as store.Store's Watch contract allows, and its
// consumer re-lists.
package watchset

import (
	"context"
	"log/slog"
	"strings"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// Watch is one consumer's channel of events.
type Watch struct {
	prefix string
	// After is the revision up to which events are already delivered (by
	// a replay) or not wanted; Deliver skips them.
	After int64
	ch    chan store.Event
	stop  func() bool // unregisters the context.AfterFunc; nil until added
}

// NewWatch returns a watch of the keys under prefix after revision after,
// whose channel holds buffer events.
func NewWatch(prefix string, after int64, buffer int) *Watch {
	return &Watch{prefix: prefix, After: after, ch: make(chan store.Event, buffer)}
}

// C is the channel the consumer reads.
func (w *Watch) C() <-chan store.Event { return w.ch }

// Offer queues ev without blocking and reports whether there was room.
func (w *Watch) Offer(ev store.Event) bool {
	select {
	case w.ch <- ev:
		return true
	default:
		return false
	}
}

// Close closes the channel of a watch that was never added to a Set (a Set
// closes its own watches).
func (w *Watch) Close() { close(w.ch) }

// Set is the registered watches of one store. It is not safe for concurrent
// use: the backend guards it with the lock that also orders its events, and
// never does I/O under it.
type Set struct {
	watches map[*Watch]struct{}
	log     *slog.Logger
}

// New returns an empty Set that logs the watches it closes to log.
func New(log *slog.Logger) *Set {
	return &Set{watches: make(map[*Watch]struct{}), log: log}
}

// Add registers w. When ctx ends, remove(w) is called on another goroutine;
// it must take the backend's lock and call Remove.
func (s *Set) Add(ctx context.Context, w *Watch, remove func(*Watch)) {
	s.watches[w] = struct{}{}
	w.stop = context.AfterFunc(ctx, func() { remove(w) })
}

// Deliver queues ev on every watch that wants it: after its revision and
// under its prefix. A watch with no room left is closed.
func (s *Set) Deliver(ev store.Event) {
	for w := range s.watches {
		if ev.KV.Revision <= w.After || !strings.HasPrefix(ev.KV.Key, w.prefix) {
			continue
		}
		if !w.Offer(ev) {
			s.log.Warn("closing a watch that fell behind", "prefix", w.prefix, "buffer", cap(w.ch))
			s.drop(w)
		}
	}
}

// DropIf closes every watch for which fn returns true.
func (s *Set) DropIf(fn func(*Watch) bool) {
	for w := range s.watches {
		if fn(w) {
			s.drop(w)
		}
	}
}

// Remove closes w if it is still registered.
func (s *Set) Remove(w *Watch) {
	if _, ok := s.watches[w]; ok {
		s.drop(w)
	}
}

// Close closes every watch.
func (s *Set) Close() { s.DropIf(func(*Watch) bool { return true }) }

// drop unregisters w and closes its channel. The channel keeps the events
// already in it for the consumer to drain.
func (s *Set) drop(w *Watch) {
	delete(s.watches, w)
	w.stop()
	close(w.ch)
}
