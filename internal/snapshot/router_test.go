package snapshot

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

// compileRoutes compiles routes that all point at one service "svc".
func compileRoutes(t testing.TB, routes ...config.Route) *Snapshot {
	t.Helper()
	for i := range routes {
		routes[i].Service = "svc"
	}
	s, err := Compile(config.Config{Services: []config.Service{{Name: "svc"}}, Routes: routes}, nil, 1)
	if err != nil {
		t.Fatalf("Compile() error = %v", err)
	}
	return s
}

// req is a request in a test table.
type req struct {
	method, host, path string
	header             http.Header
}

// want is the expected match; an empty route means no match.
type want struct {
	route     string
	params    []Param
	prefixLen int
}

func TestMatch(t *testing.T) {
	r := func(name string, paths ...string) config.Route { return config.Route{Name: name, Paths: paths} }
	withHosts := func(rt config.Route, hosts ...string) config.Route { rt.Hosts = hosts; return rt }
	withMethods := func(rt config.Route, m ...string) config.Route { rt.Methods = m; return rt }
	exact := func(rt config.Route) config.Route { rt.PathType = "exact"; return rt }
	withHeaders := func(rt config.Route, kv ...string) config.Route {
		rt.Headers = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			rt.Headers[kv[i]] = kv[i+1]
		}
		return rt
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name   string
		routes []config.Route
		cases  []struct {
			req  req
			want want
		}
	}{
		{
			name: "host beats no host",
			routes: []config.Route{
				r("path", "/api"),
				withHosts(r("host"), "api.example.com"),
			},
			cases: cases(
				req{"GET", "api.example.com", "/api", nil}, want{route: "host"},
				req{"GET", "other.example.com", "/api", nil}, want{route: "path", prefixLen: 4},
			),
		},
		{
			name: "exact host beats wildcard, wildcard is one label",
			routes: []config.Route{
				withHosts(r("wild"), "*.example.com"),
				withHosts(r("exact"), "api.example.com"),
			},
			cases: cases(
				req{"GET", "api.example.com", "/", nil}, want{route: "exact"},
				req{"GET", "web.example.com", "/", nil}, want{route: "wild"},
				req{"GET", "example.com", "/", nil}, want{},
				req{"GET", "a.b.example.com", "/", nil}, want{},
				req{"GET", ".example.com", "/", nil}, want{},
				req{"GET", "notexample.com", "/", nil}, want{},
			),
		},
		{
			name:   "host is case-insensitive, port and trailing dot ignored",
			routes: []config.Route{withHosts(r("h"), "API.example.com", "*.Example.org")},
			cases: cases(
				req{"GET", "api.EXAMPLE.com:8443", "/", nil}, want{route: "h"},
				req{"GET", "api.example.com.", "/", nil}, want{route: "h"},
				req{"GET", "X.example.ORG:80", "/", nil}, want{route: "h"},
				req{"GET", "[::1]:80", "/", nil}, want{},
				req{"GET", "", "/", nil}, want{},
			),
		},
		{
			name:   "wildcard host falls back to no-host route when its paths do not match",
			routes: []config.Route{withHosts(r("wild", "/a"), "*.example.com"), r("any", "/b")},
			cases: cases(
				req{"GET", "x.example.com", "/a", nil}, want{route: "wild", prefixLen: 2},
				req{"GET", "x.example.com", "/b", nil}, want{route: "any", prefixLen: 2},
			),
		},
		{
			name:   "prefix matches at segment boundaries",
			routes: []config.Route{r("api", "/api")},
			cases: cases(
				req{"GET", "", "/api", nil}, want{route: "api", prefixLen: 4},
				req{"GET", "", "/api/", nil}, want{route: "api", prefixLen: 4},
				req{"GET", "", "/api/x/y", nil}, want{route: "api", prefixLen: 4},
				req{"GET", "", "/apix", nil}, want{},
				req{"GET", "", "/ap", nil}, want{},
				req{"GET", "", "/", nil}, want{},
			),
		},
		{
			name:   "prefix with trailing slash",
			routes: []config.Route{r("api", "/api/")},
			cases: cases(
				req{"GET", "", "/api/", nil}, want{route: "api", prefixLen: 5},
				req{"GET", "", "/api/x", nil}, want{route: "api", prefixLen: 5},
				req{"GET", "", "/api//x", nil}, want{route: "api", prefixLen: 5},
				req{"GET", "", "/api", nil}, want{},
			),
		},
		{
			name:   "exact paths",
			routes: []config.Route{exact(r("e", "/api", "/dir/", "/"))},
			cases: cases(
				req{"GET", "", "/api", nil}, want{route: "e", prefixLen: 4},
				req{"GET", "", "/api/", nil}, want{},
				req{"GET", "", "/api/x", nil}, want{},
				req{"GET", "", "/dir/", nil}, want{route: "e", prefixLen: 5},
				req{"GET", "", "/dir", nil}, want{},
				req{"GET", "", "/dir/x", nil}, want{},
				req{"GET", "", "/", nil}, want{route: "e", prefixLen: 1},
			),
		},
		{
			name:   "exact beats prefix for the same pattern",
			routes: []config.Route{r("prefix", "/a"), exact(r("exact", "/a"))},
			cases: cases(
				req{"GET", "", "/a", nil}, want{route: "exact", prefixLen: 2},
				req{"GET", "", "/a/b", nil}, want{route: "prefix", prefixLen: 2},
			),
		},
		{
			name:   "literal segment beats param",
			routes: []config.Route{r("param", "/users/{id}"), r("me", "/users/me")},
			cases: cases(
				req{"GET", "", "/users/me", nil}, want{route: "me", prefixLen: 9},
				req{"GET", "", "/users/me/x", nil}, want{route: "me", prefixLen: 9},
				req{"GET", "", "/users/42", nil}, want{route: "param", prefixLen: 9, params: []Param{{"id", "42"}}},
				req{"GET", "", "/users/", nil}, want{},
				req{"GET", "", "/users", nil}, want{},
			),
		},
		{
			name:   "first differing segment decides",
			routes: []config.Route{r("late", "/{x}/b/c"), r("early", "/a/{y}/c")},
			cases: cases(
				req{"GET", "", "/a/b/c", nil}, want{route: "early", prefixLen: 6, params: []Param{{"y", "b"}}},
				req{"GET", "", "/z/b/c", nil}, want{route: "late", prefixLen: 6, params: []Param{{"x", "z"}}},
			),
		},
		{
			name:   "more segments beat fewer",
			routes: []config.Route{r("short", "/api"), r("long", "/api/v1"), r("slash", "/api/")},
			cases: cases(
				req{"GET", "", "/api/v1/x", nil}, want{route: "long", prefixLen: 7},
				req{"GET", "", "/api/v2", nil}, want{route: "slash", prefixLen: 5},
				req{"GET", "", "/api", nil}, want{route: "short", prefixLen: 4},
			),
		},
		{
			name:   "param beats shorter prefix",
			routes: []config.Route{r("short", "/users"), exact(r("item", "/users/{id}"))},
			cases: cases(
				req{"GET", "", "/users/7", nil}, want{route: "item", prefixLen: 8, params: []Param{{"id", "7"}}},
				req{"GET", "", "/users/7/x", nil}, want{route: "short", prefixLen: 6},
			),
		},
		{
			name:   "backtracks from a literal branch to a param",
			routes: []config.Route{exact(r("profile", "/users/me/profile")), exact(r("posts", "/users/{id}/posts"))},
			cases: cases(
				req{"GET", "", "/users/me/posts", nil}, want{route: "posts", prefixLen: 15, params: []Param{{"id", "me"}}},
				req{"GET", "", "/users/me/profile", nil}, want{route: "profile", prefixLen: 17},
			),
		},
		{
			name:   "methods beat no methods",
			routes: []config.Route{r("any", "/x"), withMethods(r("get", "/x"), "GET", "HEAD")},
			cases: cases(
				req{"GET", "", "/x", nil}, want{route: "get", prefixLen: 2},
				req{"HEAD", "", "/x", nil}, want{route: "get", prefixLen: 2},
				req{"POST", "", "/x", nil}, want{route: "any", prefixLen: 2},
			),
		},
		{
			name:   "method mismatch falls back to a less specific path",
			routes: []config.Route{withMethods(exact(r("item", "/users/{id}")), "GET"), r("users", "/users")},
			cases: cases(
				req{"GET", "", "/users/1", nil}, want{route: "item", prefixLen: 8, params: []Param{{"id", "1"}}},
				req{"DELETE", "", "/users/1", nil}, want{route: "users", prefixLen: 6},
			),
		},
		{
			name:   "methods only",
			routes: []config.Route{withMethods(r("post"), "POST")},
			cases: cases(
				req{"POST", "", "/anything", nil}, want{route: "post"},
				req{"GET", "", "/anything", nil}, want{},
			),
		},
		{
			name: "more header conditions win",
			routes: []config.Route{
				withHeaders(r("one", "/x"), "X-Tenant", "a"),
				withHeaders(r("two", "/x"), "x-tenant", "a", "X-Beta", "1"),
			},
			cases: cases(
				req{"GET", "", "/x", hdr("X-Tenant", "a", "X-Beta", "1")}, want{route: "two", prefixLen: 2},
				req{"GET", "", "/x", hdr("X-Tenant", "a")}, want{route: "one", prefixLen: 2},
				req{"GET", "", "/x", hdr("X-Tenant", "A")}, want{},
				req{"GET", "", "/x", hdr()}, want{},
				req{"GET", "", "/x", nil}, want{},
			),
		},
		{
			name: "methods outrank headers",
			routes: []config.Route{
				withHeaders(r("header", "/x"), "X-Tenant", "a"),
				withMethods(r("method", "/x"), "GET"),
			},
			cases: cases(
				req{"GET", "", "/x", hdr("X-Tenant", "a")}, want{route: "method", prefixLen: 2},
				req{"PUT", "", "/x", hdr("X-Tenant", "a")}, want{route: "header", prefixLen: 2},
			),
		},
		{
			name: "config order breaks ties",
			routes: []config.Route{
				withMethods(r("first", "/x"), "GET"),
				withMethods(r("second", "/x"), "GET", "POST"),
			},
			cases: cases(
				req{"GET", "", "/x", nil}, want{route: "first", prefixLen: 2},
				req{"POST", "", "/x", nil}, want{route: "second", prefixLen: 2},
			),
		},
		{
			name:   "catch-all comes after the root prefix",
			routes: []config.Route{r("all"), r("root", "/")},
			cases: cases(
				req{"GET", "", "/", nil}, want{route: "root", prefixLen: 1},
				req{"GET", "", "/x/y", nil}, want{route: "root", prefixLen: 1},
				req{"OPTIONS", "", "*", nil}, want{route: "all"},
				req{"GET", "", "", nil}, want{route: "all"},
			),
		},
		{
			name:   "params are captured in order",
			routes: []config.Route{exact(r("issue", "/repos/{owner}/{repo}/issues/{number}")), r("repo", "/repos/{owner}/{repo}/")},
			cases: cases(
				req{"GET", "", "/repos/golang/go/issues/123", nil}, want{route: "issue", prefixLen: 27,
					params: []Param{{"owner", "golang"}, {"repo", "go"}, {"number", "123"}}},
				req{"GET", "", "/repos/golang/go/pulls", nil}, want{route: "repo", prefixLen: 17,
					params: []Param{{"owner", "golang"}, {"repo", "go"}}},
				req{"GET", "", "/repos/golang/go", nil}, want{},
			),
		},
		{
			name:   "no routes",
			routes: nil,
			cases:  cases(req{"GET", "", "/", nil}, want{}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := compileRoutes(t, tt.routes...)
			for _, c := range tt.cases {
				r := Request{Host: c.req.host, Method: c.req.method, Path: c.req.path}
				if c.req.header != nil {
					r.Header = c.req.header
				}
				got, ok := s.Match(r)
				if c.want.route == "" {
					if ok {
						t.Errorf("Match(%s %s%s) = route %q, want no match", r.Method, r.Host, r.Path, got.Route.Name)
					}
					continue
				}
				if !ok {
					t.Errorf("Match(%s %s%s) = no match, want route %q", r.Method, r.Host, r.Path, c.want.route)
					continue
				}
				if got.Route.Name != c.want.route || got.PrefixLen != c.want.prefixLen || !reflect.DeepEqual(got.Params, c.want.params) {
					t.Errorf("Match(%s %s%s) = route %q prefixLen %d params %v, want route %q prefixLen %d params %v",
						r.Method, r.Host, r.Path, got.Route.Name, got.PrefixLen, got.Params, c.want.route, c.want.prefixLen, c.want.params)
				}
			}
		})
	}
}

// cases pairs up alternating req and want values, to keep tables short.
func cases(args ...any) []struct {
	req  req
	want want
} {
	var out []struct {
		req  req
		want want
	}
	for i := 0; i < len(args); i += 2 {
		out = append(out, struct {
			req  req
			want want
		}{args[i].(req), args[i+1].(want)})
	}
	return out
}

func TestMatchZeroSnapshot(t *testing.T) {
	var s Snapshot
	if m, ok := s.Match(Request{Path: "/"}); ok {
		t.Errorf("Match() on zero Snapshot = %+v, true; want false", m)
	}
}

func TestMatchAllocations(t *testing.T) {
	s := compileRoutes(t,
		config.Route{Name: "static", Paths: []string{"/api/v1/users"}, Methods: []string{"GET"}, Hosts: []string{"API.example.com"}, Headers: map[string]string{"X-Tenant": "a"}},
		config.Route{Name: "param", Paths: []string{"/users/{id}/posts/{post}"}},
	)
	h := http.Header{"X-Tenant": {"a"}}
	tests := []struct {
		name  string
		req   Request
		route string
		want  float64
	}{
		{"static, upper-case host with port", Request{Host: "Api.Example.com:443", Method: "GET", Path: "/api/v1/users/x", Header: h}, "static", 0},
		{"params", Request{Host: "other", Method: "GET", Path: "/users/1/posts/2", Header: h}, "param", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Match
			got := testing.AllocsPerRun(100, func() { m, _ = s.Match(tt.req) })
			if m.Route == nil || m.Route.Name != tt.route {
				t.Fatalf("Match() = %+v, want route %q", m, tt.route)
			}
			if got > tt.want {
				t.Errorf("Match() allocations = %v, want <= %v", got, tt.want)
			}
		})
	}
}
