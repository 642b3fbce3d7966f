package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/apikey"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

// memArtifacts is an ArtifactSource over a map. ArtifactSource is the
// proxy's own one-method interface, not a protocol: the artifact store's
// backends are tested against real storage in their own package, and a map
// is all these tests need to drive the proxy's side.
type memArtifacts struct {
	mu    sync.Mutex
	items map[string]memArtifact
	err   error // when set, every open fails with it
	opens atomic.Int64
}

type memArtifact struct {
	body, contentType string
	// short makes the artifact claim one byte more than it has, as a
	// store whose read breaks off would.
	short bool
}

// digestOf returns the SHA-256 digest artifacts are named by.
func digestOf(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}

// put stores body under its digest and returns the digest.
func (m *memArtifacts) put(body, contentType string) string {
	d := digestOf(body)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.items == nil {
		m.items = make(map[string]memArtifact)
	}
	m.items[d] = memArtifact{body: body, contentType: contentType}
	return d
}

func (m *memArtifacts) OpenArtifact(_ context.Context, digest string) (io.ReadCloser, int64, string, error) {
	m.opens.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, 0, "", m.err
	}
	a, ok := m.items[digest]
	if !ok {
		return nil, 0, "", fmt.Errorf("open artifact %s: %w", digest, ErrArtifactNotFound)
	}
	size := int64(len(a.body))
	if a.short {
		size++
	}
	return io.NopCloser(strings.NewReader(a.body)), size, a.contentType, nil
}

var _ ArtifactSource = (*memArtifacts)(nil)

const openAPIDoc = `{"openapi":"3.1.0","info":{"title":"mock","version":"1"}}`

// absentDigest names no stored artifact.
const absentDigest = "0000000000000000000000000000000000000000000000000000000000000000"

// respondFixture is a gateway with routes that respond with artifacts from
// arts, beside a forwarding route to an upstream that counts its requests.
type respondFixture struct {
	g        *gateway
	arts     *memArtifacts
	doc, raw string // digests
	upstream *atomic.Int64
}

func respondRoute(name, path string, rs config.Respond) config.Route {
	return config.Route{Name: name, Paths: []string{path}, PathType: "exact", Respond: &rs}
}

func startRespond(t *testing.T, deps Deps, arts *memArtifacts, edit func(c *config.Config)) *respondFixture {
	t.Helper()
	f := &respondFixture{arts: arts, upstream: new(atomic.Int64)}
	f.doc, f.raw = digestOf(openAPIDoc), digestOf("\x00\x01binary")
	if arts != nil {
		arts.put(openAPIDoc, "application/json")
		arts.put("\x00\x01binary", "")
		// A nil *memArtifacts would be a non-nil ArtifactSource.
		deps.Artifacts = arts
	}
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		f.upstream.Add(1)
		_, _ = io.WriteString(w, "from upstream")
	})
	doc := respondRoute("doc", "/openapi.json", config.Respond{Artifact: f.doc, Headers: map[string]string{"cache-control": "max-age=60"}})
	doc.ResponseHeaders = config.HeaderOps{Set: map[string]string{"X-Served-By": "gatehouse"}, Add: map[string]string{"Cache-Control": "public"}}
	c := config.Config{
		Services: []config.Service{service("svc", up.URL)},
		Routes: []config.Route{
			doc,
			respondRoute("typed", "/typed", config.Respond{Status: 203, Artifact: f.doc, ContentType: "text/plain; charset=utf-8"}),
			respondRoute("untyped", "/untyped", config.Respond{Artifact: f.raw}),
			respondRoute("missing", "/missing", config.Respond{Artifact: absentDigest}),
			route("api", "svc", "/api"),
		},
	}
	if edit != nil {
		edit(&c)
	}
	f.g = startGatewayWith(t, Config{}, c, deps)
	return f
}

// do sends a request through the gateway and returns the response with its
// body read.
func (g *gateway) do(t *testing.T, method, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, g.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(body)
}

func TestRespondArtifact(t *testing.T) {
	f := startRespond(t, Deps{}, &memArtifacts{}, nil)
	etag := `"` + f.doc + `"`
	docLen := strconv.Itoa(len(openAPIDoc))
	type hdr = []string
	tests := []struct {
		name   string
		method string
		path   string
		header hdr
		status int
		body   string
		// want are response headers, all values joined by ", "; "" means
		// absent.
		want map[string]string
		// opens is whether the artifact is read from the store.
		opens bool
	}{
		{"body, headers and status", "GET", "/openapi.json", nil, 200, openAPIDoc, map[string]string{
			"Content-Type": "application/json", "Content-Length": docLen, "Etag": etag,
			"Cache-Control": "max-age=60, public", "X-Served-By": "gatehouse",
		}, true},
		{"content_type override and status", "GET", "/typed", nil, 203, openAPIDoc, map[string]string{
			"Content-Type": "text/plain; charset=utf-8", "Content-Length": docLen, "Etag": etag, "Cache-Control": "",
		}, true},
		{"no stored content type", "GET", "/untyped", nil, 200, "\x00\x01binary", map[string]string{
			"Content-Type": "application/octet-stream", "Content-Length": "8", "Etag": `"` + f.raw + `"`,
		}, true},
		{"HEAD", "HEAD", "/openapi.json", nil, 200, "", map[string]string{
			"Content-Type": "application/json", "Content-Length": docLen, "Etag": etag, "X-Served-By": "gatehouse",
		}, true},
		{"If-None-Match matches", "GET", "/openapi.json", hdr{"If-None-Match", etag}, 304, "", map[string]string{
			"Etag": etag, "Cache-Control": "max-age=60, public", "X-Served-By": "gatehouse", "Content-Type": "", "Content-Length": "",
		}, false},
		{"If-None-Match weak in a list", "GET", "/openapi.json", hdr{"If-None-Match", `"other", W/` + etag}, 304, "", map[string]string{"Etag": etag}, false},
		{"If-None-Match in a second field", "GET", "/openapi.json", hdr{"If-None-Match", `"other"`, "If-None-Match", etag}, 304, "", map[string]string{"Etag": etag}, false},
		{"If-None-Match star", "GET", "/openapi.json", hdr{"If-None-Match", "*"}, 304, "", map[string]string{"Etag": etag}, false},
		{"If-None-Match on HEAD", "HEAD", "/openapi.json", hdr{"If-None-Match", etag}, 304, "", map[string]string{"Etag": etag}, false},
		{"If-None-Match another tag", "GET", "/openapi.json", hdr{"If-None-Match", `"` + f.raw + `"`}, 200, openAPIDoc, map[string]string{"Etag": etag}, true},
		{"If-None-Match unquoted digest", "GET", "/openapi.json", hdr{"If-None-Match", f.doc}, 200, openAPIDoc, map[string]string{"Etag": etag}, true},
		{"If-None-Match on a status other than 200", "GET", "/typed", hdr{"If-None-Match", etag}, 203, openAPIDoc, map[string]string{"Etag": etag}, true},
		{"POST answered with the artifact", "POST", "/openapi.json", nil, 200, openAPIDoc, map[string]string{"Etag": etag}, true},
		{"If-None-Match on POST", "POST", "/openapi.json", hdr{"If-None-Match", etag}, 412, "", map[string]string{"Content-Type": "application/json"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.arts.opens.Load()
			resp, body := f.g.do(t, tt.method, tt.path, tt.header...)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s = %d, want %d; body %q", tt.method, tt.path, resp.StatusCode, tt.status, body)
			}
			if tt.status == 412 {
				if !strings.Contains(body, `"status":412`) {
					t.Errorf("body = %q, want a JSON error with status 412", body)
				}
			} else if body != tt.body {
				t.Errorf("body = %q, want %q", body, tt.body)
			}
			for k, want := range tt.want {
				if got := strings.Join(resp.Header.Values(k), ", "); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if opened := f.arts.opens.Load() > before; opened != tt.opens {
				t.Errorf("artifact opened = %v, want %v", opened, tt.opens)
			}
		})
	}
	if n := f.upstream.Load(); n != 0 {
		t.Errorf("upstream got %d requests, want 0", n)
	}
	// The forwarding route beside them still forwards.
	if resp, body := f.g.do(t, "GET", "/api"); resp.StatusCode != 200 || body != "from upstream" || f.upstream.Load() != 1 {
		t.Errorf("GET /api = %d %q, upstream requests %d; want 200 \"from upstream\", 1", resp.StatusCode, body, f.upstream.Load())
	}
}

func TestRespondArtifactFailures(t *testing.T) {
	t.Run("not found", func(t *testing.T) {
		f := startRespond(t, Deps{}, &memArtifacts{}, nil)
		e := checkError(t, f.g.get(t, "/missing"), http.StatusBadGateway)
		if want := "artifact " + absentDigest + " not found"; e.Error != want {
			t.Errorf("error = %q, want %q", e.Error, want)
		}
		if !strings.Contains(f.g.logs.String(), "artifact not found") {
			t.Errorf("logs = %s, want an \"artifact not found\" warning", f.g.logs)
		}
	})
	t.Run("store unavailable", func(t *testing.T) {
		arts := &memArtifacts{}
		f := startRespond(t, Deps{}, arts, nil)
		arts.mu.Lock()
		arts.err = errors.New("connection refused")
		arts.mu.Unlock()
		e := checkError(t, f.g.get(t, "/openapi.json"), http.StatusServiceUnavailable)
		if want := "artifact store unavailable"; e.Error != want {
			t.Errorf("error = %q, want %q", e.Error, want)
		}
		if !strings.Contains(f.g.logs.String(), "connection refused") {
			t.Errorf("logs = %s, want the store's error", f.g.logs)
		}
	})
	t.Run("no artifact source", func(t *testing.T) {
		f := startRespond(t, Deps{}, nil, nil)
		e := checkError(t, f.g.get(t, "/openapi.json"), http.StatusServiceUnavailable)
		if e.Error != errNoArtifacts {
			t.Errorf("error = %q, want %q", e.Error, errNoArtifacts)
		}
		if resp, body := f.g.do(t, "GET", "/api"); resp.StatusCode != 200 || body != "from upstream" {
			t.Errorf("GET /api = %d %q, want 200 from the upstream", resp.StatusCode, body)
		}
	})
	t.Run("body shorter than its size", func(t *testing.T) {
		arts := &memArtifacts{}
		f := startRespond(t, Deps{}, arts, nil)
		arts.mu.Lock()
		a := arts.items[f.doc]
		a.short = true
		arts.items[f.doc] = a
		arts.mu.Unlock()
		// The body is small enough for the server to still hold it with
		// the headers: the client sees the connection closed before or
		// while reading the response, never a complete one.
		resp, err := f.g.client.Get(f.g.url + "/openapi.json")
		if err == nil {
			defer resp.Body.Close()
			_, err = io.ReadAll(resp.Body)
		}
		if err == nil {
			t.Errorf("GET of an artifact shorter than its size: error = nil, want the connection broken off")
		}
		if o := f.g.outcome(t, 1); o.Status != 200 {
			t.Errorf("outcome status = %d, want 200 (sent before the body broke)", o.Status)
		}
		if !strings.Contains(f.g.logs.String(), "artifact body failed") {
			t.Errorf("logs = %s, want an \"artifact body failed\" warning", f.g.logs)
		}
	})
}

func TestRespondArtifactAdmission(t *testing.T) {
	kf := newKeyFixture(t, nil)
	kf.importKey(t, "testkey", apikey.Spec{})
	kf.importKey(t, "doc-only", apikey.Spec{AllowedRoutes: []string{"doc"}})
	f := startRespond(t, kf.deps(), &memArtifacts{}, func(c *config.Config) {
		for i := range c.Routes {
			switch c.Routes[i].Name {
			case "doc":
				c.Routes[i].Auth = &config.Auth{APIKey: true, Header: "X-API-Key"}
			case "typed":
				c.Routes[i].Auth = &config.Auth{APIKey: true}
			case "untyped":
				c.Routes[i].RateLimit = &config.RateLimit{Requests: 1, Per: config.Duration(time.Minute)}
			}
		}
	})

	resp, body := f.g.do(t, "GET", "/openapi.json")
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "openapi") {
		t.Errorf("GET /openapi.json without a key = %d %q, want 401 without the artifact", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Www-Authenticate"); got != challengeMissing {
		t.Errorf("WWW-Authenticate = %q, want %q", got, challengeMissing)
	}
	if resp, body := f.g.do(t, "GET", "/openapi.json", "X-API-Key", "not-a-key"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /openapi.json with an unknown key = %d %q, want 401", resp.StatusCode, body)
	}
	if resp, body := f.g.do(t, "GET", "/openapi.json", "X-API-Key", "testkey"); resp.StatusCode != 200 || body != openAPIDoc {
		t.Errorf("GET /openapi.json with a key = %d %q, want 200 with the artifact", resp.StatusCode, body)
	}
	// A 304 is an answer too: no key, no revalidation.
	if resp, _ := f.g.do(t, "GET", "/openapi.json", "If-None-Match", `"`+f.doc+`"`); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("conditional GET without a key = %d, want 401", resp.StatusCode)
	}
	if resp, body := f.g.do(t, "GET", "/typed", "Authorization", "Bearer doc-only"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /typed with a key for another route = %d %q, want 403", resp.StatusCode, body)
	}
	if resp, body := f.g.do(t, "GET", "/typed", "Authorization", "Bearer testkey"); resp.StatusCode != 203 || body != openAPIDoc {
		t.Errorf("GET /typed with a key = %d %q, want 203 with the artifact", resp.StatusCode, body)
	}
	resp, _ = f.g.do(t, "GET", "/untyped")
	if resp.StatusCode != 200 || resp.Header.Get("Ratelimit-Limit") != "1" {
		t.Errorf("first GET /untyped = %d, RateLimit-Limit %q; want 200, 1", resp.StatusCode, resp.Header.Get("Ratelimit-Limit"))
	}
	if resp, body := f.g.do(t, "GET", "/untyped"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second GET /untyped = %d %q, want 429", resp.StatusCode, body)
	}
	if n := f.upstream.Load(); n != 0 {
		t.Errorf("upstream got %d requests, want 0", n)
	}
}

func TestRespondArtifactTelemetry(t *testing.T) {
	metrics := telemetry.NewMetrics()
	var logBuf logBuffer
	deps := Deps{Metrics: metrics, AccessLog: telemetry.NewAccessLog(&logBuf, true)}
	f := startRespond(t, deps, &memArtifacts{}, nil)
	f.g.do(t, "GET", "/openapi.json")
	f.g.do(t, "GET", "/openapi.json", "If-None-Match", `"`+f.doc+`"`)
	f.g.do(t, "GET", "/missing")

	wantOutcomes := []Outcome{
		{Route: "doc", Status: 200},
		{Route: "doc", Status: 304},
		{Route: "missing", Status: 502},
	}
	for i, want := range wantOutcomes {
		if got := f.g.outcome(t, i+1); got != want {
			t.Errorf("outcome %d = %+v, want %+v", i+1, got, want)
		}
	}
	eventually(t, "3 access log lines", func() bool { return strings.Count(logBuf.String(), "\n") == 3 })
	lines := parseAccessLog(t, logBuf.String())
	if l := lines[0]; l.Route != "doc" || l.Service != "" || l.Replica != "" || l.Status != 200 || l.Bytes != int64(len(openAPIDoc)) || l.Attempts != 0 {
		t.Errorf("access log = %+v, want route doc, no service or replica, status 200, %d bytes, 0 attempts", l, len(openAPIDoc))
	}
	if l := lines[1]; l.Status != 304 || l.Bytes != 0 {
		t.Errorf("access log = %+v, want status 304, 0 bytes", l)
	}
	got := scrape(t, metrics)
	for series, want := range map[string]float64{
		`gatehouse_requests_total{code_class="2xx",route="doc",service=""}`:     1,
		`gatehouse_requests_total{code_class="3xx",route="doc",service=""}`:     1,
		`gatehouse_requests_total{code_class="5xx",route="missing",service=""}`: 1,
	} {
		if v := sample(got, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	if strings.Contains(got, "gatehouse_upstream_attempts_total{") {
		t.Errorf("metrics count upstream attempts for routes that respond:\n%s", got)
	}
}

// BenchmarkServeArtifact measures the handler on a route that responds with
// an artifact from memory: a full answer, and a 304 that reads no store.
// Budget: 6 allocations for the full answer (2 of them the store double's
// reader), 1 for the 304 (the ETag field).
func BenchmarkServeArtifact(b *testing.B) {
	arts := &memArtifacts{}
	d := arts.put(openAPIDoc, "application/json")
	c := config.Config{Routes: []config.Route{
		respondRoute("doc", "/openapi.json", config.Respond{Artifact: d, Headers: map[string]string{"Cache-Control": "max-age=60"}}),
	}}
	var src atomic.Pointer[snapshot.Snapshot]
	src.Store(compile(b, c, 1))
	p, err := New(&src, Deps{Artifacts: arts}, Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for _, bc := range []struct {
		name   string
		inm    string
		status int
	}{{"200", "", http.StatusOK}, {"304", `"` + d + `"`, http.StatusNotModified}} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "http://api.example.com/openapi.json", nil)
			if bc.inm != "" {
				req.Header.Set("If-None-Match", bc.inm)
			}
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.code = 0
				p.ServeHTTP(w, req)
				if w.code != bc.status {
					b.Fatalf("status = %d, want %d", w.code, bc.status)
				}
			}
		})
	}
}
