package admin_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
)

// fakeReplicas is a hand-written admin.Replicas: the real one wires the
// data plane's breakers, health checker and proxy together in
// cmd/gatehouse, whose end-to-end tests exercise these endpoints through
// it. This one records the calls it gets.
type fakeReplicas struct {
	mu       sync.Mutex
	replicas []admin.Replica
	calls    []string
}

func (f *fakeReplicas) Replicas(service string) ([]admin.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []admin.Replica
	known := false
	for _, r := range f.replicas {
		if service == "" || r.Service == service {
			known = true
			out = append(out, r)
		}
	}
	if service != "" && !known {
		return nil, fmt.Errorf("service %q: %w", service, admin.ErrUnknownService)
	}
	return out, nil
}

func (f *fakeReplicas) find(service, id string) (*admin.Replica, error) {
	known := false
	for i, r := range f.replicas {
		if r.Service != service {
			continue
		}
		known = true
		if r.ID == id {
			return &f.replicas[i], nil
		}
	}
	if !known {
		return nil, fmt.Errorf("service %q: %w", service, admin.ErrUnknownService)
	}
	return nil, fmt.Errorf("replica %q: %w", id, admin.ErrUnknownReplica)
}

func (f *fakeReplicas) Eject(service, id string, d time.Duration) (admin.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.find(service, id)
	if err != nil {
		return admin.Replica{}, err
	}
	f.calls = append(f.calls, fmt.Sprintf("eject %s %s %v", service, id, d))
	r.State, r.Manual = "ejected", true
	return *r, nil
}

func (f *fakeReplicas) Restore(service, id string) (admin.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.find(service, id)
	if err != nil {
		return admin.Replica{}, err
	}
	f.calls = append(f.calls, fmt.Sprintf("restore %s %s", service, id))
	r.State, r.Manual = "healthy", false
	return *r, nil
}

func (f *fakeReplicas) lastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

// newReplicasEnv is an admin API whose Replicas is reps (nil: none).
func newReplicasEnv(t *testing.T, cfg admin.Config, reps admin.Replicas) *env {
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
	h, err := admin.New(admin.Deps{Config: e.cs, Registry: e.reg, Status: e.status, Replicas: reps}, cfg, log)
	if err != nil {
		t.Fatalf("admin.New() error = %v", err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

func sampleReplicas() *fakeReplicas {
	return &fakeReplicas{replicas: []admin.Replica{
		{Service: "users", ID: "static:http://127.0.0.1:9001", Address: "http://127.0.0.1:9001", State: "healthy"},
		{Service: "users", ID: "0a1b2c3d4e5f", Address: "http://127.0.0.1:9002", State: "ejected",
			EjectedUntil: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Ejections: 1, ConsecutiveFailures: 5,
			LastError: "dial tcp 127.0.0.1:9002: connect: connection refused",
			Health:    &admin.ReplicaHealth{Healthy: false, URL: "http://127.0.0.1:9002/health", ConsecutiveFailures: 3}},
		{Service: "orders", ID: "static:http://127.0.0.1:9003", Address: "http://127.0.0.1:9003", State: "healthy"},
	}}
}

func TestListReplicas(t *testing.T) {
	e := newReplicasEnv(t, admin.Config{}, sampleReplicas())
	tests := []struct {
		name    string
		path    string
		status  int
		wantIDs []string
		wantErr string
	}{
		{name: "all", path: "/replicas", status: 200, wantIDs: []string{"static:http://127.0.0.1:9001", "0a1b2c3d4e5f", "static:http://127.0.0.1:9003"}},
		{name: "one service", path: "/replicas?service=orders", status: 200, wantIDs: []string{"static:http://127.0.0.1:9003"}},
		{name: "unknown service", path: "/replicas?service=nope", status: 404, wantErr: `unknown service "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.must(t, tt.status, "GET", tt.path, "")
			if tt.wantErr != "" {
				var b errorBody
				r.decode(t, &b)
				if !strings.Contains(b.Error, tt.wantErr) {
					t.Errorf("error = %q, want it to contain %q", b.Error, tt.wantErr)
				}
				return
			}
			var body struct {
				Replicas []map[string]any `json:"replicas"`
			}
			r.decode(t, &body)
			var ids []string
			for _, rep := range body.Replicas {
				ids = append(ids, rep["id"].(string))
			}
			if strings.Join(ids, " ") != strings.Join(tt.wantIDs, " ") {
				t.Errorf("GET %s ids = %v, want %v", tt.path, ids, tt.wantIDs)
			}
		})
	}

	// The documented fields, as the CLI reads them.
	r := e.must(t, 200, "GET", "/replicas?service=users", "")
	for _, field := range []string{`"service":"users"`, `"address":"http://127.0.0.1:9002"`, `"state":"ejected"`,
		`"ejected_until":"2030-01-02T03:04:05Z"`, `"ejections":1`, `"consecutive_failures":5`, `"window_requests":0`,
		`"window_failures":0`, `"last_error":"dial tcp`, `"manual":false`, `"in_flight":0`,
		`"health":{"healthy":false,"url":"http://127.0.0.1:9002/health"`} {
		if !strings.Contains(r.body, field) {
			t.Errorf("GET /replicas body lacks %s:\n%s", field, r.body)
		}
	}
}

func TestEjectRestoreReplica(t *testing.T) {
	reps := sampleReplicas()
	e := newReplicasEnv(t, admin.Config{}, reps)
	// Static targets' IDs hold a URL: clients escape its slashes.
	static := "/replicas/static:http:%2F%2F127.0.0.1:9001"
	tests := []struct {
		name     string
		path     string
		body     string
		status   int
		wantCall string
		wantErr  string
	}{
		{name: "eject for a while", path: static + "/eject", body: `{"service":"users","duration":"60s"}`, status: 200,
			wantCall: "eject users static:http://127.0.0.1:9001 1m0s"},
		{name: "eject until restored", path: "/replicas/0a1b2c3d4e5f/eject", body: `{"service":"users"}`, status: 200,
			wantCall: "eject users 0a1b2c3d4e5f 0s"},
		{name: "restore", path: static + "/restore", body: `{"service":"users"}`, status: 200,
			wantCall: "restore users static:http://127.0.0.1:9001"},
		{name: "service missing", path: "/replicas/0a1b2c3d4e5f/eject", body: `{}`, status: 400, wantErr: "service is required"},
		{name: "empty body", path: "/replicas/0a1b2c3d4e5f/restore", status: 400, wantErr: "service is required"},
		{name: "bad duration", path: "/replicas/0a1b2c3d4e5f/eject", body: `{"service":"users","duration":"soon"}`, status: 400, wantErr: `duration "soon"`},
		{name: "negative duration", path: "/replicas/0a1b2c3d4e5f/eject", body: `{"service":"users","duration":"-1s"}`, status: 400, wantErr: `duration "-1s"`},
		{name: "duration on restore", path: "/replicas/0a1b2c3d4e5f/restore", body: `{"service":"users","duration":"1s"}`, status: 400, wantErr: "eject only"},
		{name: "unknown field", path: "/replicas/0a1b2c3d4e5f/eject", body: `{"service":"users","for":"1s"}`, status: 400, wantErr: "unknown field"},
		{name: "unknown service", path: "/replicas/0a1b2c3d4e5f/eject", body: `{"service":"nope"}`, status: 404, wantErr: `unknown service "nope"`},
		{name: "unknown replica", path: "/replicas/ffffffffffff/restore", body: `{"service":"users"}`, status: 404, wantErr: `service "users" has no replica "ffffffffffff"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := reps.lastCall()
			r := e.must(t, tt.status, "POST", tt.path, tt.body)
			if tt.wantErr != "" {
				var b errorBody
				r.decode(t, &b)
				if !strings.Contains(b.Error, tt.wantErr) {
					t.Errorf("error = %q, want it to contain %q", b.Error, tt.wantErr)
				}
				if got := reps.lastCall(); got != before {
					t.Errorf("a refused request called %q", got)
				}
				return
			}
			if got := reps.lastCall(); got != tt.wantCall {
				t.Errorf("call = %q, want %q", got, tt.wantCall)
			}
			var rep admin.Replica
			r.decode(t, &rep)
			if rep.ID == "" || rep.State == "" {
				t.Errorf("answer = %s, want the replica's new state", r.body)
			}
		})
	}
	if logs := e.logs.String(); !strings.Contains(logs, "replica ejected by admin API") || !strings.Contains(logs, "replica restored by admin API") {
		t.Errorf("no audit lines for eject and restore in the log:\n%s", logs)
	}
}

func TestReplicasNotAvailable(t *testing.T) {
	e := newReplicasEnv(t, admin.Config{}, nil)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/replicas", ""},
		{"POST", "/replicas/x/eject", `{"service":"s"}`},
		{"POST", "/replicas/x/restore", `{"service":"s"}`},
	} {
		e.must(t, http.StatusNotImplemented, c.method, c.path, c.body)
	}
}

func TestReplicasNeedAdminToken(t *testing.T) {
	e := newReplicasEnv(t, admin.Config{AdminToken: adminToken, RegisterToken: registerToken}, sampleReplicas())
	for _, c := range []struct {
		token string
		want  int
	}{{"", 401}, {registerToken, 403}, {adminToken, 200}} {
		if r := e.do(t, "GET", "/replicas", c.token, ""); r.status != c.want {
			t.Errorf("GET /replicas with token %q = %d, want %d", c.token, r.status, c.want)
		}
	}
	if r := e.do(t, "POST", "/replicas/0a1b2c3d4e5f/eject", registerToken, `{"service":"users"}`); r.status != 403 {
		t.Errorf("eject with the register token = %d, want 403", r.status)
	}
}
