package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

var _ store.HealthReporter = (*Store)(nil)

// defaultProbeTimeout bounds a background check when the client's
// ReadTimeout is unknown (a client that is not a *redis.Client).
const defaultProbeTimeout = 3 * time.Second

// Health returns nil while Redis answers the store's background work (the
// health check every Config.PingInterval, the reaper and the change stream
// reader), and otherwise the last failure. A Redis that stops answering
// shows within about PingInterval plus the client's ReadTimeout. After
// Close it returns store.ErrClosed. It does no I/O and is safe for
// concurrent use.
func (s *Store) Health() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return s.health.get()
}

// health is the outcome of the latest Redis call of the background
// goroutines. Each records when its call started, so that a call that hung
// for ReadTimeout on a server that was since replaced (Sentinel) does not
// override a later call's success.
type health struct {
	mu    sync.Mutex
	start time.Time // when the call recorded last started
	err   error
}

func (h *health) record(start time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if start.Before(h.start) {
		return
	}
	h.start, h.err = start, err
}

func (h *health) get() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// pingLoop checks Redis every PingInterval until Close: a PING while no
// watch runs, and otherwise checkRewind, which reads as little.
func (s *Store) pingLoop() {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCtx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(s.stopCtx, s.probeTimeout)
		var err error
		if s.hub.started() {
			err = s.checkRewind(ctx)
		} else if err = s.client.Ping(ctx).Err(); err != nil {
			err = fmt.Errorf("ping: %w", s.mapErr(ctx, err))
		}
		cancel()
		if s.closed.Load() {
			return
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("redis did not answer within %v: %w", s.probeTimeout, err)
		}
		s.health.record(start, err)
	}
}

// checkRewind compares what the change stream reader has published with
// what Redis holds now. Sentinel may have failed over to a replica that
// lacked the last writes: the new primary's revision is then below what the
// watches received, or, once new writes have reused those revisions, its
// history differs there. The reader would skip the reused revisions (it
// reads after the last one it published), and the watches would miss
// those writes without a sign. So checkRewind closes every watch (their
// consumers List again) and moves the reader to the current revision.
//
// It cannot see a rewind that new writes have carried past the reader's
// position before either check ran: the reader runs it before reading
// again after Redis failed, which a Sentinel failover causes (go-redis
// closes its connections to the old primary), and pingLoop every
// PingInterval.
func (s *Store) checkRewind(ctx context.Context) error {
	mark := s.hub.mark()
	var (
		revCmd *redis.StringCmd
		atCmd  *redis.XMessageSliceCmd
	)
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		revCmd = p.Get(ctx, s.keys[0])
		if mark.last != nil {
			atCmd = p.XRangeN(ctx, s.keys[1], streamID(mark.last.KV.Revision), streamID(mark.last.KV.Revision), 1)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) { // Nil: no revision yet
		return fmt.Errorf("check store revision: %w", s.mapErr(ctx, err))
	}
	var rev int64
	if text, err := revCmd.Result(); err == nil {
		if rev, err = parseRevision(text); err != nil {
			return fmt.Errorf("check store revision: %w", err)
		}
	}
	switch {
	case rev < mark.high:
		if s.hub.rewind(mark.gen, rev) {
			s.log.Warn(fmt.Sprintf("store revision went back from %d to %d: the Redis primary changed and lost writes; watches restart", mark.high, rev),
				"prefix", s.cfg.Prefix, "from", mark.high, "to", rev)
		}
	case mark.last != nil:
		msgs, err := atCmd.Result()
		if err != nil {
			return fmt.Errorf("check change stream: %w", s.mapErr(ctx, err))
		}
		if len(msgs) == 0 {
			// Trimmed: the reader is behind by more than History, which
			// it reports itself.
			return nil
		}
		ev, err := parseEvent(msgs[0])
		if err == nil && sameEvent(ev, *mark.last) {
			return nil
		}
		if s.hub.rewind(mark.gen, rev) {
			s.log.Warn(fmt.Sprintf("store history differs at revision %d from what watches received: the Redis primary changed and lost writes; watches restart", mark.last.KV.Revision),
				"prefix", s.cfg.Prefix, "revision", mark.last.KV.Revision, "to", rev)
		}
	}
	return nil
}

// sameEvent reports whether two events are the same change.
func sameEvent(a, b store.Event) bool {
	return a.Type == b.Type && a.KV.Key == b.KV.Key && a.KV.Revision == b.KV.Revision && string(a.KV.Value) == string(b.KV.Value)
}
