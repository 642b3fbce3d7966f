package breaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// minBackoff is the first wait after a failed store call; waits double up
// to SyncConfig.MaxBackoff.
const minBackoff = 100 * time.Millisecond

// SyncConfig tunes a Syncer. Node is required; every other zero field takes
// the default in its comment.
type SyncConfig struct {
	// Node identifies this instance in the records it writes, so that it
	// ignores its own and applies those of others. Required; it must be
	// unique among the instances sharing the store.
	Node string
	// FlushInterval is how often local failure counts are added to the
	// store counters. Zero means 1s.
	FlushInterval time.Duration
	// TTLMargin is how long a record outlives the ejection it describes (and
	// how long a restore record lives), so that stale ejections vanish.
	// Zero means 30s.
	TTLMargin time.Duration
	// MaxBackoff caps the wait between retries while the store fails. Zero
	// means 5s.
	MaxBackoff time.Duration
	// Now is the clock for records and their expiry. Nil means time.Now.
	Now func() time.Time
}

// Validate reports a missing Node and negative durations.
func (c SyncConfig) Validate() error {
	var errs []error
	if c.Node == "" {
		errs = append(errs, errors.New("breaker: SyncConfig.Node is empty; set it to this instance's unique node ID"))
	}
	if c.FlushInterval < 0 {
		errs = append(errs, fmt.Errorf("breaker: FlushInterval %v is negative; use 0 for the default of 1s", c.FlushInterval))
	}
	if c.TTLMargin < 0 {
		errs = append(errs, fmt.Errorf("breaker: TTLMargin %v is negative; use 0 for the default of 30s", c.TTLMargin))
	}
	if c.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("breaker: MaxBackoff %v is negative; use 0 for the default of 5s", c.MaxBackoff))
	}
	return errors.Join(errs...)
}

func (c SyncConfig) withDefaults() SyncConfig {
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	if c.TTLMargin == 0 {
		c.TTLMargin = 30 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Syncer shares breaker state between instances through the store. It
// writes this instance's transitions (queued by the request path, never
// blocking it) under RecordPrefix, adds failure counts to counters under
// FailuresPrefix in batches, and applies the records of other instances to
// the local breakers. A store outage only delays this: local breaking goes
// on, and the Syncer retries with bounded back-off.
//
// Create a Syncer with NewSyncer; the zero value is not usable. One Syncer
// serves one Breakers, and Run is called once. Flush may be called
// concurrently with Run.
type Syncer struct {
	st  store.Store
	b   *Breakers
	cfg SyncConfig
	log *slog.Logger

	failing bool // last flush failed; used by the publish goroutine only
}

// NewSyncer returns a Syncer between st and b. A nil log discards.
func NewSyncer(st store.Store, b *Breakers, cfg SyncConfig, log *slog.Logger) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Syncer{st: st, b: b, cfg: cfg.withDefaults(), log: log.With("node", cfg.Node)}, nil
}

// Run publishes and follows breaker records until ctx ends, then returns
// nil. Store errors are logged and retried; they never end Run.
func (s *Syncer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.publish(ctx) })
	wg.Go(func() { s.follow(ctx) })
	wg.Wait()
	return nil
}

// Flush adds the failures counted since the last flush to each replica's
// store counter (FailuresPrefix + replica ID, expiring one breaker window
// after the last addition). Counts that could not be written are kept for
// the next flush; the first store error ends the round and is returned.
func (s *Syncer) Flush(ctx context.Context) error {
	var err error
	s.b.each(func(br *Breaker) bool {
		n := br.unflushed.Swap(0)
		if n == 0 {
			return true
		}
		ttl := br.group.cfg.Load().window
		if _, ierr := s.st.Incr(ctx, FailuresPrefix+br.id, n, ttl); ierr != nil {
			br.unflushed.Add(n)
			err = fmt.Errorf("add %d failures of replica %s: %w", n, br.id, ierr)
			return false
		}
		return true
	})
	return err
}

// publish writes queued transitions and flushes failure counts. Only the
// latest record per replica waits while the store fails.
func (s *Syncer) publish(ctx context.Context) {
	flush := time.NewTicker(s.cfg.FlushInterval)
	defer flush.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var retryC <-chan time.Time
	var backoff time.Duration
	dirty := make(map[string]Record)
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			s.flushLogged(ctx)
			continue
		case r := <-s.b.q.ch:
			dirty[r.ReplicaID] = r
			s.drain(dirty)
			if retryC != nil {
				continue // wait for the back-off; dirty keeps the latest
			}
		case <-retryC:
			retryC = nil
		}
		if err := s.write(ctx, dirty); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, minBackoff), s.cfg.MaxBackoff)
			s.log.Warn("write breaker records; will retry", "error", err, "pending", len(dirty), "retry_in", backoff)
			retry.Reset(backoff)
			retryC = retry.C
			continue
		}
		backoff = 0
	}
}

// drain moves every queued record into dirty without waiting.
func (s *Syncer) drain(dirty map[string]Record) {
	for {
		select {
		case r := <-s.b.q.ch:
			dirty[r.ReplicaID] = r
		default:
			return
		}
	}
}

// write stores the dirty records, removing each one written.
func (s *Syncer) write(ctx context.Context, dirty map[string]Record) error {
	now := s.cfg.Now()
	for id, r := range dirty {
		r.Node = s.cfg.Node
		val, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode breaker record of replica %s: %w", id, err)
		}
		ttl := s.cfg.TTLMargin
		if r.State == StateEjected {
			switch u := r.until(); {
			case u == indefinite:
				ttl = 0 // lasts until an operator restores it
			case u > now.UnixNano():
				ttl += time.Duration(u - now.UnixNano())
			}
		}
		if _, err := s.st.Put(ctx, RecordPrefix+id, val, store.PutOptions{TTL: ttl}); err != nil {
			return fmt.Errorf("write breaker record of replica %s: %w", id, err)
		}
		delete(dirty, id)
	}
	return nil
}

// flushLogged flushes and logs the first failure and the recovery, not
// every failed round.
func (s *Syncer) flushLogged(ctx context.Context) {
	err := s.Flush(ctx)
	if ctx.Err() != nil {
		return
	}
	switch {
	case err != nil && !s.failing:
		s.log.Warn("flush breaker failure counters; will retry", "error", err)
	case err == nil && s.failing:
		s.log.Info("breaker failure counters flushed again")
	}
	s.failing = err != nil
}

// follow applies other instances' records: List, then Watch from the
// listed revision; List again whenever the watch ends or is compacted.
func (s *Syncer) follow(ctx context.Context) {
	var backoff time.Duration
	for ctx.Err() == nil {
		err := s.followOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, store.ErrCompacted) || err == nil {
			// Fell behind, or the watch ended: re-read at once.
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, minBackoff), s.cfg.MaxBackoff)
		s.log.Warn("follow breaker records; will retry", "error", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
	}
}

// followOnce lists and applies every record, then applies watched changes
// until the watch ends. It returns nil when the watch channel closes.
func (s *Syncer) followOnce(ctx context.Context) error {
	kvs, rev, err := s.st.List(ctx, RecordPrefix)
	if err != nil {
		return fmt.Errorf("list %q: %w", RecordPrefix, err)
	}
	for _, kv := range kvs {
		s.apply(kv)
	}
	ch, err := s.st.Watch(ctx, RecordPrefix, rev)
	if err != nil {
		return fmt.Errorf("watch %q from revision %d: %w", RecordPrefix, rev, err)
	}
	for ev := range ch {
		// Deletions are expiries (or an operator's cleanup): the ejection
		// they described has ended, and local cool-downs end by themselves.
		if ev.Type == store.EventPut {
			s.apply(ev.KV)
		}
	}
	return nil
}

func (s *Syncer) apply(kv store.KV) {
	var r Record
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		s.log.Warn("skip undecodable breaker record", "key", kv.Key, "revision", kv.Revision, "error", err)
		return
	}
	if r.Node == s.cfg.Node {
		s.b.forget(r.ReplicaID)
		return
	}
	s.b.apply(r, s.cfg.Now())
}

// sleep waits for d or the end of ctx, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
