package registry_test

import (
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/registry"
	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
)

// clock is a manual clock shared by the store (lease expiry) and the
// registry (timestamps). It is read by the store's sweeper goroutine, hence
// atomic.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newRegistry returns a registry over a real embedded store in a temporary
// directory, both on clk.
func newRegistry(t *testing.T, clk *clock, cfg registry.Config) (*registry.Registry, *boltstore.Store) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "gatehouse.db"), boltstore.Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("boltstore.Open() error = %v", err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Now = clk.Now
	return registry.New(st, cfg), st
}

func TestRegisterListHeartbeatDeregister(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	reg, _ := newRegistry(t, clk, registry.Config{})

	start := clk.Now()
	b, err := reg.Register(ctx, registry.Registration{Service: "orders", Address: "http://10.0.0.8:8080", Weight: 3, Metadata: map[string]string{"zone": "a"}})
	if err != nil {
		t.Fatalf("Register(orders) error = %v", err)
	}
	a, err := reg.Register(ctx, registry.Registration{Service: "accounts", Address: "https://10.0.0.7"})
	if err != nil {
		t.Fatalf("Register(accounts) error = %v", err)
	}
	if got, want := b.ID, registry.InstanceID("orders", "http://10.0.0.8:8080"); got != want {
		t.Errorf("Register().ID = %q, want %q", got, want)
	}
	if len(b.ID) != 16 {
		t.Errorf("len(ID) = %d, want 16", len(b.ID))
	}
	if got, want := time.Duration(a.TTL), registry.DefaultTTL; got != want {
		t.Errorf("Register() with no TTL: TTL = %v, want %v", got, want)
	}
	if !b.RegisteredAt.Equal(start) || !b.RenewedAt.Equal(start) {
		t.Errorf("Register() times = %v, %v, want both %v", b.RegisteredAt, b.RenewedAt, start)
	}

	list, rev, err := reg.List(ctx)
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	if rev <= 0 {
		t.Errorf("List() revision = %d, want > 0", rev)
	}
	if got := ids(list); got != a.ID+","+b.ID {
		t.Errorf("List() IDs = %s, want %s,%s (accounts before orders)", got, a.ID, b.ID)
	}
	if got := list[1]; got.Weight != 3 || got.Metadata["zone"] != "a" || got.Address != "http://10.0.0.8:8080" {
		t.Errorf("List()[1] = %+v, want weight 3, zone a, the address as registered", got)
	}

	clk.Advance(10 * time.Second)
	hb, err := reg.Heartbeat(ctx, b.ID)
	if err != nil {
		t.Fatalf("Heartbeat() error = %v", err)
	}
	if !hb.RenewedAt.Equal(clk.Now()) || !hb.RegisteredAt.Equal(start) {
		t.Errorf("Heartbeat() times = registered %v renewed %v, want %v and %v", hb.RegisteredAt, hb.RenewedAt, start, clk.Now())
	}
	if hb.Weight != 3 || hb.Metadata["zone"] != "a" {
		t.Errorf("Heartbeat() = %+v, want weight and metadata kept", hb)
	}

	if err := reg.Deregister(ctx, b.ID); err != nil {
		t.Fatalf("Deregister() error = %v", err)
	}
	list, _, err = reg.List(ctx)
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	if got := ids(list); got != a.ID {
		t.Errorf("List() after Deregister = %s, want %s", got, a.ID)
	}
	if err := reg.Deregister(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Deregister() again error = %v, want store.ErrNotFound", err)
	}
	if _, err := reg.Heartbeat(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Heartbeat() after Deregister error = %v, want store.ErrNotFound", err)
	}
}

func TestUnknownIDs(t *testing.T) {
	reg, _ := newRegistry(t, newClock(), registry.Config{})
	for _, id := range []string{"", "0123456789abcdef", "../config", "0123456789ABCDEF", "x"} {
		if _, err := reg.Heartbeat(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Heartbeat(%q) error = %v, want store.ErrNotFound", id, err)
		}
		if err := reg.Deregister(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Deregister(%q) error = %v, want store.ErrNotFound", id, err)
		}
	}
}

func TestRegisterIsIdempotent(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	reg, _ := newRegistry(t, clk, registry.Config{})

	first, err := reg.Register(ctx, registry.Registration{Service: "orders", Address: "http://10.0.0.7:80/", TTL: 10 * time.Second, Weight: 1, Metadata: map[string]string{"v": "1"}})
	if err != nil {
		t.Fatalf("Register() error = %v", err)
	}
	clk.Advance(5 * time.Second)
	second, err := reg.Register(ctx, registry.Registration{Service: "orders", Address: "HTTP://10.0.0.7", TTL: 20 * time.Second, Weight: 7, Metadata: map[string]string{"v": "2"}})
	if err != nil {
		t.Fatalf("Register() again error = %v", err)
	}
	if second.ID != first.ID {
		t.Errorf("Register() again ID = %s, want %s (same service and address)", second.ID, first.ID)
	}
	if second.Address != "http://10.0.0.7" {
		t.Errorf("Register().Address = %q, want the normalised %q", second.Address, "http://10.0.0.7")
	}
	if !second.RegisteredAt.Equal(first.RegisteredAt) {
		t.Errorf("RegisteredAt = %v, want the original %v", second.RegisteredAt, first.RegisteredAt)
	}
	if !second.RenewedAt.Equal(clk.Now()) {
		t.Errorf("RenewedAt = %v, want %v", second.RenewedAt, clk.Now())
	}
	list, _, err := reg.List(ctx)
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	if len(list) != 1 {
		t.Fatalf("List() has %d instances, want 1: %+v", len(list), list)
	}
	got := list[0]
	if time.Duration(got.TTL) != 20*time.Second || got.Weight != 7 || !maps.Equal(got.Metadata, map[string]string{"v": "2"}) {
		t.Errorf("List()[0] = %+v, want TTL 20s, weight 7, metadata v=2", got)
	}

	// The same address under another service is another instance.
	other, err := reg.Register(ctx, registry.Registration{Service: "billing", Address: "http://10.0.0.7"})
	if err != nil {
		t.Fatalf("Register(billing) error = %v", err)
	}
	if other.ID == first.ID {
		t.Errorf("Register(billing).ID = %s, want an ID different from orders'", other.ID)
	}

	// Once the lease has gone, registering again starts a new registration.
	clk.Advance(21 * time.Second)
	again, err := reg.Register(ctx, registry.Registration{Service: "orders", Address: "http://10.0.0.7"})
	if err != nil {
		t.Fatalf("Register() after expiry error = %v", err)
	}
	if !again.RegisteredAt.Equal(clk.Now()) {
		t.Errorf("RegisteredAt after expiry = %v, want %v", again.RegisteredAt, clk.Now())
	}
}

func TestRegisterValidation(t *testing.T) {
	long := strings.Repeat("k", 257)
	tooMany := map[string]string{}
	for i := range 33 {
		tooMany[strings.Repeat("m", i+1)] = "v"
	}
	ok := registry.Registration{Service: "orders", Address: "http://10.0.0.7:8080"}
	with := func(f func(r *registry.Registration)) registry.Registration {
		r := ok
		f(&r)
		return r
	}
	tests := []struct {
		name      string
		reg       registry.Registration
		wantField string
		wantMsg   string
	}{
		{"no service", with(func(r *registry.Registration) { r.Service = "" }), "service", `service is required, e.g. "service": "orders"`},
		{"bad service", with(func(r *registry.Registration) { r.Service = "-orders" }), "service", `service "-orders" is not a valid name: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{"service with slash", with(func(r *registry.Registration) { r.Service = "a/b" }), "service", `service "a/b" is not a valid name: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{"service too long", with(func(r *registry.Registration) { r.Service = strings.Repeat("s", 64) }), "service", `service "` + strings.Repeat("s", 64) + `" is not a valid name: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{"no address", with(func(r *registry.Registration) { r.Address = "" }), "address", `address is required, e.g. "address": "http://10.0.0.7:8080"`},
		{"no scheme", with(func(r *registry.Registration) { r.Address = "10.0.0.7:8080" }), "address", `address "10.0.0.7:8080" is not an http(s) URL: add a scheme, e.g. "http://10.0.0.7:8080"`},
		{"host name without scheme", with(func(r *registry.Registration) { r.Address = "orders:8080" }), "address", `address "orders:8080" is not an http(s) URL: add a scheme, e.g. "http://orders:8080"`},
		{"other scheme", with(func(r *registry.Registration) { r.Address = "tcp://10.0.0.7:8080" }), "address", `address "tcp://10.0.0.7:8080" has scheme "tcp": use http or https`},
		{"no host", with(func(r *registry.Registration) { r.Address = "http://:8080" }), "address", `address "http://:8080" has no host, e.g. "http://10.0.0.7:8080"`},
		{"bad port", with(func(r *registry.Registration) { r.Address = "http://10.0.0.7:99999" }), "address", `address "http://10.0.0.7:99999" has port "99999": use a port from 1 to 65535`},
		{"port zero", with(func(r *registry.Registration) { r.Address = "http://10.0.0.7:0" }), "address", `address "http://10.0.0.7:0" has port "0": use a port from 1 to 65535`},
		{"unparsable", with(func(r *registry.Registration) { r.Address = "http://10.0.0.7:80a" }), "address", `address "http://10.0.0.7:80a" is not a valid URL: invalid port ":80a" after host`},
		{"query", with(func(r *registry.Registration) { r.Address = "http://10.0.0.7:8080?x=1" }), "address", `address "http://10.0.0.7:8080?x=1" has a query: remove everything from '?'`},
		{"fragment", with(func(r *registry.Registration) { r.Address = "http://10.0.0.7:8080#top" }), "address", `address "http://10.0.0.7:8080#top" has a fragment: remove everything from '#'`},
		{"path", with(func(r *registry.Registration) { r.Address = "http://10.0.0.7:8080/api" }), "address", `address "http://10.0.0.7:8080/api" has path "/api": a registered address names only a host and port, e.g. "http://10.0.0.7:8080"`},
		{"user info", with(func(r *registry.Registration) { r.Address = "http://u:p@10.0.0.7:8080" }), "address", `address "http://u:p@10.0.0.7:8080" contains user information: remove it, credentials do not belong in the registry`},
		{"ttl too short", with(func(r *registry.Registration) { r.TTL = 500 * time.Millisecond }), "ttl", `ttl 0.5s is outside the allowed range 1s to 3600s`},
		{"ttl negative", with(func(r *registry.Registration) { r.TTL = -time.Second }), "ttl", `ttl -1s is outside the allowed range 1s to 3600s`},
		{"ttl too long", with(func(r *registry.Registration) { r.TTL = 2 * time.Hour }), "ttl", `ttl 7200s is outside the allowed range 1s to 3600s`},
		{"weight negative", with(func(r *registry.Registration) { r.Weight = -1 }), "weight", `weight -1 is outside the allowed range 0 to 10000 (0 means the default weight)`},
		{"weight too big", with(func(r *registry.Registration) { r.Weight = 10001 }), "weight", `weight 10001 is outside the allowed range 0 to 10000 (0 means the default weight)`},
		{"too much metadata", with(func(r *registry.Registration) { r.Metadata = tooMany }), "metadata", `metadata has 33 entries; at most 32 are allowed`},
		{"empty metadata key", with(func(r *registry.Registration) { r.Metadata = map[string]string{"": "v"} }), "metadata", `metadata has an empty key; every key needs a name`},
		{"long metadata key", with(func(r *registry.Registration) { r.Metadata = map[string]string{long: "v"} }), "metadata", `metadata key "` + long[:32] + `..." is 257 bytes long; at most 256 are allowed`},
		{"long metadata value", with(func(r *registry.Registration) { r.Metadata = map[string]string{"k": long} }), "metadata", `metadata value of key "k" is 257 bytes long; at most 256 are allowed`},
	}
	reg, st := newRegistry(t, newClock(), registry.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.Register(t.Context(), tt.reg)
			var verr *registry.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Register() error = %v, want a *registry.ValidationError", err)
			}
			if verr.Field != tt.wantField {
				t.Errorf("Field = %q, want %q", verr.Field, tt.wantField)
			}
			if verr.Error() != tt.wantMsg {
				t.Errorf("Error() = %s\nwant      %s", verr.Error(), tt.wantMsg)
			}
		})
	}
	kvs, _, err := st.List(t.Context(), registry.Prefix)
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	if len(kvs) != 0 {
		t.Errorf("store holds %d instances after invalid registrations, want 0", len(kvs))
	}
	// The limits themselves are accepted.
	edge := registry.Registration{Service: strings.Repeat("s", 63), Address: "https://[::1]:8443/", TTL: time.Hour, Weight: 10000, Metadata: maps.Clone(tooMany)}
	delete(edge.Metadata, "m")
	edge.Metadata[strings.Repeat("k", 256)] = strings.Repeat("v", 256)
	delete(edge.Metadata, "mm")
	if _, err := reg.Register(t.Context(), edge); err != nil {
		t.Errorf("Register(at the limits) error = %v, want nil", err)
	}
}

func TestNormalizeAddress(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"http://10.0.0.7:8080", "http://10.0.0.7:8080"},
		{"http://10.0.0.7:8080/", "http://10.0.0.7:8080"},
		{"HTTP://Orders.Internal:80", "http://orders.internal"},
		{"https://orders.internal:443/", "https://orders.internal"},
		{"https://orders.internal:80", "https://orders.internal:80"},
		{"http://10.0.0.7:08080", "http://10.0.0.7:8080"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"http://[::1]:80", "http://[::1]"},
		{"http://[fe80::1%25eth0]:8080", "http://[fe80::1%25eth0]:8080"},
	}
	for _, tt := range tests {
		got, err := registry.NormalizeAddress(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeAddress(%q) = %q, %v, want %q, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestLeaseExpires(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	reg, _ := newRegistry(t, clk, registry.Config{})
	inst, err := reg.Register(ctx, registry.Registration{Service: "orders", Address: "http://10.0.0.7:8080", TTL: 5 * time.Second})
	if err != nil {
		t.Fatalf("Register() error = %v", err)
	}
	clk.Advance(4 * time.Second)
	if got := mustList(t, reg); got != inst.ID {
		t.Fatalf("List() 4s into a 5s lease = %q, want %q", got, inst.ID)
	}
	clk.Advance(time.Second)
	if got := mustList(t, reg); got != "" {
		t.Errorf("List() after the lease = %q, want none", got)
	}
	if _, err := reg.Heartbeat(ctx, inst.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Heartbeat() after expiry error = %v, want store.ErrNotFound", err)
	}
	if got := mustList(t, reg); got != "" {
		t.Errorf("List() after a late heartbeat = %q, want none (no resurrection)", got)
	}
}

func TestHeartbeatExtendsLease(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	reg, _ := newRegistry(t, clk, registry.Config{})
	inst, err := reg.Register(ctx, registry.Registration{Service: "orders", Address: "http://10.0.0.7:8080", TTL: 5 * time.Second})
	if err != nil {
		t.Fatalf("Register() error = %v", err)
	}
	for i := range 3 {
		clk.Advance(4 * time.Second)
		if _, err := reg.Heartbeat(ctx, inst.ID); err != nil {
			t.Fatalf("Heartbeat() #%d at %ds error = %v", i+1, 4*(i+1), err)
		}
	}
	// 12s after registering, well past the original 5s lease.
	clk.Advance(4 * time.Second)
	if got := mustList(t, reg); got != inst.ID {
		t.Errorf("List() 4s after the last heartbeat = %q, want %q", got, inst.ID)
	}
	clk.Advance(time.Second)
	if got := mustList(t, reg); got != "" {
		t.Errorf("List() 5s after the last heartbeat = %q, want none", got)
	}
}

// TestLeaseExpiresOnRealClock checks the lease against the store's own clock
// and sweeper, with nothing faked: the key must vanish from listings and a
// delete event must reach watchers.
func TestLeaseExpiresOnRealClock(t *testing.T) {
	ctx := t.Context()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "gatehouse.db"), boltstore.Options{SweepInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("boltstore.Open() error = %v", err)
	}
	t.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Config{MinTTL: 100 * time.Millisecond, DefaultTTL: 200 * time.Millisecond})
	inst, err := reg.Register(ctx, registry.Registration{Service: "orders", Address: "http://10.0.0.7:8080"})
	if err != nil {
		t.Fatalf("Register() error = %v", err)
	}
	events, err := st.Watch(ctx, registry.Prefix, 0)
	if err != nil {
		t.Fatalf("Watch() error = %v", err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("watch closed before the lease expired")
			}
			if ev.Type == store.EventDelete && ev.KV.Key == registry.Key(inst.ID) {
				if got := mustList(t, reg); got != "" {
					t.Errorf("List() after the delete event = %q, want none", got)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no delete event for %s within 10s of a 200ms lease", registry.Key(inst.ID))
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     registry.Config
		wantErr string
	}{
		{"zero", registry.Config{}, ""},
		{"short", registry.Config{MinTTL: time.Millisecond, DefaultTTL: time.Second, MaxTTL: time.Minute}, ""},
		{"negative", registry.Config{MinTTL: -time.Second}, "MinTTL -1s is negative"},
		{"min above default", registry.Config{MinTTL: time.Minute}, "need MinTTL <= DefaultTTL <= MaxTTL, got 1m0s, 30s, 1h0m0s"},
		{"default above max", registry.Config{MaxTTL: time.Second}, "need MinTTL <= DefaultTTL <= MaxTTL, got 1s, 30s, 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSecondsJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		out     string
		wantErr bool
	}{
		{in: "30", want: 30 * time.Second, out: "30"},
		{in: "1.5", want: 1500 * time.Millisecond, out: "1.5"},
		{in: "0", want: 0, out: "0"},
		{in: `"2m"`, want: 2 * time.Minute, out: "120"},
		{in: `"soon"`, wantErr: true},
		{in: `true`, wantErr: true},
		{in: `1e300`, wantErr: true},
	}
	for _, tt := range tests {
		var s registry.Seconds
		err := json.Unmarshal([]byte(tt.in), &s)
		if tt.wantErr {
			if err == nil {
				t.Errorf("Unmarshal(%s) = %v, want an error", tt.in, time.Duration(s))
			}
			continue
		}
		if err != nil || time.Duration(s) != tt.want {
			t.Errorf("Unmarshal(%s) = %v, %v, want %v", tt.in, time.Duration(s), err, tt.want)
			continue
		}
		b, err := json.Marshal(s)
		if err != nil || string(b) != tt.out {
			t.Errorf("Marshal(%v) = %s, %v, want %s", time.Duration(s), b, err, tt.out)
		}
	}
}

func mustList(t *testing.T, reg *registry.Registry) string {
	t.Helper()
	list, _, err := reg.List(t.Context())
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	return ids(list)
}

func ids(list []registry.Instance) string {
	s := make([]string, len(list))
	for i, inst := range list {
		s[i] = inst.ID
	}
	return strings.Join(s, ",")
}
