// Package redisstore is the store.Store backend on Redis (standalone, or
// behind Sentinel), shared by every Gatehouse instance of a synchronized
// deployment.
//
// Each key's value lives in a hash record; every change runs as one Lua
// script that checks its condition, takes the next store revision (an INCR
// counter), writes the record and appends an event to a Redis stream whose
// entry IDs are the revisions. Watch replays that stream and then follows it
// with XREAD BLOCK, so that no change is lost the way it could be over
// pub/sub. Leases are kept in a sorted set by expiry and removed, with their
// delete events, by a reaper that every instance runs; reads treat an
// expired key as absent even before it is reaped. Time is Redis's (TIME), so
// instances with skewed clocks agree on when a lease ends.
//
// Key layout, under Config.Prefix (P):
//
//	P rev          string   the store revision
//	P events       stream   one entry per revision, ID "<rev>-0": t (p|d), k, v
//	P index        zset     every live key, score 0, for ordered prefix listing
//	P leases       zset     keys with an expiry, score = expiry (Unix ms)
//	P kv:<key>     hash     v (value), r (revision), x (expiry, leases only)
//
// Redis replicates asynchronously: when Sentinel fails over to a replica
// that had not received the last writes, those writes are lost and their
// revisions are given again to new ones. Config.WaitReplicas makes durable
// writes wait for replicas (WAIT), so that an acknowledged write survives a
// failover. Whatever the setting, the store notices when the primary's
// revision went back below (or its history differs at) what its watchers
// already received, and closes every watch so that their consumers re-list
// rather than miss the writes that reuse those revisions.
//
// Requirements: Redis 5 or later (streams; scripts replicated by effect, so
// that they may call TIME before writing). Redis Cluster is not supported:
// the scripts address records by keys they compute.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

var _ store.Store = (*Store)(nil)

// maxList bounds the keys one List returns. The listing is one Lua script,
// atomic with the revision it reports, and Redis serves nothing else while
// it runs: 100000 small keys take in the order of 100ms.
const maxList = 100000

// Defaults of the Config fields.
const (
	DefaultPrefix       = "gatehouse:"
	defaultHistory      = 10000
	defaultWatchBuffer  = 1024
	defaultBlockTimeout = time.Second
	defaultPollInterval = 250 * time.Millisecond
	defaultReapInterval = 200 * time.Millisecond
	defaultWaitTimeout  = time.Second
	defaultPingInterval = 500 * time.Millisecond
	// waitMargin is what a WAIT must leave of the client's ReadTimeout for
	// the script before it and the replies: go-redis reads a pipeline's
	// replies under ReadTimeout, whatever the commands in it.
	waitMargin = 100 * time.Millisecond
)

// Config configures a Store. Only Client is required; the zero value of every
// other field selects its documented default.
type Config struct {
	// Client is the connection to Redis: a *redis.Client (redis.NewClient),
	// or one from redis.NewFailoverClient for Sentinel. The Store does not
	// close it.
	//
	// Configure it so that a Redis that stops answering cannot hang callers:
	// ReadTimeout and WriteTimeout must not be disabled (Open refuses -1 and
	// -2; go-redis defaults to 5s), and ContextTimeoutEnabled should be true
	// so that a caller's context deadline bounds the call (go-redis
	// otherwise ignores it; Open logs a warning). go-redis cannot interrupt
	// a command on cancellation alone, only on a deadline.
	//
	// go-redis retries a command after a timeout or a broken connection
	// (MaxRetries, default 3). A write whose reply was lost may then be
	// applied twice (an Incr counted twice, a CAS Put reported as a
	// conflict with itself); set MaxRetries to -1 where that matters more
	// than riding out a dropped connection.
	Client redis.UniversalClient
	// Prefix starts the name of every Redis key the store uses, so that
	// several systems (or Gatehouse clusters) can share one database.
	// Stores see nothing of each other's keys or events as long as no
	// prefix is a prefix of another: end it with a separator, such as ":".
	// Empty means DefaultPrefix, "gatehouse:".
	Prefix string
	// History is how many events the change stream keeps for Watch to
	// replay (trimmed exactly on every write); watching from before them
	// returns store.ErrCompacted. Zero means 10000.
	History int
	// WatchBuffer is the capacity of each watch channel beyond its replay. A
	// watcher whose channel is full when an event arrives has it closed
	// (after the events already buffered) rather than slowing the reader
	// that feeds every watcher; it must List and watch again. Zero means
	// 1024.
	WatchBuffer int
	// BlockTimeout is how long one read of the change stream (XREAD BLOCK)
	// waits for an event before it asks again. It bounds how long the
	// reader outlives Close. Zero means 1s.
	BlockTimeout time.Duration
	// PollInterval is how long the change stream reader waits before trying
	// again after Redis failed. Zero means 250ms.
	PollInterval time.Duration
	// ReapInterval is how often this instance removes expired leases (with
	// their delete events). It decides how soon watchers hear of an
	// expiry; reads ignore an expired key at once. Zero means 200ms.
	ReapInterval time.Duration
	// WaitReplicas, when positive, makes every durable write (Put without
	// TTL, Delete) wait until that many replicas have it (Redis WAIT)
	// before returning, so that a Sentinel failover does not lose a write
	// the store acknowledged. A write the replicas do not confirm within
	// WaitTimeout returns an error wrapping store.ErrNotReplicated (it was
	// applied, and may be lost). Leases (Put with a TTL), Incr counters and
	// lease expiries are not waited for: they are ephemeral. With fewer
	// replicas connected than WaitReplicas, every durable write takes
	// WaitTimeout and fails. Zero does not wait.
	//
	// Sentinel promotes, among the replicas it can reach, the one with the
	// lowest replica-priority and then the most data: with equal
	// priorities, 1 protects the acknowledged writes as long as the replica
	// that confirmed them is reachable when the master fails; only the
	// number of replicas protects them whichever replica fails with it.
	WaitReplicas int
	// WaitTimeout bounds that wait. It must stay 100ms under the client's
	// ReadTimeout, which bounds the reading of the write's and WAIT's
	// replies (Open checks). A caller's context deadline that ends first
	// ends the call with the context's error, also wrapping
	// store.ErrNotReplicated when the write was applied. Zero means 1s.
	WaitTimeout time.Duration
	// PingInterval is how often the store checks, in the background, that
	// Redis answers (for Health) and that its revision has not gone back
	// below what the watches received (see Config.WaitReplicas). Zero
	// means 500ms.
	PingInterval time.Duration
	// Logger receives reaper and reader failures and closed slow watchers.
	// Nil discards.
	Logger *slog.Logger
}

// Validate reports a missing client or a negative tunable.
func (c Config) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("redisstore: Client is nil; build one with redis.NewClient or redis.NewFailoverClient"))
	}
	for _, f := range []struct {
		name string
		v    int64
		def  string
	}{
		{"History", int64(c.History), "10000"},
		{"WatchBuffer", int64(c.WatchBuffer), "1024"},
		{"BlockTimeout", int64(c.BlockTimeout), "1s"},
		{"PollInterval", int64(c.PollInterval), "250ms"},
		{"ReapInterval", int64(c.ReapInterval), "200ms"},
		{"WaitReplicas", int64(c.WaitReplicas), "0 (do not wait)"},
		{"WaitTimeout", int64(c.WaitTimeout), "1s"},
		{"PingInterval", int64(c.PingInterval), "500ms"},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("redisstore: %s %d is negative; use 0 for the default of %s", f.name, f.v, f.def))
		}
	}
	if c.BlockTimeout > 0 && c.BlockTimeout < time.Millisecond {
		// XREAD BLOCK counts in milliseconds, and BLOCK 0 waits forever.
		errs = append(errs, fmt.Errorf("redisstore: BlockTimeout %v is under 1ms", c.BlockTimeout))
	}
	if c.WaitTimeout > 0 && c.WaitTimeout < time.Millisecond {
		// WAIT counts in milliseconds too, and WAIT 0 waits forever.
		errs = append(errs, fmt.Errorf("redisstore: WaitTimeout %v is under 1ms", c.WaitTimeout))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.History == 0 {
		c.History = defaultHistory
	}
	if c.WatchBuffer == 0 {
		c.WatchBuffer = defaultWatchBuffer
	}
	if c.BlockTimeout == 0 {
		c.BlockTimeout = defaultBlockTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = defaultPollInterval
	}
	if c.ReapInterval == 0 {
		c.ReapInterval = defaultReapInterval
	}
	if c.WaitTimeout == 0 {
		c.WaitTimeout = defaultWaitTimeout
	}
	if c.PingInterval == 0 {
		c.PingInterval = defaultPingInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Store is a store.Store kept in Redis. It is safe for concurrent use, and
// any number of Stores, in any number of processes, may share one Prefix:
// they see one store. Every call is one round trip (one script, or one
// MULTI/EXEC for Watch's replay), bounded by the caller's context and the
// client's timeouts.
type Store struct {
	client redis.UniversalClient
	cfg    Config
	log    *slog.Logger
	keys   []string // KEYS of every script: rev, events, index, leases
	kvp    string   // prefix of the value records
	maxLen string   // cfg.History, formatted for the scripts
	hub    *hub
	health health
	// probeTimeout bounds one background check (pingLoop): the client's
	// ReadTimeout, so that a hung Redis shows in Health that soon.
	probeTimeout time.Duration

	closed    atomic.Bool
	closeOnce sync.Once
	// stopCtx ends the background goroutines; go-redis does not abort a
	// command in flight on cancellation, so they may outlive Close by one
	// call.
	stopCtx context.Context
	stop    context.CancelFunc
}

// optioner is implemented by *redis.Client (standalone and Sentinel
// failover clients alike): Open checks its timeouts.
type optioner interface {
	Options() *redis.Options
}

// Open checks cfg, loads the scripts into Redis (which verifies that the
// server is reachable and the credentials work) and starts the lease
// reaper and the health check. Close stops them.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	probeTimeout := defaultProbeTimeout
	if o, ok := cfg.Client.(optioner); ok {
		opt := o.Options()
		// NewClient has normalized them: 0 and -1 both mean no deadline.
		if opt.ReadTimeout <= 0 || opt.WriteTimeout <= 0 {
			return nil, fmt.Errorf("redisstore: the client's ReadTimeout (%v) or WriteTimeout (%v) is disabled, so a Redis that stops answering would hang requests; set them to a positive duration", opt.ReadTimeout, opt.WriteTimeout)
		}
		if cfg.WaitReplicas > 0 && cfg.WaitTimeout > opt.ReadTimeout-waitMargin {
			return nil, fmt.Errorf("redisstore: WaitTimeout %v leaves under %v of the client's ReadTimeout (%v) for the write itself, so a slow replica would fail the call with a read timeout; lower WaitTimeout or raise ReadTimeout", cfg.WaitTimeout, waitMargin, opt.ReadTimeout)
		}
		probeTimeout = opt.ReadTimeout
		if !opt.ContextTimeoutEnabled {
			cfg.Logger.Warn("redis client ignores context deadlines; calls are bounded by its read and write timeouts only; set ContextTimeoutEnabled",
				"read_timeout", opt.ReadTimeout, "write_timeout", opt.WriteTimeout)
		}
	}
	stopCtx, stop := context.WithCancel(context.Background())
	s := &Store{
		client: cfg.Client,
		cfg:    cfg,
		log:    cfg.Logger,
		keys: []string{
			cfg.Prefix + "rev",
			cfg.Prefix + "events",
			cfg.Prefix + "index",
			cfg.Prefix + "leases",
		},
		kvp:          cfg.Prefix + "kv:",
		maxLen:       strconv.Itoa(cfg.History),
		hub:          newHub(cfg.Logger),
		probeTimeout: probeTimeout,
		stopCtx:      stopCtx,
		stop:         stop,
	}
	for _, sc := range scripts {
		if err := sc.Load(ctx, s.client).Err(); err != nil {
			stop()
			return nil, fmt.Errorf("open redis store %q: load scripts: %w", cfg.Prefix, s.mapErr(ctx, err))
		}
	}
	go s.reapLoop()
	go s.pingLoop()
	return s, nil
}

// Get returns the key's current value, or store.ErrNotFound if it is missing
// or its lease has expired.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if err := s.check(ctx); err != nil {
		return store.KV{}, err
	}
	res, err := s.run(ctx, getScript, key).Slice()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return store.KV{}, fmt.Errorf("get %q: %w", key, store.ErrNotFound)
		}
		return store.KV{}, fmt.Errorf("get %q: %w", key, s.mapErr(ctx, err))
	}
	if len(res) != 2 {
		return store.KV{}, fmt.Errorf("get %q: redis: script returned %d values, want 2", key, len(res))
	}
	kv, err := parseKV(key, res[0], res[1])
	if err != nil {
		return store.KV{}, fmt.Errorf("get %q: %w", key, err)
	}
	return kv, nil
}

// List returns the live keys under prefix, sorted, and the store revision
// they were read at, all from one atomic script. It fails, rather than
// return part of the keys, if there are more than 100000 of them.
func (s *Store) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	if err := s.check(ctx); err != nil {
		return nil, 0, err
	}
	lo, hi := lexRange(prefix)
	res, err := s.run(ctx, listScript, lo, hi, maxList).Slice()
	if err != nil {
		return nil, 0, fmt.Errorf("list %q: %w", prefix, s.mapErr(ctx, err))
	}
	if len(res) == 0 || (len(res)-1)%3 != 0 {
		return nil, 0, fmt.Errorf("list %q: redis: script returned %d values, want 1+3n", prefix, len(res))
	}
	rev, err := parseRevision(res[0])
	if err != nil {
		return nil, 0, fmt.Errorf("list %q: store revision: %w", prefix, err)
	}
	var kvs []store.KV
	if n := (len(res) - 1) / 3; n > 0 {
		kvs = make([]store.KV, 0, n)
	}
	for i := 1; i < len(res); i += 3 {
		key, ok := res[i].(string)
		if !ok {
			return nil, 0, fmt.Errorf("list %q: redis: key is %T, want a string", prefix, res[i])
		}
		kv, err := parseKV(key, res[i+1], res[i+2])
		if err != nil {
			return nil, 0, fmt.Errorf("list %q: %w", prefix, err)
		}
		kvs = append(kvs, kv)
	}
	return kvs, rev, nil
}

// Close ends every watch at once and stops the reaper, the health check and
// the change stream reader. A Redis call any of them has in flight is not
// interrupted (go-redis cannot), so it may run on after Close returns (up to
// BlockTimeout, or on a hung Redis the client's ReadTimeout, or
// BlockTimeout+10s for the reader); it then exits. Close does not close the
// client. It is idempotent; afterwards every method returns
// store.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stop()
		s.hub.close()
	})
	return nil
}

// run runs a script with the store's keys and common arguments followed by
// args.
func (s *Store) run(ctx context.Context, sc *redis.Script, args ...any) *redis.Cmd {
	return sc.Run(ctx, s.client, s.keys, append([]any{s.kvp, s.maxLen}, args...)...)
}

// check returns store.ErrClosed or the context's error, if any.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// mapErr turns a go-redis error into the store's: store.ErrClosed once the
// store or its client is closed, the context's error (wrapped with the
// driver's) when the call's context ended, and otherwise the driver's error
// marked as Redis's. go-redis errors name the server address, never the
// password.
func (s *Store) mapErr(ctx context.Context, err error) error {
	switch {
	case s.closed.Load():
		return fmt.Errorf("%w (redis: %w)", store.ErrClosed, err)
	case errors.Is(err, redis.ErrClosed):
		return fmt.Errorf("redis client closed: %w: %w", store.ErrClosed, err)
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		return fmt.Errorf("redis: %w: %w", ctx.Err(), err)
	default:
		return fmt.Errorf("redis: %w", err)
	}
}

// lexRange returns the ZRANGEBYLEX bounds of the keys starting with prefix.
func lexRange(prefix string) (lo, hi string) {
	if prefix == "" {
		return "-", "+"
	}
	// The smallest string above every key with the prefix: the prefix with
	// its last byte below 0xff incremented, and what follows dropped.
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			return "[" + prefix, "(" + prefix[:i] + string([]byte{prefix[i] + 1})
		}
	}
	return "[" + prefix, "+"
}

// parseKV builds a KV from a script's value and revision replies.
func parseKV(key string, value, rev any) (store.KV, error) {
	v, ok := value.(string)
	if !ok {
		return store.KV{}, fmt.Errorf("redis: value of %q is %T, want a string", key, value)
	}
	r, err := parseRevision(rev)
	if err != nil {
		return store.KV{}, fmt.Errorf("revision of %q: %w", key, err)
	}
	return store.KV{Key: key, Value: []byte(v), Revision: r}, nil
}

// parseRevision reads a revision replied as an integer or decimal text.
func parseRevision(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("redis: revision %q: %w", v, err)
		}
		return n, nil
	default:
		return 0, fmt.Errorf("redis: revision is %T, want an integer", v)
	}
}

// streamID is the change stream entry ID of revision rev.
func streamID(rev int64) string {
	return strconv.FormatInt(rev, 10) + "-0"
}

// parseStreamID returns the revision of a change stream entry ID.
func parseStreamID(id string) (int64, error) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return 0, fmt.Errorf("redis: stream entry ID %q is not <ms>-<seq>", id)
	}
	rev, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis: stream entry ID %q: %w", id, err)
	}
	return rev, nil
}
