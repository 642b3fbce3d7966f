package boltstore

import (
	"bytes"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// sweepBatch bounds the keys one sweep transaction removes, so that a burst
// of expiries does not hold up other writers for long; the rest wait for the
// next tick.
const sweepBatch = 1000

// sweepLoop removes expired leases every interval until Close.
func (s *Store) sweepLoop(interval time.Duration) {
	defer close(s.sweepDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
			if err := s.sweep(); err != nil && !errors.Is(err, store.ErrClosed) {
				s.log.Warn("sweep expired keys", "err", err)
			}
		}
	}
}

// sweep deletes keys whose lease has expired, each with a delete event.
func (s *Store) sweep() error {
	// A cheap read first: most ticks find nothing due, and an empty write
	// transaction would still cost an fsync.
	now := s.now().UnixNano()
	var due bool
	err := s.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketLeases).Cursor().First()
		if k != nil {
			expiry, _ := splitLeaseKey(k)
			due = expiry <= now
		}
		return nil
	})
	if err != nil || !due {
		return mapErr(err)
	}
	return s.update(func(w *writeTx) error {
		var keys [][]byte
		c := w.leases.Cursor()
		for k, _ := c.First(); k != nil && len(keys) < sweepBatch; k, _ = c.Next() {
			if expiry, _ := splitLeaseKey(k); expiry > w.now {
				break
			}
			keys = append(keys, bytes.Clone(k)) // k is bbolt's until the deletes below
		}
		for _, lk := range keys {
			expiry, key := splitLeaseKey(lk)
			rec, ok, err := w.get(key)
			if err != nil {
				return err
			}
			if !ok || rec.expiry != expiry {
				// An index entry without its lease; writes keep the two in
				// step, so this is only tidying up.
				if err := w.leases.Delete(lk); err != nil {
					return err
				}
				continue
			}
			if err := w.remove(key, rec); err != nil {
				return err
			}
		}
		return nil
	})
}
