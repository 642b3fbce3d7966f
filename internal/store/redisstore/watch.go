package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/watchset"
)

// readBatch bounds the stream entries one read returns, for the replay
// pages and the live reader alike.
const readBatch = 1000

// Watch streams changes under prefix after fromRevision; see store.Store.
//
// The events kept in the change stream after fromRevision are read (in
// pages, each atomic with the store revision) before Watch returns; later
// ones come from one reader per Store that follows the stream with XREAD
// BLOCK and fans events out to every watch, so that a thousand watches cost
// one blocked connection. Events are shared between watchers: do not modify
// their values. A watcher that lets its channel fill up (Config.WatchBuffer)
// has it closed. Watching from before the kept history (Config.History)
// returns store.ErrCompacted.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan store.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if fromRevision < 0 {
		return nil, fmt.Errorf("watch %q: revision %d is negative", prefix, fromRevision)
	}
	// A rewind (checkRewind) while this watch replays the stream may make
	// its replay a history that the reader no longer follows: then join
	// closes it.
	gen := s.hub.generation()
	evs, seen, err := s.replay(ctx, prefix, fromRevision)
	if err != nil {
		return nil, fmt.Errorf("watch %q from %d: %w", prefix, fromRevision, err)
	}
	w := watchset.NewWatch(prefix, max(fromRevision, seen), len(evs)+s.cfg.WatchBuffer)
	for _, ev := range evs {
		w.Offer(ev) // cannot fail: the channel has room for the replay
	}
	for {
		joined, err := s.hub.join(ctx, w, seen, gen, s.readLoop)
		if err != nil {
			return nil, fmt.Errorf("watch %q from %d: %w", prefix, fromRevision, err)
		}
		if joined {
			return w.C(), nil
		}
		// The reader has already fanned out events after seen: read them
		// here before joining, or this watcher would miss them.
		more, next, err := s.replay(ctx, prefix, seen)
		if err != nil {
			return nil, fmt.Errorf("watch %q from %d: %w", prefix, fromRevision, err)
		}
		for _, ev := range more {
			if ev.KV.Revision <= w.After {
				continue
			}
			if !w.Offer(ev) {
				s.log.Warn("closing a watch that fell behind", "prefix", prefix, "buffer", len(evs)+s.cfg.WatchBuffer)
				w.Close()
				return w.C(), nil
			}
		}
		seen, w.After = next, max(w.After, next)
	}
}

// replay returns the events under prefix after `after` that the change
// stream holds, and the store revision up to which it read: every event up
// to it has been seen. It returns store.ErrCompacted if events after `after`
// have been trimmed from the stream.
func (s *Store) replay(ctx context.Context, prefix string, after int64) ([]store.Event, int64, error) {
	var out []store.Event
	for next := after; ; {
		page, rev, err := s.history(ctx, next)
		if err != nil {
			return nil, 0, err
		}
		for _, ev := range page {
			if strings.HasPrefix(ev.KV.Key, prefix) {
				out = append(out, ev)
			}
			next = ev.KV.Revision
		}
		if len(page) < readBatch {
			return out, rev, nil
		}
	}
}

// history reads up to readBatch change stream entries after revision after,
// with the store revision, in one MULTI/EXEC. Every revision has its entry
// (a script makes both), so a first entry other than after+1, or none while
// the store is past after, means the stream was trimmed: store.ErrCompacted.
func (s *Store) history(ctx context.Context, after int64) ([]store.Event, int64, error) {
	var (
		revCmd   *redis.StringCmd
		rangeCmd *redis.XMessageSliceCmd
	)
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		revCmd = p.Get(ctx, s.keys[0])
		rangeCmd = p.XRangeN(ctx, s.keys[1], streamID(after+1), "+", readBatch)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) { // Nil: no revision yet
		return nil, 0, s.mapErr(ctx, err)
	}
	var rev int64
	if text, err := revCmd.Result(); err == nil {
		if rev, err = parseRevision(text); err != nil {
			return nil, 0, fmt.Errorf("store revision: %w", err)
		}
	}
	msgs, err := rangeCmd.Result()
	if err != nil {
		return nil, 0, s.mapErr(ctx, err)
	}
	evs := make([]store.Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := parseEvent(m)
		if err != nil {
			return nil, 0, err
		}
		evs = append(evs, ev)
	}
	if rev > after && (len(evs) == 0 || evs[0].KV.Revision != after+1) {
		return nil, 0, store.ErrCompacted
	}
	return evs, rev, nil
}

// readLoop follows the change stream from the hub's position and publishes
// what it reads, until Close. It is started by the first Watch.
func (s *Store) readLoop() {
	retry := time.NewTimer(s.cfg.PollInterval)
	retry.Stop()
	// wait waits PollInterval, or returns false at Close.
	wait := func() bool {
		retry.Reset(s.cfg.PollInterval)
		select {
		case <-s.stopCtx.Done():
			return false
		case <-retry.C:
			return true
		}
	}
	failing := false
	for {
		if failing {
			// Redis was away, and may be another server now (Sentinel):
			// check that it still has what the watches received before
			// reading on from there.
			start := time.Now()
			ctx, cancel := context.WithTimeout(s.stopCtx, s.probeTimeout)
			err := s.checkRewind(ctx)
			cancel()
			if s.closed.Load() {
				return
			}
			s.health.record(start, err)
			if err != nil {
				if !wait() {
					return
				}
				continue
			}
			s.log.Info("reading change stream again", "prefix", s.cfg.Prefix)
			failing = false
		}
		pos, gen, ok := s.hub.position()
		if !ok {
			return
		}
		start := time.Now()
		res, err := s.client.XRead(s.stopCtx, &redis.XReadArgs{
			Streams: []string{s.keys[1], streamID(pos)},
			Count:   readBatch,
			Block:   s.cfg.BlockTimeout,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) { // Nil: nothing new in BlockTimeout
			if s.closed.Load() {
				return
			}
			err = s.mapErr(s.stopCtx, err)
			s.health.record(start, fmt.Errorf("read change stream: %w", err))
			s.log.Warn("read change stream; retrying", "prefix", s.cfg.Prefix, "err", err)
			failing = true
			if !wait() {
				return
			}
			continue
		}
		s.health.record(start, nil)
		var evs []store.Event
		for _, st := range res {
			for _, m := range st.Messages {
				ev, err := parseEvent(m)
				if err != nil {
					// Not written by a store: skipping it leaves a gap that
					// publish reports to the watchers concerned.
					s.log.Error("skip change stream entry", "prefix", s.cfg.Prefix, "id", m.ID, "err", err)
					continue
				}
				evs = append(evs, ev)
			}
		}
		s.hub.publish(gen, evs)
	}
}

// parseEvent decodes a change stream entry.
func parseEvent(m redis.XMessage) (store.Event, error) {
	rev, err := parseStreamID(m.ID)
	if err != nil {
		return store.Event{}, err
	}
	key, ok := m.Values["k"].(string)
	if !ok {
		return store.Event{}, fmt.Errorf("redis: change stream entry %s has no key", m.ID)
	}
	switch m.Values["t"] {
	case "p":
		v, _ := m.Values["v"].(string)
		return store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: []byte(v), Revision: rev}}, nil
	case "d":
		return store.Event{Type: store.EventDelete, KV: store.KV{Key: key, Revision: rev}}, nil
	default:
		return store.Event{}, fmt.Errorf("redis: change stream entry %s has type %v, want p or d", m.ID, m.Values["t"])
	}
}

// hub fans the events the reader reads out to the watchers. Everything it
// does under its lock is in memory and non-blocking, so the reader never
// waits for a watcher.
type hub struct {
	mu  sync.Mutex
	pos int64 // the reader has published every event up to this revision
	// last is the event at pos, if the reader published it, for
	// checkRewind to compare with what Redis holds.
	last *store.Event
	// high is the highest revision any watch has seen: pos, or a joining
	// watch's replay, which may be ahead of the reader.
	high int64
	// gen counts rewinds: a read or a replay begun before one is void.
	gen     uint64
	running bool // the reader has been started
	closed  bool
	watches *watchset.Set
	log     *slog.Logger
}

func newHub(log *slog.Logger) *hub {
	return &hub{watches: watchset.New(log), log: log}
}

// join registers w, which has seen every event up to seen, unless the
// reader has published events after seen: then it returns false, and w must
// read up to where the reader is before trying again. The first join starts
// the reader (with go start()), from seen. A watch whose replay began
// before a rewind (gen is not the hub's generation any more) is closed at
// once instead: its consumer lists again.
func (h *hub) join(ctx context.Context, w *watchset.Watch, seen int64, gen uint64, start func()) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false, store.ErrClosed
	}
	if gen != h.gen {
		w.Close()
		return true, nil
	}
	if !h.running {
		h.running, h.pos = true, seen
		go start()
	}
	if seen < h.pos {
		return false, nil
	}
	h.high = max(h.high, seen)
	h.watches.Add(ctx, w, h.remove)
	return true, nil
}

// generation returns the count of rewinds so far.
func (h *hub) generation() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

// started reports whether the reader has been started (and the hub is
// open).
func (h *hub) started() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.running && !h.closed
}

// position returns the revision the reader should read after and the
// generation to publish with, or false once the hub is closed.
func (h *hub) position() (int64, uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pos, h.gen, !h.closed
}

// hubMark is what checkRewind compares with Redis.
type hubMark struct {
	high int64        // no revision below it may be missing from Redis
	last *store.Event // the event at the reader's position, if it read it
	gen  uint64
}

// mark returns what the watches have received.
func (h *hub) mark() hubMark {
	h.mu.Lock()
	defer h.mu.Unlock()
	return hubMark{high: h.high, last: h.last, gen: h.gen}
}

// rewind closes every watch and moves the reader to revision rev, unless
// another rewind came first (gen is not the hub's generation). It reports
// whether it did.
func (h *hub) rewind(gen uint64, rev int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || gen != h.gen {
		return false
	}
	h.watches.Close()
	h.gen++
	h.pos, h.high, h.last = rev, rev, nil
	return true
}

// publish delivers events read from the stream, in revision order, unless
// a rewind happened since the read began (gen is not the hub's generation).
func (h *hub) publish(gen uint64, events []store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || gen != h.gen {
		return
	}
	for _, ev := range events {
		rev := ev.KV.Revision
		if rev <= h.pos {
			continue
		}
		if rev != h.pos+1 {
			// Trimmed before the reader got to them (Redis was away, or
			// History is small for the write rate).
			h.log.Warn("change stream lost events; closing the watches that needed them",
				"first_lost", h.pos+1, "last_lost", rev-1)
			h.watches.DropIf(func(w *watchset.Watch) bool { return w.After < rev-1 })
		}
		h.pos, h.high, h.last = rev, max(h.high, rev), &ev
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
