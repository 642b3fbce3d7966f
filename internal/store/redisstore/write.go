package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// Put writes value under key; see store.Store. A positive opts.TTL makes the
// key a lease that expires TTL (rounded up to a millisecond) after this
// write; otherwise the key is permanent, even if it was a lease before.
//
// A permanent write waits for Config.WaitReplicas replicas; if they do not
// confirm it, Put returns the write's revision with an error wrapping
// store.ErrNotReplicated.
func (s *Store) Put(ctx context.Context, key string, value []byte, opts store.PutOptions) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := opts.Check(key); err != nil {
		return 0, err
	}
	args := []any{key, value, opts.IfRevision, ttlMillis(opts.TTL)}
	var (
		reply        any
		acks         int64 = -1
		waitErr, err error
	)
	if opts.TTL > 0 {
		reply, err = s.run(ctx, putScript, args...).Result()
	} else {
		reply, acks, waitErr, err = s.runDurable(ctx, putScript, args...)
	}
	if err != nil {
		return 0, fmt.Errorf("put %q: %w", key, s.mapErr(ctx, err))
	}
	rev, ok := reply.(int64)
	switch {
	case !ok:
		return 0, fmt.Errorf("put %q: redis: script returned %T, want an integer", key, reply)
	case rev == -1:
		return 0, fmt.Errorf("put %q: %w", key, store.ErrConflict)
	}
	if err := s.replicated(ctx, acks, waitErr); err != nil {
		return rev, fmt.Errorf("put %q at revision %d: %w", key, rev, err)
	}
	return rev, nil
}

// Delete removes key; see store.Store. It waits for Config.WaitReplicas
// replicas, as a permanent Put does.
func (s *Store) Delete(ctx context.Context, key string, ifRevision int64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	reply, acks, waitErr, err := s.runDurable(ctx, deleteScript, key, ifRevision)
	if err != nil {
		return fmt.Errorf("delete %q: %w", key, s.mapErr(ctx, err))
	}
	rev, ok := reply.(int64)
	switch {
	case !ok:
		return fmt.Errorf("delete %q: redis: script returned %T, want an integer", key, reply)
	case rev == 0:
		return fmt.Errorf("delete %q: %w", key, store.ErrNotFound)
	case rev == -1:
		return fmt.Errorf("delete %q: %w", key, store.ErrConflict)
	}
	if err := s.replicated(ctx, acks, waitErr); err != nil {
		return fmt.Errorf("delete %q at revision %d: %w", key, rev, err)
	}
	return nil
}

// Incr adds delta to the decimal counter at key; see store.Store. It fails,
// changing nothing, if the key holds something other than a decimal int64
// (as Redis parses one: no sign but "-", no leading zeros or spaces) or if
// the sum would overflow.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if key == "" {
		return 0, errors.New("incr: key is empty")
	}
	res, err := s.run(ctx, incrScript, key, delta, ttlMillis(ttl)).Slice()
	if err != nil {
		// Redis's message ("hash value is not an integer", "increment or
		// decrement would overflow") does not quote the value, which could
		// be anything, a secret included.
		return 0, fmt.Errorf("incr %q: %w", key, s.mapErr(ctx, err))
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("incr %q: redis: script returned %d values, want 2", key, len(res))
	}
	text, ok := res[1].(string)
	if !ok {
		return 0, fmt.Errorf("incr %q: redis: value is %T, want a string", key, res[1])
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("incr %q: redis: counter: %w", key, err)
	}
	return n, nil
}

// ttlMillis converts a TTL to whole milliseconds, rounding up so that a
// positive TTL never becomes "no expiry".
func ttlMillis(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}
