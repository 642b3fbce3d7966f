package admin_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
)

func TestHealthReadyStatus(t *testing.T) {
	e := newEnv(t, admin.Config{Version: "1.2.3"})

	if got, want := e.must(t, http.StatusOK, "GET", "/healthz", "").body, `{"status":"ok"}`+"\n"; got != want {
		t.Errorf("GET /healthz = %s, want %s", got, want)
	}

	e.status.set(false, "no configuration loaded yet", 0)
	if got, want := e.must(t, http.StatusServiceUnavailable, "GET", "/readyz", "").body, `{"status":"not ready","reason":"no configuration loaded yet"}`+"\n"; got != want {
		t.Errorf("GET /readyz not ready = %s, want %s", got, want)
	}
	if got, want := e.must(t, http.StatusOK, "GET", "/status", "").body, `{"version":"1.2.3","applied_revision":0,"ready":false,"reason":"no configuration loaded yet"}`+"\n"; got != want {
		t.Errorf("GET /status not ready = %s, want %s", got, want)
	}

	e.status.set(true, "", 42)
	if got, want := e.must(t, http.StatusOK, "GET", "/readyz", "").body, `{"status":"ready","revision":42}`+"\n"; got != want {
		t.Errorf("GET /readyz = %s, want %s", got, want)
	}
	r := e.must(t, http.StatusOK, "GET", "/status", "")
	if got, want := r.body, `{"version":"1.2.3","applied_revision":42,"ready":true}`+"\n"; got != want {
		t.Errorf("GET /status = %s, want %s", got, want)
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}

	// Serving without its shared store: still ready (200), but degraded.
	e.status.set(true, "shared store unreachable", 43)
	if got, want := e.must(t, http.StatusOK, "GET", "/readyz", "").body, `{"status":"degraded","reason":"shared store unreachable","revision":43}`+"\n"; got != want {
		t.Errorf("GET /readyz degraded = %s, want %s", got, want)
	}
}
