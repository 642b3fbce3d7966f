// Package boltstore is the embedded store.Store backend: a single bbolt file
// in the data directory, with leases swept by a background goroutine and
// watches served from an in-memory history of recent changes. It is what a
// single Gatehouse instance uses when no shared backend is configured.
package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

var _ store.Store = (*Store)(nil)

// Bucket names and the meta key holding the store revision.
var (
	bucketKV     = []byte("kv")
	bucketLeases = []byte("leases")
	bucketMeta   = []byte("meta")
	metaRevision = []byte("revision")
)

// lockTimeout bounds how long Open waits for the file lock, so that a second
// process pointed at the same data directory fails instead of hanging.
const lockTimeout = 2 * time.Second

// Options tunes a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock used for lease expiry. Zero means time.Now.
	Now func() time.Time
	// SweepInterval is how often expired leases are removed (with their
	// delete events). Expired keys are invisible to reads at once; the sweep
	// only decides when watchers hear of it. Zero means 1s.
	SweepInterval time.Duration
	// History is how many recent events are kept in memory for Watch to
	// replay. Watching from a revision older than that returns
	// store.ErrCompacted. Zero means 10000.
	History int
	// WatchBuffer is the capacity of each watch channel beyond its replay. A
	// watcher whose channel is full when an event arrives has its channel
	// closed (after the events already buffered) rather than slowing writers;
	// it must List and watch again. Zero means 1024.
	WatchBuffer int
	// Logger receives sweep failures and closed slow watchers. Nil discards.
	Logger *slog.Logger
}

// Validate reports a negative tunable.
func (o Options) Validate() error {
	var errs []error
	if o.SweepInterval < 0 {
		errs = append(errs, fmt.Errorf("boltstore: SweepInterval %v is negative; use 0 for the default of 1s", o.SweepInterval))
	}
	if o.History < 0 {
		errs = append(errs, fmt.Errorf("boltstore: History %d is negative; use 0 for the default of 10000", o.History))
	}
	if o.WatchBuffer < 0 {
		errs = append(errs, fmt.Errorf("boltstore: WatchBuffer %d is negative; use 0 for the default of 1024", o.WatchBuffer))
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = time.Second
	}
	if o.History == 0 {
		o.History = 10000
	}
	if o.WatchBuffer == 0 {
		o.WatchBuffer = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Store is a store.Store kept in one bbolt file. It is safe for concurrent
// use. Reads run in parallel bbolt read transactions; writes are serialized
// (bbolt allows one writer) and each costs one fsync.
type Store struct {
	db  *bolt.DB
	now func() time.Time
	log *slog.Logger
	hub *hub

	// wmu is held from the start of a write transaction until its events
	// are published, so that watchers receive events in revision order.
	// Readers never take it.
	wmu sync.Mutex

	closed    atomic.Bool
	closeOnce sync.Once
	stopSweep chan struct{}
	sweepDone chan struct{}
}

// Open opens (or creates) the store file at path, creating its parent
// directory if needed, and starts the lease sweeper. Close releases both.
func Open(path string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: file is locked; is another gatehouse using this data directory? %w", path, err)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var rev int64
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketKV, bucketLeases, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		var err error
		rev, err = decodeRevision(tx.Bucket(bucketMeta).Get(metaRevision))
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{
		db:        db,
		now:       opts.Now,
		log:       opts.Logger,
		hub:       newHub(rev, opts.History, opts.WatchBuffer, opts.Logger),
		stopSweep: make(chan struct{}),
		sweepDone: make(chan struct{}),
	}
	go s.sweepLoop(opts.SweepInterval)
	return s, nil
}

// Get returns the key's current value, or store.ErrNotFound if it is missing
// or its lease has expired.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if err := s.check(ctx); err != nil {
		return store.KV{}, err
	}
	now := s.now().UnixNano()
	var kv store.KV
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV).Get([]byte(key))
		if b == nil {
			return store.ErrNotFound
		}
		rec, err := decodeRecord(b)
		if err != nil {
			return err
		}
		if rec.expired(now) {
			return store.ErrNotFound
		}
		kv = store.KV{Key: key, Value: bytes.Clone(rec.value), Revision: rec.rev}
		return nil
	})
	if err != nil {
		return store.KV{}, fmt.Errorf("get %q: %w", key, mapErr(err))
	}
	return kv, nil
}

// List returns the live keys under prefix, sorted, and the store revision of
// the same read transaction.
func (s *Store) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	if err := s.check(ctx); err != nil {
		return nil, 0, err
	}
	now := s.now().UnixNano()
	var (
		kvs []store.KV
		rev int64
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if rev, err = decodeRevision(tx.Bucket(bucketMeta).Get(metaRevision)); err != nil {
			return err
		}
		c := tx.Bucket(bucketKV).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			rec, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			if rec.expired(now) {
				continue
			}
			kvs = append(kvs, store.KV{Key: string(k), Value: bytes.Clone(rec.value), Revision: rec.rev})
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list %q: %w", prefix, mapErr(err))
	}
	return kvs, rev, nil
}

// Watch streams changes under prefix after fromRevision; see store.Store.
// Events are shared between watchers: do not modify their values. A watcher
// that lets its channel fill up (Options.WatchBuffer) has it closed.
// Watching from before the kept history, including from before the store
// was last opened, returns store.ErrCompacted.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan store.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	ch, err := s.hub.watch(ctx, prefix, fromRevision)
	if err != nil {
		return nil, fmt.Errorf("watch %q from %d: %w", prefix, fromRevision, err)
	}
	return ch, nil
}

// Close stops the sweeper, ends every watch and closes the file. It is
// idempotent; afterwards every method returns store.ErrClosed.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stopSweep)
		<-s.sweepDone
		s.wmu.Lock()
		defer s.wmu.Unlock()
		s.hub.close()
		if cerr := s.db.Close(); cerr != nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
	})
	return err
}

// check returns store.ErrClosed or the context's error, if any.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// mapErr turns bbolt's "closed database" into the store's sentinel.
func mapErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}
