package proxy

import (
	"net/http"
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
		name       string
		snap       *snapshot.Snapshot
		path       string
		wantStatus int
		wantRoute  string
	}{
		{name: "routed", snap: snap, path: "/users/7", wantRoute: "users"},
		{name: "no route", snap: snap, path: "/nope", wantStatus: http.StatusNotFound},
		{name: "no replicas", snap: snap, path: "/empty", wantStatus: http.StatusServiceUnavailable, wantRoute: "empty"},
		{name: "dot segment", snap: snap, path: "/users/../admin", wantStatus: http.StatusBadRequest},
		{name: "no snapshot", snap: nil, path: "/users/7", wantStatus: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(tt.snap, snapshot.Request{Host: "gw", Method: "GET", Path: tt.path, Header: http.Header{}})
			if d.status != tt.wantStatus {
				t.Errorf("decide(%s).status = %d, want %d", tt.path, d.status, tt.wantStatus)
			}
			var got string
			if d.match.Route != nil {
				got = d.match.Route.Name
			}
			if got != tt.wantRoute {
				t.Errorf("decide(%s).match.Route = %q, want %q", tt.path, got, tt.wantRoute)
			}
		})
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
