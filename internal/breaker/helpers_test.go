package breaker

import (
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// t0 is the injected start time of every test that does not involve the
// store.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testSnap returns a snapshot with one service holding replicas ids.
func testSnap(service string, ids ...string) *snapshot.Snapshot {
	svc := &snapshot.Service{Name: service}
	for _, id := range ids {
		svc.Replicas = append(svc.Replicas, &snapshot.Replica{
			ID:     id,
			URL:    &url.URL{Scheme: "http", Host: id + ".test:8080"},
			Weight: 1,
		})
	}
	return &snapshot.Snapshot{Services: map[string]*snapshot.Service{service: svc}}
}

// newTestBreakers returns Breakers synced at t0 to one service "svc" with
// replicas ids, all under cfg.
func newTestBreakers(t testing.TB, cfg Config, ids ...string) *Breakers {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	bs := New(func(*snapshot.Service) Config { return cfg }, nil)
	bs.Sync(testSnap("svc", ids...), t0)
	return bs
}

// newTestGroup is newTestBreakers(...).For("svc").
func newTestGroup(t testing.TB, cfg Config, ids ...string) *Group {
	t.Helper()
	g := newTestBreakers(t, cfg, ids...).For("svc")
	if g == nil {
		t.Fatal(`For("svc") = nil after Sync`)
	}
	return g
}

// fail reports n failures of id at now and returns the last transition.
func fail(g *Group, id string, now time.Time, n int) Transition {
	tr := None
	for range n {
		tr = g.Failure(id, now, "status 503")
	}
	return tr
}

// state returns the breaker state name of id.
func state(t testing.TB, g *Group, id string, now time.Time) Status {
	t.Helper()
	b := g.Breaker(id)
	if b == nil {
		t.Fatalf("Breaker(%q) = nil", id)
	}
	return b.State(now)
}
