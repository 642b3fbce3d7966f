package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
)

const (
	adminToken    = "adm-7f3c9e1b2d4a6c8e"
	registerToken = "reg-5b8d0f2a4c6e8a1c"
)

func TestAuth(t *testing.T) {
	id := registry.InstanceID("orders", "http://10.0.0.7:8080")
	reg := `{"service":"orders","address":"http://10.0.0.7:8080"}`
	type call struct {
		method, path, body string
	}
	var (
		healthz    = call{"GET", "/healthz", ""}
		readyz     = call{"GET", "/readyz", ""}
		getConfig  = call{"GET", "/config", ""}
		putConfig  = call{"PUT", "/config", "{}"}
		putService = call{"PUT", "/services/orders", "{}"}
		instances  = call{"GET", "/instances", ""}
		status     = call{"GET", "/status", ""}
		register   = call{"POST", "/register", reg}
		heartbeat  = call{"POST", "/register/" + id + "/heartbeat", ""}
		renew      = call{"PUT", "/register/" + id, ""}
		deregister = call{"DELETE", "/register/" + id, ""}
	)
	none := admin.Config{}
	adminOnly := admin.Config{AdminToken: adminToken}
	both := admin.Config{AdminToken: adminToken, RegisterToken: registerToken}
	// Without an admin token nothing is checked, as the brief for
	// cmd/gatehouse says (it only allows that on loopback).
	registerAlone := admin.Config{RegisterToken: registerToken}
	tests := []struct {
		name   string
		cfg    admin.Config
		call   call
		header string // the Authorization header
		want   int
	}{
		{"open: config", none, getConfig, "", http.StatusOK},
		{"open: register", none, register, "", http.StatusCreated},
		{"open: any token ignored", none, getConfig, "Bearer whatever", http.StatusOK},
		{"register token alone: config open", registerAlone, getConfig, "", http.StatusOK},
		{"register token alone: register open", registerAlone, register, "", http.StatusCreated},

		{"admin: healthz public", adminOnly, healthz, "", http.StatusOK},
		{"admin: readyz public", adminOnly, readyz, "", http.StatusOK},
		{"admin: healthz with a wrong token", adminOnly, healthz, "Bearer wrong", http.StatusOK},
		{"admin: config without token", adminOnly, getConfig, "", http.StatusUnauthorized},
		{"admin: config wrong token", adminOnly, getConfig, "Bearer " + adminToken + "x", http.StatusUnauthorized},
		{"admin: config token prefix", adminOnly, getConfig, "Bearer " + adminToken[:8], http.StatusUnauthorized},
		{"admin: basic scheme", adminOnly, getConfig, "Basic " + adminToken, http.StatusUnauthorized},
		{"admin: config", adminOnly, getConfig, "Bearer " + adminToken, http.StatusOK},
		{"admin: scheme case-insensitive", adminOnly, getConfig, "bearer " + adminToken, http.StatusOK},
		{"admin: put config", adminOnly, putConfig, "Bearer " + adminToken, http.StatusOK},
		{"admin: status without token", adminOnly, status, "", http.StatusUnauthorized},
		{"admin: register without token", adminOnly, register, "", http.StatusUnauthorized},
		{"admin: register with admin token", adminOnly, register, "Bearer " + adminToken, http.StatusCreated},
		{"admin: register token not configured", adminOnly, register, "Bearer " + registerToken, http.StatusUnauthorized},

		{"both: register with register token", both, register, "Bearer " + registerToken, http.StatusCreated},
		{"both: heartbeat with register token", both, heartbeat, "Bearer " + registerToken, http.StatusOK},
		{"both: renew with register token", both, renew, "Bearer " + registerToken, http.StatusOK},
		{"both: deregister with register token", both, deregister, "Bearer " + registerToken, http.StatusNoContent},
		{"both: register with admin token", both, register, "Bearer " + adminToken, http.StatusCreated},
		{"both: register with wrong token", both, register, "Bearer " + registerToken + "x", http.StatusUnauthorized},
		{"both: heartbeat without token", both, heartbeat, "", http.StatusUnauthorized},
		{"both: deregister without token", both, deregister, "", http.StatusUnauthorized},
		{"both: register token on config", both, getConfig, "Bearer " + registerToken, http.StatusForbidden},
		{"both: register token on put config", both, putConfig, "Bearer " + registerToken, http.StatusForbidden},
		{"both: register token on services", both, putService, "Bearer " + registerToken, http.StatusForbidden},
		{"both: register token on instances", both, instances, "Bearer " + registerToken, http.StatusForbidden},
		{"both: register token on status", both, status, "Bearer " + registerToken, http.StatusForbidden},
		{"both: admin token on instances", both, instances, "Bearer " + adminToken, http.StatusOK},
	}
	envs := map[admin.Config]*env{none: newEnv(t, none), adminOnly: newEnv(t, adminOnly), both: newEnv(t, both), registerAlone: newEnv(t, registerAlone)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := envs[tt.cfg]
			// Heartbeats and deregistration need a live instance.
			if _, err := e.reg.Register(t.Context(), registry.Registration{Service: "orders", Address: "http://10.0.0.7:8080"}); err != nil {
				t.Fatalf("Register() error = %v", err)
			}
			c := tt.call
			r := e.doHeader(t, c.method, c.path, tt.header, c.body)
			if r.status != tt.want {
				t.Errorf("%s %s with %q = %d %s, want %d", c.method, c.path, redact(tt.header), r.status, r.body, tt.want)
			}
			if r.status == http.StatusUnauthorized {
				var eb errorBody
				r.decode(t, &eb)
				if eb.Error == "" {
					t.Errorf("401 body = %s, want a JSON error", r.body)
				}
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", r.header.Get("WWW-Authenticate"))
				}
			}
			for _, secret := range []string{adminToken, registerToken} {
				if strings.Contains(r.body, secret) || strings.Contains(strings.Join(flatten(r.header), " "), secret) {
					t.Errorf("response %s contains a token", r.body)
				}
				if strings.Contains(e.logs.String(), secret[:8]) {
					t.Errorf("log contains (part of) a token:\n%s", e.logs.String())
				}
			}
		})
	}
}

// doHeader is do with a raw Authorization header value.
func (e *env) doHeader(t *testing.T, method, path, authorization, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest() error = %v", err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return e.send(t, req)
}

func redact(header string) string {
	for _, secret := range []string{adminToken, registerToken} {
		header = strings.ReplaceAll(header, secret, "<"+secret[:3]+">")
	}
	return header
}

func flatten(h http.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k+": "+strings.Join(vs, ","))
	}
	return out
}
