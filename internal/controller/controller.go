// Package controller is the only writer of configuration: it validates and
// stores changes, and turns stored state (configuration and registry) into
// the immutable snapshot the data plane reads, kept current by watching the
// store and by a periodic full re-read.
package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// ConfigKey is the store key holding the whole declarative configuration as
// one JSON document, so that a change is applied atomically or not at all.
const ConfigKey = "config/current"

// configPrefix is watched for configuration changes.
const configPrefix = "config/"

// maxUpdateAttempts bounds the compare-and-swap retries of Update when
// concurrent writers race.
const maxUpdateAttempts = 16

// Config tunes a Controller. The zero value is useful.
type Config struct {
	// ResyncInterval is how often the whole state is re-read even without
	// watch events, so that a missed notification cannot leave the snapshot
	// stale for long. Zero means 30s.
	ResyncInterval time.Duration
}

// Validate reports a bad Config.
func (c Config) Validate() error {
	if c.ResyncInterval < 0 {
		return fmt.Errorf("controller: resync interval %s is negative", c.ResyncInterval)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.ResyncInterval == 0 {
		c.ResyncInterval = 30 * time.Second
	}
	return c
}

// Controller compiles and publishes snapshots and writes configuration.
// It is safe for concurrent use. Load is the data plane's one call per
// request and costs one atomic load.
type Controller struct {
	st  store.Store
	cfg Config
	log *slog.Logger

	current atomic.Pointer[snapshot.Snapshot]
	// rebuildMu serialises rebuilds so that an older read can never replace
	// a newer snapshot.
	rebuildMu sync.Mutex
	// subscribers are called with each published snapshot, in order.
	subscribers []func(*snapshot.Snapshot)
}

// OnPublish registers fn to be called with every snapshot published from now
// on, in revision order, and at once with the current one if there is one.
// fn runs on the publishing goroutine: it must be quick and must not block
// (start work elsewhere). Register subscribers before Run.
func (c *Controller) OnPublish(fn func(*snapshot.Snapshot)) {
	c.rebuildMu.Lock()
	defer c.rebuildMu.Unlock()
	c.subscribers = append(c.subscribers, fn)
	if cur := c.current.Load(); cur != nil {
		fn(cur)
	}
}

// New returns a Controller over st. Call Run to keep it current.
func New(st store.Store, cfg Config, log *slog.Logger) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Controller{st: st, cfg: cfg.withDefaults(), log: log}, nil
}

// Load returns the current snapshot, or nil before the first one is built.
func (c *Controller) Load() *snapshot.Snapshot { return c.current.Load() }

// AppliedRevision is the store revision of the snapshot in use (0 before
// the first).
func (c *Controller) AppliedRevision() int64 {
	if s := c.current.Load(); s != nil {
		return s.Revision
	}
	return 0
}

// Ready reports whether a snapshot has been built.
func (c *Controller) Ready() (bool, string) {
	if c.current.Load() == nil {
		return false, "no configuration loaded yet"
	}
	return true, ""
}

// Config returns the stored configuration and its revision (0 when nothing
// has been stored yet).
func (c *Controller) Config(ctx context.Context) (config.Config, int64, error) {
	kv, err := c.st.Get(ctx, ConfigKey)
	if errors.Is(err, store.ErrNotFound) {
		return config.Config{}, 0, nil
	}
	if err != nil {
		return config.Config{}, 0, fmt.Errorf("read config: %w", err)
	}
	cfg, err := decodeConfig(kv)
	return cfg, kv.Revision, err
}

func decodeConfig(kv store.KV) (config.Config, error) {
	var cfg config.Config
	if err := json.Unmarshal(kv.Value, &cfg); err != nil {
		return config.Config{}, fmt.Errorf("decode stored config at revision %d: %w", kv.Revision, err)
	}
	return cfg, nil
}

// readConfig lists the configuration prefix, returning the configuration
// and the store revision of the listing.
func (c *Controller) readConfig(ctx context.Context) (config.Config, int64, error) {
	kvs, rev, err := c.st.List(ctx, configPrefix)
	if err != nil {
		return config.Config{}, 0, fmt.Errorf("read config: %w", err)
	}
	for _, kv := range kvs {
		if kv.Key != ConfigKey {
			continue
		}
		cfg, err := decodeConfig(kv)
		return cfg, rev, err
	}
	return config.Config{}, rev, nil
}

// Update reads the configuration, lets fn change it, validates the whole
// result and stores it with compare-and-swap, retrying when another writer
// got there first. An error from fn or from validation (config.Errors) is
// returned as is and nothing is stored. On success the new snapshot is
// applied locally before Update returns, so the next request sees it.
func (c *Controller) Update(ctx context.Context, fn func(*config.Config) error) (int64, error) {
	for range maxUpdateAttempts {
		cfg, rev, err := c.Config(ctx)
		if err != nil {
			return 0, err
		}
		if err := fn(&cfg); err != nil {
			return 0, err
		}
		if err := cfg.Validate(); err != nil {
			return 0, err
		}
		data, err := json.Marshal(cfg)
		if err != nil {
			return 0, fmt.Errorf("encode config: %w", err)
		}
		cond := rev
		if cond == 0 {
			cond = store.Absent
		}
		newRev, err := c.st.Put(ctx, ConfigKey, data, store.PutOptions{IfRevision: cond})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("store config: %w", err)
		}
		if err := c.Refresh(ctx); err != nil {
			// Stored but not yet applied here: the watch or the next resync
			// will apply it. The write itself succeeded.
			c.log.Warn("config stored but not applied yet", "revision", newRev, "error", err)
		}
		return newRev, nil
	}
	return 0, fmt.Errorf("store config: gave up after %d concurrent-write retries: %w", maxUpdateAttempts, store.ErrConflict)
}

// Refresh re-reads the configuration and registry and publishes a new
// snapshot if they changed. A stored configuration that no longer compiles
// leaves the current snapshot in place and returns the error.
func (c *Controller) Refresh(ctx context.Context) error {
	c.rebuildMu.Lock()
	defer c.rebuildMu.Unlock()

	// The snapshot's revision is the one the configuration was read at:
	// every change up to it is in the snapshot (the registry, listed
	// after, is at least as new). Reading the configuration with Get would
	// give no such revision, and a snapshot labelled with the registry's
	// later revision could miss a configuration write made in between.
	cfg, rev, err := c.readConfig(ctx)
	if err != nil {
		return err
	}
	kvs, _, err := c.st.List(ctx, registry.Prefix)
	if err != nil {
		return fmt.Errorf("list registry: %w", err)
	}
	instances := make([]registry.Instance, 0, len(kvs))
	for _, kv := range kvs {
		var in registry.Instance
		if err := json.Unmarshal(kv.Value, &in); err != nil {
			c.log.Warn("skipping unreadable registry entry", "key", kv.Key, "error", err)
			continue
		}
		instances = append(instances, in)
	}
	if cur := c.current.Load(); cur != nil {
		switch {
		case cur.Revision == rev:
			return nil
		case cur.Revision > rev:
			// Reads are serialised, so the store itself went back: a
			// Redis failover to a replica that had not received the last
			// writes. Its state is now the truth; build from it.
			c.log.Warn("store revision went back; rebuilding from the store's current state",
				"applied", cur.Revision, "store", rev)
		}
	}
	snap, err := snapshot.Compile(cfg, instances, rev)
	if err != nil {
		return fmt.Errorf("compile snapshot at revision %d: %w", rev, err)
	}
	c.current.Store(snap)
	for _, fn := range c.subscribers {
		fn(snap)
	}
	c.log.Debug("snapshot applied", "revision", rev, "routes", len(snap.Routes), "services", len(snap.Services))
	return nil
}

// Run builds the first snapshot, then keeps it current from store watches
// and a periodic full re-read until ctx ends. It returns an error only if
// the first snapshot cannot be built.
func (c *Controller) Run(ctx context.Context) error {
	if err := c.Refresh(ctx); err != nil {
		return fmt.Errorf("initial snapshot: %w", err)
	}
	resync := time.NewTicker(c.cfg.ResyncInterval)
	defer resync.Stop()
	for ctx.Err() == nil {
		events, cancel, err := c.watch(ctx)
		if err != nil {
			// Typically ErrCompacted: re-read, then watch from the new revision.
			if rerr := c.Refresh(ctx); rerr != nil && ctx.Err() == nil {
				c.log.Error("refresh snapshot", "error", rerr)
			}
			events, cancel, err = c.watch(ctx)
		}
		if err != nil && ctx.Err() == nil {
			c.log.Warn("watch failed; relying on periodic re-read", "error", err)
		}
		c.follow(ctx, events, resync.C)
		cancel()
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("refresh snapshot", "error", err)
		}
	}
	return nil
}

// watch merges watches on the configuration and the registry, starting at
// the applied revision, into one channel.
func (c *Controller) watch(ctx context.Context) (<-chan store.Event, context.CancelFunc, error) {
	wctx, cancel := context.WithCancel(ctx)
	from := c.AppliedRevision()
	out := make(chan store.Event)
	var wg sync.WaitGroup
	for _, prefix := range []string{configPrefix, registry.Prefix} {
		ch, err := c.st.Watch(wctx, prefix, from)
		if err != nil {
			cancel()
			return nil, func() {}, fmt.Errorf("watch %q from revision %d: %w", prefix, from, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range ch {
				select {
				case out <- ev:
				case <-wctx.Done():
					return
				}
			}
			// One watch ended (store closed, or we fell behind): end both so
			// the caller re-reads and watches again.
			cancel()
		}()
	}
	go func() { wg.Wait(); close(out) }()
	return out, cancel, nil
}

// follow rebuilds on every batch of events and on every resync tick, until
// the events channel closes or ctx ends. A nil channel means no watch:
// only ticks drive it, and it returns after one.
func (c *Controller) follow(ctx context.Context, events <-chan store.Event, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("periodic refresh", "error", err)
			}
			if events == nil {
				return
			}
		case _, ok := <-events:
			if !ok {
				return
			}
			// Coalesce a burst of events into one rebuild.
			drain(events)
			if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("refresh snapshot", "error", err)
			}
		}
	}
}

func drain(events <-chan store.Event) {
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		default:
			return
		}
	}
}
