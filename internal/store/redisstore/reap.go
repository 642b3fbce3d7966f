package redisstore

import (
	"fmt"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// reapBatch bounds the leases one reaper script removes, so that a burst of
// expiries does not hold Redis up for long; the rest wait for the next tick.
const reapBatch = 1000

// reapLoop removes expired leases every ReapInterval until Close. Every
// instance sharing the prefix runs one; the script removes each lease once,
// whichever instance gets to it first.
func (s *Store) reapLoop() {
	t := time.NewTicker(s.cfg.ReapInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-s.stopCtx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		n, err := s.reap()
		if err != nil {
			if s.closed.Load() {
				return
			}
			err = fmt.Errorf("reap expired leases: %w", err)
		}
		s.health.record(start, err)
		switch {
		case err != nil && !failing:
			s.log.Warn("reaper failing", "prefix", s.cfg.Prefix, "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("reaping expired leases again", "prefix", s.cfg.Prefix)
			failing = false
		}
		if n == reapBatch {
			// More are due: go on without waiting for the next tick.
			t.Reset(time.Millisecond)
		} else {
			t.Reset(s.cfg.ReapInterval)
		}
	}
}

// reap runs the reaper script once and returns how many leases it removed.
func (s *Store) reap() (int64, error) {
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	n, err := s.run(s.stopCtx, reapScript, reapBatch).Int64()
	if err != nil {
		return 0, s.mapErr(s.stopCtx, err)
	}
	return n, nil
}
