// Package cluster tells the instances of one gateway about each other: each
// instance keeps a lease in the store describing itself and the
// configuration revision it has applied, so that any instance can list the
// live ones (GET /cluster) and a client can wait until every one of them
// serves a change (gatehouse apply --wait).
//
// A lease lives TTL after its last write; an instance rewrites it every
// Interval and at once (coalesced) whenever it applies a new snapshot, and
// deletes it when it stops. An instance that dies without stopping drops out
// of the list after TTL.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// Prefix is the store prefix of the member leases.
const Prefix = "cluster/members/"

// minAnnounceGap coalesces announcements: a burst of snapshots (registry
// heartbeats, a config change) costs one write per gap, not one each.
const minAnnounceGap = 100 * time.Millisecond

// Member is one live instance as it describes itself.
type Member struct {
	// ID is unique per process: NODE_ID, or host name, PID and a random
	// suffix.
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	// Mode is "single-instance" or the synchronized mode ("redis").
	Mode string `json:"mode"`
	// Proxy and Admin are the listener addresses as bound (a wildcard
	// address is reported as bound, e.g. "[::]:8080").
	Proxy   string    `json:"proxy"`
	Admin   string    `json:"admin"`
	Started time.Time `json:"started"`
	// AppliedRevision is the store revision of the snapshot the instance
	// serves: every configuration change up to it is applied.
	AppliedRevision int64 `json:"applied_revision"`
	// Status is "ready", "degraded" (serving, but its store is
	// unreachable) or "draining".
	Status string `json:"status"`
	// Updated is when the instance last wrote this record (its own clock).
	Updated time.Time `json:"updated"`
}

// Config tunes an Announcer. The zero value selects the defaults.
type Config struct {
	// TTL is how long a member stays listed after its last announcement.
	// Zero means 15s.
	TTL time.Duration
	// Interval is how often a member announces itself without changes.
	// Zero means TTL/3.
	Interval time.Duration
}

// Validate reports negative durations, and an Interval that would let the
// lease lapse between announcements.
func (c Config) Validate() error {
	var errs []error
	if c.TTL < 0 {
		errs = append(errs, fmt.Errorf("cluster: TTL %s is negative", c.TTL))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("cluster: Interval %s is negative", c.Interval))
	}
	if d := c.withDefaults(); len(errs) == 0 && d.Interval >= d.TTL {
		errs = append(errs, fmt.Errorf("cluster: Interval %s must be shorter than TTL %s, or the member drops out between announcements", d.Interval, d.TTL))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.TTL == 0 {
		c.TTL = 15 * time.Second
	}
	if c.Interval == 0 {
		c.Interval = c.TTL / 3
	}
	return c
}

// State is what an instance reports of itself at each announcement.
type State func() (appliedRevision int64, status string)

// Announcer keeps this instance's lease and caches the member list.
type Announcer struct {
	st    store.Store
	cfg   Config
	log   *slog.Logger
	self  Member
	state State
	kick  chan struct{}

	size atomic.Int64 // live members at the last successful listing, >= 1

	mu   sync.Mutex
	last Member // the last record written
}

// New returns an Announcer for self (ID required). state is called at each
// announcement.
func New(st store.Store, self Member, state State, cfg Config, log *slog.Logger) (*Announcer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if self.ID == "" {
		return nil, errors.New("cluster: member ID is empty")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Announcer{st: st, cfg: cfg.withDefaults(), log: log, self: self, state: state, kick: make(chan struct{}, 1)}
	a.size.Store(1)
	return a, nil
}

// Kick asks for an announcement now (coalesced); it never blocks. Call it
// when the applied revision or the status changes.
func (a *Announcer) Kick() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Size is the number of live members at the last successful listing (at
// least 1: this one). While the store is unreachable it keeps the last
// known number, which is what a fallback rate limit should divide by.
func (a *Announcer) Size() int { return int(a.size.Load()) }

// Run announces until ctx ends, then removes the lease (bounded by a
// second) so that the others stop waiting for this instance at once.
func (a *Announcer) Run(ctx context.Context) error {
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	failing := false
	for {
		err := a.announce(ctx)
		if err == nil {
			err = a.count(ctx)
		}
		switch {
		case ctx.Err() != nil:
		case err != nil && !failing:
			a.log.Warn("cannot announce this instance to the cluster; retrying", "error", err)
			failing = true
		case err == nil && failing:
			a.log.Info("announcing this instance to the cluster again")
			failing = false
		}
		select {
		case <-ctx.Done():
			a.leave()
			return nil
		case <-tick.C:
		case <-a.kick:
			// Coalesce what else arrives in the gap into this write.
			t := time.NewTimer(minAnnounceGap)
			select {
			case <-ctx.Done():
				t.Stop()
				a.leave()
				return nil
			case <-t.C:
			}
		}
	}
}

func (a *Announcer) announce(ctx context.Context) error {
	m := a.self
	m.AppliedRevision, m.Status = a.state()
	m.Updated = time.Now().UTC()
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.Interval)
	defer cancel()
	if _, err := a.st.Put(cctx, Prefix+m.ID, data, store.PutOptions{TTL: a.cfg.TTL}); err != nil {
		return fmt.Errorf("announce member %s: %w", m.ID, err)
	}
	a.mu.Lock()
	a.last = m
	a.mu.Unlock()
	return nil
}

func (a *Announcer) count(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, a.cfg.Interval)
	defer cancel()
	ms, err := List(cctx, a.st)
	if err != nil {
		return err
	}
	a.size.Store(int64(max(1, len(ms))))
	return nil
}

func (a *Announcer) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.st.Delete(ctx, Prefix+a.self.ID, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		a.log.Warn("cannot remove this instance from the cluster list; it drops out when its lease expires",
			"ttl", a.cfg.TTL.String(), "error", err)
	}
}

// Members lists the live members. When the store cannot be read it returns
// this instance alone, as last announced, with the error.
func (a *Announcer) Members(ctx context.Context) ([]Member, error) {
	ms, err := List(ctx, a.st)
	if err != nil {
		a.mu.Lock()
		m := a.last
		a.mu.Unlock()
		if m.ID == "" {
			m = a.self
		}
		m.AppliedRevision, m.Status = a.state()
		return []Member{m}, err
	}
	return ms, nil
}

// List reads the live members from st, sorted by ID (the store lists in
// key order). Unreadable records
// are skipped.
func List(ctx context.Context, st store.Store) ([]Member, error) {
	kvs, _, err := st.List(ctx, Prefix)
	if err != nil {
		return nil, fmt.Errorf("list cluster members: %w", err)
	}
	ms := make([]Member, 0, len(kvs))
	for _, kv := range kvs {
		var m Member
		if json.Unmarshal(kv.Value, &m) != nil || m.ID == "" {
			continue
		}
		ms = append(ms, m)
	}
	return ms, nil
}
