package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// Put writes value under key; see store.Store. A positive opts.TTL makes the
// key a lease that expires TTL after this write; otherwise the key is
// permanent, even if it was a lease before.
func (s *Store) Put(ctx context.Context, key string, value []byte, opts store.PutOptions) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := opts.Check(key); err != nil {
		return 0, err
	}
	value = bytes.Clone(value) // the caller may reuse its buffer; events keep ours
	var rev int64
	err := s.update(func(w *writeTx) error {
		old, exists, err := w.live(key)
		if err != nil {
			return err
		}
		if opts.IfRevision == store.Absent && exists ||
			opts.IfRevision > 0 && (!exists || old.rev != opts.IfRevision) {
			return store.ErrConflict
		}
		rev, err = w.put(key, value, w.expiry(opts.TTL, 0), old)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("put %q: %w", key, err)
	}
	return rev, nil
}

// Delete removes key; see store.Store.
func (s *Store) Delete(ctx context.Context, key string, ifRevision int64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	err := s.update(func(w *writeTx) error {
		old, exists, err := w.live(key)
		if err != nil {
			return err
		}
		if !exists {
			return store.ErrNotFound
		}
		if ifRevision > 0 && old.rev != ifRevision {
			return store.ErrConflict
		}
		return w.remove(key, old)
	})
	if err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	return nil
}

// Incr adds delta to the decimal counter at key; see store.Store. It fails,
// changing nothing, if the key holds something other than a decimal int64
// or if the sum would overflow.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if key == "" {
		return 0, errors.New("incr: key is empty")
	}
	var sum int64
	err := s.update(func(w *writeTx) error {
		old, exists, err := w.live(key)
		if err != nil {
			return err
		}
		var cur int64
		if exists {
			// The value is not quoted in the error: it is not known to be a
			// counter and could be anything, a secret included.
			if cur, err = strconv.ParseInt(string(old.value), 10, 64); err != nil {
				return errors.New("value is not a decimal integer")
			}
		}
		sum = cur + delta
		if delta > 0 && sum < cur || delta < 0 && sum > cur {
			return fmt.Errorf("%d%+d overflows int64", cur, delta)
		}
		_, err = w.put(key, strconv.AppendInt(nil, sum, 10), w.expiry(ttl, old.expiry), old)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("incr %q: %w", key, err)
	}
	return sum, nil
}

// update runs fn in a bbolt read-write transaction and, once it has
// committed, publishes the events fn produced. An error from fn rolls back
// everything, events included.
func (s *Store) update(fn func(w *writeTx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	w := &writeTx{now: s.now().UnixNano()}
	err := s.db.Update(func(tx *bolt.Tx) error {
		w.kv = tx.Bucket(bucketKV)
		w.leases = tx.Bucket(bucketLeases)
		w.meta = tx.Bucket(bucketMeta)
		var err error
		if w.rev, err = decodeRevision(w.meta.Get(metaRevision)); err != nil {
			return err
		}
		if err := fn(w); err != nil {
			return err
		}
		if len(w.events) == 0 {
			return nil
		}
		return w.meta.Put(metaRevision, encodeRevision(w.rev))
	})
	if err != nil {
		return mapErr(err)
	}
	s.hub.publish(w.events)
	return nil
}

// writeTx is the state of one write transaction: every change takes the
// next revision and records its event.
type writeTx struct {
	kv, leases, meta *bolt.Bucket
	now              int64 // Unix nanoseconds, fixed for the transaction
	rev              int64 // last revision used
	events           []store.Event
}

// get returns key's stored record, expired or not.
func (w *writeTx) get(key string) (record, bool, error) {
	b := w.kv.Get([]byte(key))
	if b == nil {
		return record{}, false, nil
	}
	rec, err := decodeRecord(b)
	if err != nil {
		return record{}, false, fmt.Errorf("key %q: %w", key, err)
	}
	return rec, true, nil
}

// live returns key's record if it exists and has not expired. An expired
// record is removed here, with its delete event, so that watchers see the
// lease end before whatever this transaction writes next.
func (w *writeTx) live(key string) (record, bool, error) {
	rec, ok, err := w.get(key)
	if err != nil || !ok {
		return record{}, false, err
	}
	if rec.expired(w.now) {
		return record{}, false, w.remove(key, rec)
	}
	return rec, true, nil
}

// expiry is the expiry for a write with ttl: now+ttl if ttl is positive,
// otherwise keep.
func (w *writeTx) expiry(ttl time.Duration, keep int64) int64 {
	if ttl > 0 {
		return w.now + int64(ttl)
	}
	return keep
}

// put stores value under key, replacing old (the zero record if none).
func (w *writeTx) put(key string, value []byte, expiry int64, old record) (int64, error) {
	if old.expiry != 0 && old.expiry != expiry {
		if err := w.leases.Delete(leaseKey(old.expiry, key)); err != nil {
			return 0, err
		}
	}
	w.rev++
	if err := w.kv.Put([]byte(key), encodeRecord(record{rev: w.rev, expiry: expiry, value: value})); err != nil {
		return 0, err
	}
	if expiry != 0 {
		if err := w.leases.Put(leaseKey(expiry, key), nil); err != nil {
			return 0, err
		}
	}
	w.events = append(w.events, store.Event{
		Type: store.EventPut,
		KV:   store.KV{Key: key, Value: value, Revision: w.rev},
	})
	return w.rev, nil
}

// remove deletes key, whose current record is old.
func (w *writeTx) remove(key string, old record) error {
	if old.expiry != 0 {
		if err := w.leases.Delete(leaseKey(old.expiry, key)); err != nil {
			return err
		}
	}
	if err := w.kv.Delete([]byte(key)); err != nil {
		return err
	}
	w.rev++
	w.events = append(w.events, store.Event{
		Type: store.EventDelete,
		KV:   store.KV{Key: key, Revision: w.rev},
	})
	return nil
}
