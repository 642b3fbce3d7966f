package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
)

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t, admin.Config{})
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantError  string
		wantAllow  string
	}{
		{"unknown path", "GET", "/nope", http.StatusNotFound, "no such endpoint: GET /nope", ""},
		{"wrong method on config", "PATCH", "/config", http.StatusMethodNotAllowed, "method PATCH is not allowed on /config; allowed: GET, HEAD, PUT", "GET, HEAD, PUT"},
		{"wrong method on register", "GET", "/register", http.StatusMethodNotAllowed, "method GET is not allowed on /register; allowed: POST", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.must(t, tt.wantStatus, tt.method, tt.path, "")
			var eb errorBody
			r.decode(t, &eb)
			if !strings.Contains(eb.Error, tt.wantError) {
				t.Errorf("error = %q, want it to contain %q", eb.Error, tt.wantError)
			}
			if got := r.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, admin.Config{})
	// Valid JSON that only breaks the size limit: 4 MiB of spaces inside
	// an object.
	big := "{" + strings.Repeat(" ", 4<<20) + "}"
	for _, tt := range []struct{ method, path string }{
		{"PUT", "/config"},
		{"PUT", "/services/orders"},
		{"POST", "/register"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := e.must(t, http.StatusRequestEntityTooLarge, tt.method, tt.path, big)
			var eb errorBody
			r.decode(t, &eb)
			if want := "request body is larger than the limit of 4 MiB"; eb.Error != want {
				t.Errorf("error = %q, want %q", eb.Error, want)
			}
		})
	}
	// The limit is exactly 4 MiB. A heartbeat's blank body is read but not
	// decoded, which keeps this cheap.
	inst, err := e.reg.Register(t.Context(), registry.Registration{Service: "orders", Address: "http://10.0.0.7:8080"})
	if err != nil {
		t.Fatalf("Register() error = %v", err)
	}
	e.must(t, http.StatusOK, "PUT", "/register/"+inst.ID, strings.Repeat(" ", 4<<20))
	e.must(t, http.StatusRequestEntityTooLarge, "PUT", "/register/"+inst.ID, strings.Repeat(" ", 4<<20+1))
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		deps    func(e *env) admin.Deps
		cfg     admin.Config
		wantErr string
	}{
		{"missing deps", func(*env) admin.Deps { return admin.Deps{} }, admin.Config{}, "admin: Deps.Config is nil\nadmin: Deps.Registry is nil\nadmin: Deps.Status is nil"},
		{"token with space", full, admin.Config{AdminToken: "a secret"}, "the admin token contains spaces or control characters"},
	}
	e := newEnv(t, admin.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := admin.New(tt.deps(e), tt.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New() = %v, %v, want an error containing %q", h, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("New() error %q contains the token", err)
			}
		})
	}
}

func full(e *env) admin.Deps {
	return admin.Deps{Config: e.cs, Registry: e.reg, Status: e.status}
}
