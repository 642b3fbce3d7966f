package proxy

import (
	"net/http"
	"sync"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

func TestDecide(t *testing.T) {
	snap := compile(t, config.Config{
		Services: []config.Service{
			service("users", "http://10.0.0.1:80", "http://10.0.0.2:80"),
			service("empty"),
		},
		Routes: []config.Route{route("users", "users", "/users/{id}"), route("empty", "empty", "/empty")},
	}, 1)
	tests := []struct {
		name        string
		snap        *snapshot.Snapshot
		path        string
		wantStatus  int
		wantReplica string
	}{
		{name: "routed and picked", snap: snap, path: "/users/7", wantReplica: "static:http://10.0.0.1:80"},
		{name: "no route", snap: snap, path: "/nope", wantStatus: http.StatusNotFound},
		{name: "no replicas", snap: snap, path: "/empty", wantStatus: http.StatusServiceUnavailable},
		{name: "no snapshot", snap: nil, path: "/users/7", wantStatus: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(tt.snap, snapshot.Request{Host: "gw", Method: "GET", Path: tt.path, Header: http.Header{}}, NewRoundRobin())
			if d.status != tt.wantStatus {
				t.Errorf("decide(%s).status = %d, want %d", tt.path, d.status, tt.wantStatus)
			}
			var got string
			if d.replica != nil {
				got = d.replica.ID
			}
			if got != tt.wantReplica {
				t.Errorf("decide(%s).replica = %q, want %q", tt.path, got, tt.wantReplica)
			}
		})
	}
}

// TestRoundRobinConcurrent checks that concurrent picks spread exactly
// evenly: each replica gets the same share, with no pick lost.
func TestRoundRobinConcurrent(t *testing.T) {
	svc := &snapshot.Service{Name: "s", Replicas: []*snapshot.Replica{{ID: "a"}, {ID: "b"}, {ID: "c"}}}
	rr := NewRoundRobin()
	const workers, each = 8, 300
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := map[string]int{}
			for range each {
				local[rr.Pick(svc).ID]++
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, id := range []string{"a", "b", "c"} {
		if want := workers * each / 3; counts[id] != want {
			t.Errorf("picks of %s = %d, want %d (all %v)", id, counts[id], want, counts)
		}
	}
	if got := rr.Pick(&snapshot.Service{Name: "none"}); got != nil {
		t.Errorf("Pick(no replicas) = %v, want nil", got)
	}
}

func TestHasToken(t *testing.T) {
	tests := []struct {
		vv    []string
		token string
		want  bool
	}{
		{[]string{"Upgrade"}, "upgrade", true},
		{[]string{"keep-alive, Upgrade"}, "upgrade", true},
		{[]string{"close", " UPGRADE "}, "upgrade", true},
		{[]string{"upgrades"}, "upgrade", false},
		{nil, "upgrade", false},
		{[]string{""}, "upgrade", false},
	}
	for _, tt := range tests {
		if got := hasToken(tt.vv, tt.token); got != tt.want {
			t.Errorf("hasToken(%q, %q) = %v, want %v", tt.vv, tt.token, got, tt.want)
		}
	}
}

func TestHasDotSegment(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/api/x", false},
		{"/api/../admin", true},
		{"/api/./x", true},
		{"/api/..", true},
		{"/api/%2e%2E/admin", true},
		{"/api/.%2e", true},
		{"/api/...", false},
		{"/api/.hidden", false},
		{"/v1.2/x", false},
		{"/", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := hasDotSegment(tt.path); got != tt.want {
			t.Errorf("hasDotSegment(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
