package registry

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// Prefix is the store key prefix under which every instance lives; the
// controller watches it to follow registrations.
const Prefix = "registry/"

// Key returns the store key of the instance with the given ID.
func Key(id string) string { return Prefix + id }

// Default lease limits, used for the zero fields of Config.
const (
	DefaultTTL    = 30 * time.Second
	DefaultMinTTL = time.Second
	DefaultMaxTTL = time.Hour
)

// casAttempts bounds the read-modify-write loops of Register and Heartbeat.
// A conflict means another writer touched the same instance in between (a
// concurrent heartbeat of the same replica); re-reading settles it.
const casAttempts = 5

// Config holds the registry's tunables. The zero value is usable: every zero
// field takes its documented default.
type Config struct {
	// DefaultTTL is the lease of a registration that gives no TTL; zero means
	// 30s.
	DefaultTTL time.Duration
	// MinTTL is the shortest lease a replica may ask for; zero means 1s.
	MinTTL time.Duration
	// MaxTTL is the longest lease a replica may ask for; zero means 1h.
	MaxTTL time.Duration
	// Now returns the current time for RegisteredAt and RenewedAt; nil means
	// time.Now. Lease expiry itself is measured by the store.
	Now func() time.Time
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.DefaultTTL == 0 {
		c.DefaultTTL = DefaultTTL
	}
	if c.MinTTL == 0 {
		c.MinTTL = DefaultMinTTL
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports whether c, with defaults applied to its zero fields, is
// consistent: positive durations with MinTTL <= DefaultTTL <= MaxTTL.
func (c Config) Validate() error {
	d := c.withDefaults()
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"DefaultTTL", c.DefaultTTL}, {"MinTTL", c.MinTTL}, {"MaxTTL", c.MaxTTL}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("registry config: %s %s is negative; use a positive duration or 0 for the default", f.name, f.v))
		}
	}
	if len(errs) == 0 && (d.MinTTL > d.DefaultTTL || d.DefaultTTL > d.MaxTTL) {
		errs = append(errs, fmt.Errorf("registry config: need MinTTL <= DefaultTTL <= MaxTTL, got %s, %s, %s", d.MinTTL, d.DefaultTTL, d.MaxTTL))
	}
	return errors.Join(errs...)
}

// Registration is what a replica sends to register itself.
type Registration struct {
	// Service is the name of the service the replica belongs to.
	Service string
	// Address is the replica's base URL, e.g. "http://10.0.0.7:8080".
	Address string
	// TTL is the lease length; zero means Config.DefaultTTL.
	TTL time.Duration
	// Weight is the replica's weight for weighted balancing; 0 means 1.
	Weight int
	// Metadata is free-form information about the replica.
	Metadata map[string]string
}

// Registry keeps self-registered replicas as leased keys in a store: each
// instance is a JSON record at Key(id), written with a TTL so that a replica
// that stops heartbeating disappears by itself. A Registry holds no state of
// its own beyond its configuration and is safe for concurrent use; every
// method is a store round trip or two, never on the proxy's hot path.
type Registry struct {
	st  store.Store
	cfg Config
}

// New returns a Registry over st. Zero fields of cfg take their defaults. New
// panics if cfg.Validate fails, a programmer error: validate configuration
// that comes from users before calling New.
func New(st store.Store, cfg Config) *Registry {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Registry{st: st, cfg: cfg.withDefaults()}
}

// InstanceID returns the ID of the instance that registers address (already
// normalised, see NormalizeAddress) for service: the first 16 hex digits of
// SHA-256(service + "\n" + address).
func InstanceID(service, address string) string {
	sum := sha256.Sum256([]byte(service + "\n" + address))
	return hex.EncodeToString(sum[:8])
}

// validID reports whether id could have been made by InstanceID, so that
// arbitrary strings never become store keys.
func validID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Register validates r and stores it as an instance leased for its TTL. A
// problem with r is returned as a *ValidationError. Registering the same
// service and address again is idempotent: it yields the same ID, keeps the
// original RegisteredAt if the lease is still live, and updates the TTL,
// weight, metadata and RenewedAt.
func (g *Registry) Register(ctx context.Context, r Registration) (Instance, error) {
	r, err := g.cfg.validate(r)
	if err != nil {
		return Instance{}, err
	}
	id := InstanceID(r.Service, r.Address)
	for range casAttempts {
		now := g.now()
		inst := Instance{
			ID:           id,
			Service:      r.Service,
			Address:      r.Address,
			Weight:       r.Weight,
			Metadata:     r.Metadata,
			TTL:          Seconds(r.TTL),
			RegisteredAt: now,
			RenewedAt:    now,
		}
		ifRev := store.Absent
		old, rev, err := g.get(ctx, id)
		switch {
		case err == nil:
			inst.RegisteredAt = old.RegisteredAt
			ifRev = rev
		case !errors.Is(err, store.ErrNotFound):
			return Instance{}, fmt.Errorf("register %s: %w", id, err)
		}
		err = g.put(ctx, inst, ifRev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return Instance{}, fmt.Errorf("register %s: %w", id, err)
		}
		return inst, nil
	}
	return Instance{}, fmt.Errorf("register %s: gave up after %d concurrent updates: %w", id, casAttempts, store.ErrConflict)
}

// Heartbeat renews the lease of instance id for its TTL and sets RenewedAt.
// An unknown or expired instance yields an error wrapping store.ErrNotFound:
// the replica should register again. Heartbeat never brings back an instance
// whose lease ran out or that was deregistered.
func (g *Registry) Heartbeat(ctx context.Context, id string) (Instance, error) {
	if !validID(id) {
		return Instance{}, notRegistered(id)
	}
	for range casAttempts {
		inst, rev, err := g.get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return Instance{}, notRegistered(id)
		}
		if err != nil {
			return Instance{}, fmt.Errorf("heartbeat %s: %w", id, err)
		}
		inst.RenewedAt = g.now()
		if inst.TTL <= 0 {
			// A lease without expiry would never go away; records we wrote
			// always have a TTL, so this only repairs foreign writes.
			inst.TTL = Seconds(g.cfg.DefaultTTL)
		}
		// The revision condition keeps a lease that expired (or a
		// deregistration) between the read and this write from being undone.
		err = g.put(ctx, inst, rev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return Instance{}, fmt.Errorf("heartbeat %s: %w", id, err)
		}
		return inst, nil
	}
	return Instance{}, fmt.Errorf("heartbeat %s: gave up after %d concurrent updates: %w", id, casAttempts, store.ErrConflict)
}

// Deregister removes instance id. An unknown or expired instance yields an
// error wrapping store.ErrNotFound.
func (g *Registry) Deregister(ctx context.Context, id string) error {
	if !validID(id) {
		return notRegistered(id)
	}
	err := g.st.Delete(ctx, Key(id), 0)
	if errors.Is(err, store.ErrNotFound) {
		return notRegistered(id)
	}
	if err != nil {
		return fmt.Errorf("deregister %s: %w", id, err)
	}
	return nil
}

// List returns every live instance, sorted by service and then ID, and the
// store revision of the listing (a starting point for watching Prefix).
func (g *Registry) List(ctx context.Context) ([]Instance, int64, error) {
	kvs, rev, err := g.st.List(ctx, Prefix)
	if err != nil {
		return nil, 0, fmt.Errorf("list instances: %w", err)
	}
	out := make([]Instance, 0, len(kvs))
	for _, kv := range kvs {
		var inst Instance
		if err := json.Unmarshal(kv.Value, &inst); err != nil {
			return nil, 0, fmt.Errorf("list instances: decode %s: %w", kv.Key, err)
		}
		out = append(out, inst)
	}
	slices.SortFunc(out, func(a, b Instance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
	})
	return out, rev, nil
}

func (g *Registry) now() time.Time {
	// UTC without the monotonic reading: the value is stored and compared
	// across processes.
	return g.cfg.Now().UTC().Round(0)
}

func (g *Registry) get(ctx context.Context, id string) (Instance, int64, error) {
	kv, err := g.st.Get(ctx, Key(id))
	if err != nil {
		return Instance{}, 0, err
	}
	var inst Instance
	if err := json.Unmarshal(kv.Value, &inst); err != nil {
		return Instance{}, 0, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	return inst, kv.Revision, nil
}

func (g *Registry) put(ctx context.Context, inst Instance, ifRevision int64) error {
	b, err := json.Marshal(inst)
	if err != nil {
		return fmt.Errorf("encode instance: %w", err)
	}
	_, err = g.st.Put(ctx, Key(inst.ID), b, store.PutOptions{IfRevision: ifRevision, TTL: time.Duration(inst.TTL)})
	return err
}

func notRegistered(id string) error {
	return fmt.Errorf("instance %q is not registered (its lease may have expired); register again: %w", id, store.ErrNotFound)
}
