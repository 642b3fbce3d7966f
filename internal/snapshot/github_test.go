package snapshot

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

// githubRoutesFile is GitHub's REST API (method TAB path template per line),
// shared by the repository's benchmarks; it lives outside the module.
const githubRoutesFile = "../../../shared/data/github-routes.tsv"

// githubConfig loads githubRoutesFile as one exact-path route per path with
// all of its methods, in file order, all pointing at service "github". It
// skips the test or benchmark if the file is missing.
func githubConfig(tb testing.TB) config.Config {
	tb.Helper()
	f, err := os.Open(githubRoutesFile)
	if errors.Is(err, fs.ErrNotExist) {
		tb.Skipf("%s not found", githubRoutesFile)
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	cfg := config.Config{Services: []config.Service{{Name: "github", Targets: []config.Target{{URL: "https://api.github.com"}}}}}
	byPath := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		method, path, ok := strings.Cut(line, "\t")
		if !ok {
			tb.Fatalf("%s: bad line %q", githubRoutesFile, line)
		}
		// Gatehouse parameters are whole segments; the one operation
		// written "{base}...{head}" is also listed as "{basehead}".
		if strings.Contains(path, "}.") {
			continue
		}
		if i, ok := byPath[path]; ok {
			cfg.Routes[i].Methods = append(cfg.Routes[i].Methods, method)
			continue
		}
		byPath[path] = len(cfg.Routes)
		cfg.Routes = append(cfg.Routes, config.Route{
			Name: fmt.Sprintf("gh-%04d", len(cfg.Routes)), Service: "github",
			Paths: []string{path}, PathType: "exact", Methods: []string{method},
		})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return cfg
}

func TestMatchGitHub(t *testing.T) {
	cfg := githubConfig(t)
	s, err := Compile(cfg, nil, 1)
	if err != nil {
		t.Fatalf("Compile(github routes) error = %v", err)
	}
	if len(s.Routes) < 800 {
		t.Fatalf("loaded %d routes, want at least 800", len(s.Routes))
	}
	p := func(kv ...string) []Param {
		var ps []Param
		for i := 0; i < len(kv); i += 2 {
			ps = append(ps, Param{kv[i], kv[i+1]})
		}
		return ps
	}
	tests := []struct {
		method, path string
		wantPattern  string // "" means no match
		wantParams   []Param
	}{
		{"GET", "/", "/", nil},
		{"GET", "/user", "/user", nil},
		{"PATCH", "/user", "/user", nil},
		{"PUT", "/user", "", nil},
		{"GET", "/app/hook/config", "/app/hook/config", nil},
		{"GET", "/repos/golang/go", "/repos/{owner}/{repo}", p("owner", "golang", "repo", "go")},
		{"GET", "/repos/golang/go/issues/123", "/repos/{owner}/{repo}/issues/{issue_number}", p("owner", "golang", "repo", "go", "issue_number", "123")},
		{"POST", "/repos/golang/go/issues", "/repos/{owner}/{repo}/issues", p("owner", "golang", "repo", "go")},
		{"GET", "/repos/golang/go/issues/comments", "/repos/{owner}/{repo}/issues/comments", p("owner", "golang", "repo", "go")},
		{"GET", "/repos/golang/go/issues/123/comments", "/repos/{owner}/{repo}/issues/{issue_number}/comments", p("owner", "golang", "repo", "go", "issue_number", "123")},
		{"GET", "/repos/golang/go/compare/main...dev", "/repos/{owner}/{repo}/compare/{basehead}", p("owner", "golang", "repo", "go", "basehead", "main...dev")},
		{"DELETE", "/orgs/acme/attestations/42", "/orgs/{org}/attestations/{attestation_id}", p("org", "acme", "attestation_id", "42")},
		{"GET", "/orgs/acme/attestations/sha256:ab", "/orgs/{org}/attestations/{subject_digest}", p("org", "acme", "subject_digest", "sha256:ab")},
		{"PUT", "/repos/o/r/pulls/1/reviews/2/dismissals", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/dismissals", p("owner", "o", "repo", "r", "pull_number", "1", "review_id", "2")},
		{"GET", "/repos/golang/go/issues/123/nope", "", nil},
		{"GET", "/user/", "", nil},
		{"GET", "/nope", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			m, ok := s.Match(Request{Method: tt.method, Host: "api.github.com", Path: tt.path})
			if tt.wantPattern == "" {
				if ok {
					t.Errorf("Match() = %v, want no match", m.Route.config.Paths)
				}
				return
			}
			if !ok {
				t.Fatalf("Match() = no match, want %s", tt.wantPattern)
			}
			if got := m.Route.config.Paths[0]; got != tt.wantPattern || !reflect.DeepEqual(m.Params, tt.wantParams) {
				t.Errorf("Match() = %s %v, want %s %v", got, m.Params, tt.wantPattern, tt.wantParams)
			}
			if m.PrefixLen != len(tt.path) {
				t.Errorf("PrefixLen = %d, want %d for an exact match", m.PrefixLen, len(tt.path))
			}
		})
	}
}

func BenchmarkMatchGitHub(b *testing.B) {
	s, err := Compile(githubConfig(b), nil, 1)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkMatch(b, s, []benchRequest{
		{"static", Request{Method: "GET", Host: "api.github.com", Path: "/app/hook/config"}},
		{"params-2", Request{Method: "GET", Host: "api.github.com", Path: "/repos/golang/go"}},
		{"params-3", Request{Method: "GET", Host: "api.github.com", Path: "/repos/golang/go/issues/123"}},
		{"params-4-deep", Request{Method: "PUT", Host: "api.github.com", Path: "/repos/golang/go/pulls/1/reviews/2/dismissals"}},
		{"miss", Request{Method: "GET", Host: "api.github.com", Path: "/repos/golang/go/issues/123/nope"}},
	})
}

func BenchmarkMatchSmall(b *testing.B) {
	routes := []config.Route{
		{Name: "web", Hosts: []string{"www.example.com"}},
		{Name: "tenants", Hosts: []string{"*.example.com"}, Paths: []string{"/api/"}, StripPrefix: true},
		{Name: "users", Paths: []string{"/api/v1/users"}},
		{Name: "user", Paths: []string{"/api/v1/users/{id}"}, PathType: "exact", Methods: []string{"GET", "PUT", "DELETE"}},
		{Name: "orders", Paths: []string{"/api/v1/orders"}, Headers: map[string]string{"X-Beta": "1"}},
		{Name: "orders-old", Paths: []string{"/api/v1/orders"}},
		{Name: "grpc", Paths: []string{"/pkg.Service/"}},
		{Name: "health", Paths: []string{"/healthz"}, PathType: "exact"},
		{Name: "static", Paths: []string{"/static", "/assets"}},
		{Name: "default", Paths: []string{"/"}},
	}
	s := compileRoutes(b, routes...)
	benchmarkMatch(b, s, []benchRequest{
		{"static", Request{Method: "GET", Host: "api.example.net", Path: "/api/v1/users"}},
		{"params-1", Request{Method: "GET", Host: "api.example.net", Path: "/api/v1/users/42"}},
		{"wildcard-host", Request{Method: "GET", Host: "acme.Example.com:443", Path: "/api/v1/users"}},
		{"header", Request{Method: "GET", Host: "x", Path: "/api/v1/orders/7", Header: fakeHeader{"X-Beta": "1"}}},
		{"fallback-root", Request{Method: "GET", Host: "x", Path: "/nothing/here"}},
	})
}

// fakeHeader is a HeaderGetter without http.Header's canonicalisation, so
// that the benchmark measures the router rather than textproto.
type fakeHeader map[string]string

func (h fakeHeader) Get(name string) string { return h[name] }

type benchRequest struct {
	name string
	req  Request
}

func benchmarkMatch(b *testing.B, s *Snapshot, reqs []benchRequest) {
	for _, br := range reqs {
		b.Run(br.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Match(br.req)
			}
		})
	}
}

func BenchmarkCompileGitHub(b *testing.B) {
	cfg := githubConfig(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(cfg, nil, 1); err != nil {
			b.Fatal(err)
		}
	}
}
