package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// Defaults applied by NewQuotas for zero fields of QuotaConfig.
const (
	DefaultFlushInterval   = time.Second
	DefaultShutdownTimeout = 5 * time.Second
	DefaultLoadRetry       = time.Second
)

// quotaTTLSlack is how long a window's stored count outlives the window, so
// that a late flush or a skewed clock still finds it.
const quotaTTLSlack = 24 * time.Hour

// QuotaConfig holds the tunables of a Quotas. The zero value is valid: the
// Default* intervals and time.Now.
type QuotaConfig struct {
	// FlushInterval is how often Run writes the counted usage to the store.
	// It bounds what a crash can lose. Zero means DefaultFlushInterval.
	FlushInterval time.Duration
	// ShutdownTimeout bounds the last flush Run makes when its context ends.
	// Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// LoadRetry is how long, after the store failed to load a key's count,
	// Use returns that error again without asking the store, so that an
	// outage does not add a store read to every request. Zero means
	// DefaultLoadRetry.
	LoadRetry time.Duration
	// Now is the clock Flush uses to set the stored counts' expiry and to
	// forget ended windows. Nil means time.Now. Use takes its own now.
	Now func() time.Time
}

// Validate reports every invalid field of c.
func (c QuotaConfig) Validate() error {
	var errs []error
	if c.FlushInterval < 0 {
		errs = append(errs, fmt.Errorf("quotas: flush_interval %v is negative; use 0 for the default %v", c.FlushInterval, DefaultFlushInterval))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("quotas: shutdown_timeout %v is negative; use 0 for the default %v", c.ShutdownTimeout, DefaultShutdownTimeout))
	}
	if c.LoadRetry < 0 {
		errs = append(errs, fmt.Errorf("quotas: load_retry %v is negative; use 0 for the default %v", c.LoadRetry, DefaultLoadRetry))
	}
	return errors.Join(errs...)
}

// Quotas counts requests against Quota limits, exactly in memory and
// persisted in a store.Store. It is safe for concurrent use.
//
// Each key has one counter per window (for example the day 2025-03-14 UTC).
// On the first Use of a key in a window, the counter is loaded from the
// store key "quota/<key>/<window start as yyyymmdd>" (a month's window
// starts on its 1st). Later Uses are a map lookup under a shard read lock
// and a CAS on the counter: no allocation, no I/O. Flush (run every
// FlushInterval by Run) adds each counter's unflushed usage to the store
// with Incr, with an expiry one day after the window ends.
//
// A key names one quota: a day and a month quota of the same consumer need
// different keys (for example "key:<id>:day" and "key:<id>:month"), or on
// the 1st of a month they would count into the same store key.
//
// Restart guarantee: usage counted in memory but not yet flushed is lost on
// a crash, so at most one FlushInterval of usage (about 1 s by default) is
// forgotten; a clean shutdown (Run's context ending) flushes it and loses
// nothing. Usage counted after Run's final flush is flushed only by another
// Flush call, so stop Run after the request path has drained.
//
// Several instances may share the store: each adds its own usage, and each
// flush returns the stored total, from which an instance learns the others'
// usage. Across instances a quota can thus be exceeded by what the other
// instances counted within one FlushInterval.
type Quotas struct {
	store    store.Store
	cfg      QuotaConfig
	log      *slog.Logger
	counters table[quotaKey, counter]

	// flushMu serializes Flush; it is never taken on the request path.
	flushMu sync.Mutex
	batch   []*counter // reused by Flush, guarded by flushMu
}

// quotaKey identifies one key's counter in one window.
type quotaKey struct {
	key   string
	start int64 // window start, Unix seconds
}

// counter is one key's usage in one window.
type counter struct {
	// used is the usage this instance knows of: the stored count at load,
	// plus what was counted here, plus what flushes learned of others.
	used atomic.Int64
	// pending is what was counted here and not yet flushed.
	pending atomic.Int64
	// ready is set once the stored count is loaded into used.
	ready atomic.Bool

	storeKey string
	end      time.Time // window end, exclusive

	// loading is a one-slot semaphore held by the goroutine loading the
	// stored count; other Uses of the key wait on it (or on their ctx).
	loading chan struct{}
	// loadErr and retryAt remember a failed load; guarded by loading.
	loadErr error
	retryAt time.Time
	// synced is the stored count as of the last load or flush. Written by
	// the loader before ready is set, then only by Flush under flushMu.
	synced int64
}

// NewQuotas returns a Quotas persisting into s. log receives flush failures;
// nil discards them. It fails if cfg is invalid.
func NewQuotas(s store.Store, cfg QuotaConfig, log *slog.Logger) (*Quotas, error) {
	if s == nil {
		return nil, errors.New("quotas: store is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.LoadRetry == 0 {
		cfg.LoadRetry = DefaultLoadRetry
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &Quotas{store: s, cfg: cfg, log: log}
	q.counters.init()
	return q, nil
}

// Use counts one request for key against quota at now, in the calendar
// window of quota.Period that holds now (UTC). A denied request is not
// counted.
//
// The first Use of a key in a window reads the store (with ctx); concurrent
// Uses of that key wait for the read. An error means the quota is invalid or
// that read failed; the caller then falls back (typically allows the
// request and logs), and for LoadRetry further Uses of the key return the
// same error without reading. Afterwards Use does no I/O and no allocation.
func (q *Quotas) Use(ctx context.Context, key string, quota Quota, now time.Time) (QuotaDecision, error) {
	if !quota.valid() {
		return QuotaDecision{}, fmt.Errorf("use quota %q: %w", key, quota.Validate())
	}
	start, end := quota.Period.window(now)
	k := quotaKey{key: key, start: start.Unix()}
	sh := q.counters.shard(key)
	for {
		sh.mu.RLock()
		c := sh.m[k]
		if c != nil && c.ready.Load() {
			// The read lock is held across the CAS so that Flush, which
			// forgets counters under the write lock, cannot drop this one
			// between our count and our pending increment.
			d := c.use(quota.Requests, end.Sub(now))
			sh.mu.RUnlock()
			return d, nil
		}
		sh.mu.RUnlock()
		if c == nil {
			sh.mu.Lock()
			if c = sh.m[k]; c == nil {
				c = &counter{
					storeKey: "quota/" + key + "/" + start.Format("20060102"),
					end:      end,
					loading:  make(chan struct{}, 1),
				}
				sh.m[k] = c
			}
			sh.mu.Unlock()
		}
		if err := q.load(ctx, c, now); err != nil {
			return QuotaDecision{}, err
		}
		// Loaded: look it up again, for the read lock's protection.
	}
}

// use counts one request if the quota allows it.
func (c *counter) use(limit int64, reset time.Duration) QuotaDecision {
	for {
		u := c.used.Load()
		if u >= limit {
			return QuotaDecision{Limit: limit, Used: u, Reset: reset}
		}
		if c.used.CompareAndSwap(u, u+1) {
			c.pending.Add(1)
			return QuotaDecision{Allowed: true, Limit: limit, Used: u + 1, Remaining: limit - u - 1, Reset: reset}
		}
	}
}

// load reads c's stored count into c, once.
func (q *Quotas) load(ctx context.Context, c *counter, now time.Time) error {
	select {
	case c.loading <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("load quota %s: %w", c.storeKey, ctx.Err())
	}
	defer func() { <-c.loading }()
	if c.ready.Load() {
		return nil
	}
	if c.loadErr != nil && now.Before(c.retryAt) {
		return c.loadErr
	}
	n, err := q.stored(ctx, c.storeKey)
	if err != nil {
		c.loadErr, c.retryAt = err, now.Add(q.cfg.LoadRetry)
		return err
	}
	c.synced = n
	c.used.Store(n)
	c.loadErr = nil
	c.ready.Store(true)
	return nil
}

// stored reads the count at key; a missing key counts 0.
func (q *Quotas) stored(ctx context.Context, key string) (int64, error) {
	kv, err := q.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load quota %s: %w", key, err)
	}
	n, err := strconv.ParseInt(string(kv.Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("load quota %s: stored value is not a count: %w", key, err)
	}
	return n, nil
}

// Flush adds every counter's unflushed usage to the store, then forgets the
// counters of windows that ended before Config.Now() and have nothing left
// to flush. A failed write keeps its usage for the next Flush. It returns
// every write error joined. Flush calls are serialized; none of the store
// I/O happens under a lock the request path takes.
func (q *Quotas) Flush(ctx context.Context) error {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	now := q.cfg.Now()

	batch := q.batch[:0]
	for i := range q.counters.shards {
		sh := &q.counters.shards[i]
		sh.mu.RLock()
		for _, c := range sh.m {
			if c.ready.Load() && c.pending.Load() != 0 {
				batch = append(batch, c)
			}
		}
		sh.mu.RUnlock()
	}
	var errs []error
	for _, c := range batch {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("flush quotas: %w", err))
			break
		}
		delta := c.pending.Swap(0)
		if delta == 0 {
			continue
		}
		ttl := max(c.end.Sub(now), 0) + quotaTTLSlack
		total, err := q.store.Incr(ctx, c.storeKey, delta, ttl)
		if err != nil {
			c.pending.Add(delta)
			errs = append(errs, fmt.Errorf("flush quota %s: %w", c.storeKey, err))
			continue
		}
		// What the store gained beyond our own usage was counted by other
		// instances since our last load or flush.
		if others := total - c.synced - delta; others > 0 {
			c.used.Add(others)
		}
		c.synced = total
	}
	clear(batch)
	q.batch = batch[:0]

	for i := range q.counters.shards {
		sh := &q.counters.shards[i]
		sh.mu.Lock()
		for k, c := range sh.m {
			if !c.end.After(now) && c.pending.Load() == 0 {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Len returns the number of counters held (keys × windows), for metrics.
func (q *Quotas) Len() int {
	return q.counters.len()
}

// Run calls Flush every FlushInterval, logging failures, until ctx ends;
// then it flushes once more with a fresh context bounded by ShutdownTimeout
// and returns that flush's error (nil on success).
func (q *Quotas) Run(ctx context.Context) error {
	t := time.NewTicker(q.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.ShutdownTimeout)
			defer cancel()
			if err := q.Flush(fctx); err != nil {
				return fmt.Errorf("final quota flush: %w", err)
			}
			return nil
		case <-t.C:
			if err := q.Flush(ctx); err != nil {
				q.log.Warn("flush quotas", "err", err)
			}
		}
	}
}
