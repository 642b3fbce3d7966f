package snapshot

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
)

func TestCompileServices(t *testing.T) {
	cfg := config.Config{
		Services: []config.Service{
			{Name: "users", Targets: []config.Target{{URL: "http://10.0.0.9:80/"}, {URL: "https://users.internal", Weight: 5}}},
			{Name: "grpc", Protocol: "h2c"},
			{Name: "empty"},
		},
	}
	instances := []registry.Instance{
		{ID: "users-c", Service: "users", Address: "http://10.0.1.3:8080", Weight: 2, Metadata: map[string]string{"zone": "b"}},
		{ID: "ghost-a", Service: "ghost", Address: "http://10.0.9.9:8080"},
		{ID: "users-a", Service: "users", Address: "http://10.0.1.1:8080"},
		{ID: "users-b", Service: "users", Address: "not a url"},
		{ID: "users-d", Service: "users", Address: "10.0.1.4:8080"},
		{ID: "users-e", Service: "users", Address: "http://10.0.1.5:8080/base"},
		{ID: "users-a", Service: "users", Address: "http://10.0.1.99:8080"},
		{ID: "grpc-1", Service: "grpc", Address: "http://10.0.2.1:9000", Weight: -3},
	}
	s, err := Compile(cfg, instances, 42)
	if err != nil {
		t.Fatalf("Compile() error = %v", err)
	}
	if s.Revision != 42 {
		t.Errorf("Revision = %d, want 42", s.Revision)
	}
	type replica struct {
		ID, URL  string
		Weight   int
		Instance bool
	}
	tests := []struct {
		service string
		h2c     bool
		want    []replica
	}{
		{"users", false, []replica{
			{"static:http://10.0.0.9:80/", "http://10.0.0.9:80", 1, false},
			{"static:https://users.internal", "https://users.internal", 5, false},
			{"users-a", "http://10.0.1.1:8080", 1, true},
			{"users-c", "http://10.0.1.3:8080", 2, true},
		}},
		{"grpc", true, []replica{{"grpc-1", "http://10.0.2.1:9000", 1, true}}},
		{"empty", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			svc := s.Service(tt.service)
			if svc == nil {
				t.Fatalf("Service(%q) = nil", tt.service)
			}
			if svc.Name != tt.service || svc.H2C != tt.h2c {
				t.Errorf("Service(%q) = name %q h2c %v, want %q %v", tt.service, svc.Name, svc.H2C, tt.service, tt.h2c)
			}
			var got []replica
			for _, r := range svc.Replicas {
				got = append(got, replica{r.ID, r.URL.String(), r.Weight, r.Instance != nil})
				if r.Instance != nil && r.Instance.ID != r.ID {
					t.Errorf("replica %q has Instance.ID %q", r.ID, r.Instance.ID)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("replicas = %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if got := s.Service("ghost"); got != nil {
		t.Errorf(`Service("ghost") = %+v, want nil: instances of unknown services are ignored`, got)
	}
	// The snapshot must not share mutable state with its inputs.
	instances[0].Metadata["zone"] = "changed"
	instances[0].Address = "http://changed"
	if got := s.Service("users").Replicas[3].Instance; got.Metadata["zone"] != "b" || got.Address != "http://10.0.1.3:8080" {
		t.Errorf("snapshot instance changed with its input: %+v", got)
	}
}

func TestCompileRoutes(t *testing.T) {
	cfg := config.Config{
		Services: []config.Service{{Name: "a"}, {Name: "b"}},
		Routes: []config.Route{
			{Name: "r1", Service: "b", Paths: []string{"/x/{id}"}, Rewrite: "/y/{id}", PreserveHost: true,
				Timeout: config.Duration(5 * time.Second),
				RequestHeaders: config.HeaderOps{
					Set:    map[string]string{"x-b": "2", "X-a": "1", "content-TYPE": "text/plain"},
					Add:    map[string]string{"via": "gh"},
					Remove: []string{"cookie", "X-Forwarded-For", "Cookie"},
				}},
			{Name: "r0", Service: "a", StripPrefix: true},
		},
	}
	s, err := Compile(cfg, nil, 1)
	if err != nil {
		t.Fatalf("Compile() error = %v", err)
	}
	if len(s.Routes) != 2 || s.Routes[0].Name != "r1" || s.Routes[1].Name != "r0" {
		t.Fatalf("Routes = %v, want [r1 r0] in config order", s.Routes)
	}
	r1, r0 := s.Routes[0], s.Routes[1]
	if r1.Service != s.Service("b") || r0.Service != s.Service("a") {
		t.Errorf("route services = %p, %p; want %p, %p", r1.Service, r0.Service, s.Service("b"), s.Service("a"))
	}
	if r1.Timeout != 5*time.Second || r0.Timeout != DefaultTimeout {
		t.Errorf("timeouts = %v, %v; want 5s, %v", r1.Timeout, r0.Timeout, DefaultTimeout)
	}
	if !r1.PreserveHost || r1.StripPrefix || !r0.StripPrefix {
		t.Errorf("flags: r1 preserve %v strip %v, r0 strip %v; want true false true", r1.PreserveHost, r1.StripPrefix, r0.StripPrefix)
	}
	wantOps := HeaderOps{
		Remove: []string{"Cookie", "X-Forwarded-For"},
		Set:    [][2]string{{"Content-Type", "text/plain"}, {"X-A", "1"}, {"X-B", "2"}},
		Add:    [][2]string{{"Via", "gh"}},
	}
	if !reflect.DeepEqual(r1.RequestHeaders, wantOps) {
		t.Errorf("RequestHeaders = %+v, want %+v", r1.RequestHeaders, wantOps)
	}
	if !r1.ResponseHeaders.Empty() || r1.RequestHeaders.Empty() {
		t.Errorf("Empty() = %v, %v; want true for response, false for request", r1.ResponseHeaders.Empty(), r1.RequestHeaders.Empty())
	}
}

func TestCompileRejectsInvalidConfig(t *testing.T) {
	cfg := config.Config{
		Services: []config.Service{{Name: "a"}},
		Routes:   []config.Route{{Name: "r", Service: "billing"}, {Name: "r2", Service: "a", Paths: []string{"x"}}},
	}
	s, err := Compile(cfg, nil, 1)
	if s != nil || err == nil {
		t.Fatalf("Compile() = %v, %v; want nil, error", s, err)
	}
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("Compile() error = %v, want config.Errors with 2 problems", err)
	}
	if !strings.Contains(err.Error(), `routes[0].service: unknown service "billing"`) {
		t.Errorf("Compile() error = %q, want it to name the unknown service", err)
	}
}

func TestUpstreamPath(t *testing.T) {
	tests := []struct {
		name  string
		route config.Route
		path  string
		want  string
	}{
		{"unchanged", config.Route{Paths: []string{"/api"}}, "/api/x", "/api/x"},
		{"strip below prefix", config.Route{Paths: []string{"/api"}, StripPrefix: true}, "/api/x/y", "/x/y"},
		{"strip whole path", config.Route{Paths: []string{"/api"}, StripPrefix: true}, "/api", "/"},
		{"strip trailing slash", config.Route{Paths: []string{"/api"}, StripPrefix: true}, "/api/", "/"},
		{"strip slash pattern", config.Route{Paths: []string{"/api/"}, StripPrefix: true}, "/api/x", "/x"},
		{"strip root", config.Route{Paths: []string{"/"}, StripPrefix: true}, "/x", "/x"},
		{"strip without paths", config.Route{StripPrefix: true}, "/x", "/x"},
		{"strip params", config.Route{Paths: []string{"/t/{tenant}"}, StripPrefix: true}, "/t/acme/orders", "/orders"},
		{"rewrite params", config.Route{Paths: []string{"/users/{id}/posts/{post}"}, Rewrite: "/v2/posts/{post}/by/{id}"}, "/users/7/posts/9/x", "/v2/posts/9/by/7"},
		{"rewrite in-segment", config.Route{Paths: []string{"/f/{name}"}, Rewrite: "/files/{name}.json"}, "/f/a", "/files/a.json"},
		{"rewrite constant", config.Route{Paths: []string{"/old"}, Rewrite: "/new"}, "/old/x", "/new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.route.Name = "r"
			s := compileRoutes(t, tt.route)
			m, ok := s.Match(Request{Method: "GET", Path: tt.path})
			if !ok {
				t.Fatalf("Match(%q) = no match", tt.path)
			}
			if got := m.Route.UpstreamPath(tt.path, m); got != tt.want {
				t.Errorf("UpstreamPath(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestUpstreamPathPrefixLenOutOfRange(t *testing.T) {
	rt := &Route{StripPrefix: true}
	if got, want := rt.UpstreamPath("/a", Match{PrefixLen: 10}), "/"; got != want {
		t.Errorf("UpstreamPath() = %q, want %q", got, want)
	}
}
