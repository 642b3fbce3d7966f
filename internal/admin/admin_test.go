package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
)

// storeConfig is a minimal admin.ConfigStore over the real store: the whole
// configuration as one JSON document at key "config", validated and written
// with a compare-and-swap. The real implementation, which also compiles and
// publishes snapshots, lives in internal/controller; this one exists so that
// the admin API can be tested without it.
type storeConfig struct {
	st store.Store
	// interfere, when set, runs between the read and the conditional write
	// of every Update attempt, to provoke revision conflicts.
	interfere func(ctx context.Context)
}

const configKey = "config"

func (s *storeConfig) Config(ctx context.Context) (config.Config, int64, error) {
	kv, err := s.st.Get(ctx, configKey)
	if errors.Is(err, store.ErrNotFound) {
		return config.Config{}, 0, nil
	}
	if err != nil {
		return config.Config{}, 0, err
	}
	var c config.Config
	if err := json.Unmarshal(kv.Value, &c); err != nil {
		return config.Config{}, 0, fmt.Errorf("decode config: %w", err)
	}
	return c, kv.Revision, nil
}

func (s *storeConfig) Update(ctx context.Context, fn func(*config.Config) error) (int64, error) {
	for range 3 {
		c, rev, err := s.Config(ctx)
		if err != nil {
			return 0, err
		}
		ifRev := rev
		if rev == 0 {
			ifRev = store.Absent
		}
		if err := fn(&c); err != nil {
			return 0, err
		}
		if err := c.Validate(); err != nil {
			return 0, err
		}
		b, err := json.Marshal(c)
		if err != nil {
			return 0, err
		}
		if s.interfere != nil {
			s.interfere(ctx)
		}
		newRev, err := s.st.Put(ctx, configKey, b, store.PutOptions{IfRevision: ifRev})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return newRev, err
	}
	return 0, fmt.Errorf("update config: %w", store.ErrConflict)
}

// status is a hand-written admin.Status: readiness is decided by the
// controller, which these tests do not run.
type status struct {
	mu       sync.Mutex
	ready    bool
	reason   string
	revision int64
}

func (s *status) set(ready bool, reason string, rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready, s.reason, s.revision = ready, reason, rev
}

func (s *status) Ready() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready, s.reason
}

func (s *status) AppliedRevision() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revision
}

// syncBuffer collects log output written from server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	srv    *httptest.Server
	st     *boltstore.Store
	reg    *registry.Registry
	cs     *storeConfig
	status *status
	logs   *syncBuffer
}

func newEnv(t *testing.T, cfg admin.Config) *env {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "gatehouse.db"), boltstore.Options{})
	if err != nil {
		t.Fatalf("boltstore.Open() error = %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{
		st:     st,
		reg:    registry.New(st, registry.Config{}),
		cs:     &storeConfig{st: st},
		status: &status{ready: true, revision: 7},
		logs:   &syncBuffer{},
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := admin.New(admin.Deps{Config: e.cs, Registry: e.reg, Status: e.status}, cfg, log)
	if err != nil {
		t.Fatalf("admin.New() error = %v", err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

type response struct {
	status int
	header http.Header
	body   string
}

// decode unmarshals the response body into v, failing the test if it is not
// JSON.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("response body %q is not JSON: %v", r.body, err)
	}
}

func (e *env) do(t *testing.T, method, path, token, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatalf("NewRequest() error = %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.send(t, req)
}

func (e *env) send(t *testing.T, req *http.Request) response {
	t.Helper()
	method, path := req.Method, req.URL.Path
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s error = %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// must performs a request that must answer want.
func (e *env) must(t *testing.T, want int, method, path, body string) response {
	t.Helper()
	r := e.do(t, method, path, "", body)
	if r.status != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

type errorBody struct {
	Error   string `json:"error"`
	Details []struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"details"`
}

func (b errorBody) paths() string {
	p := make([]string, len(b.Details))
	for i, d := range b.Details {
		p[i] = d.Path
	}
	return strings.Join(p, " ")
}
