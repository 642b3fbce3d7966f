package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAPIKeyEnforcementEndToEnd follows the Tyk example through the built
// binary: a key imported as "testkey", sent as "authorization: testkey".
func TestAPIKeyEnforcementEndToEnd(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		fmt.Fprint(w, "hello")
	}))
	defer upstream.Close()
	cfg := writeFile(t, "g.yaml", fmt.Sprintf(`
services:
  - name: bin
    targets: [%q]
routes:
  - name: keyed
    service: bin
    paths: ["/keyed"]
    auth: {api_key: true}
`, upstream.URL))
	n := startNode(t, t.TempDir(), nil, "--config", cfg)

	out, errOut, code := keysCLI(t, n, "testkey", "keys", "create", "--import-stdin", "--name", "tyk")
	m := createdID.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("keys create --import-stdin = exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	id := m[1]

	if code, body := httpDo(t, "GET", n.proxy+"/keyed/a", "", "authorization", "testkey"); code != http.StatusOK || body != "hello" {
		t.Fatalf("GET /keyed/a with authorization: testkey = %d %s, want 200 hello", code, body)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0].Get("Authorization") != "" {
		t.Errorf("upstream saw headers %v, want one request without Authorization", seen)
	}
	mu.Unlock()
	code, body := httpDo(t, "GET", n.proxy+"/keyed/a", "")
	if code != http.StatusUnauthorized || !strings.Contains(body, "missing API key") {
		t.Fatalf("GET /keyed/a without a key = %d %s, want 401 missing API key", code, body)
	}

	if out, errOut, code := n.cli(t, "keys", "revoke", id); code != 0 {
		t.Fatalf("keys revoke = exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	revoked := time.Now()
	code, body = httpDo(t, "GET", n.proxy+"/keyed/a", "", "authorization", "testkey")
	if code != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
		t.Fatalf("GET /keyed/a right after keys revoke = %d %s, want 401 revoked", code, body)
	}
	t.Logf("the first request after gatehouse keys revoke returned was refused, %v later", time.Since(revoked).Round(time.Microsecond))

	_, scrape := httpDo(t, "GET", n.admin+"/metrics", "")
	for _, want := range []string{
		`gatehouse_requests_total{code_class="2xx",route="keyed",service="bin"} 1`,
		`gatehouse_requests_total{code_class="4xx",route="keyed",service="bin"} 2`,
		`gatehouse_auth_failures_total{reason="missing",route="keyed"} 1`,
		`gatehouse_auth_failures_total{reason="revoked",route="keyed"} 1`,
		`gatehouse_upstream_attempts_total{outcome="success",service="bin"} 1`,
		// The --config file is the first revision stored.
		"gatehouse_config_revision 1\n",
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(scrape, "gatehouse_"))
		}
	}
	if strings.Contains(scrape, "testkey") || strings.Contains(scrape, "/keyed/a") {
		t.Errorf("/metrics holds the key or a raw path")
	}

	// The access log: one JSON line per request on stdout, naming the key
	// by its ID.
	if code := n.stop(); code != 0 {
		t.Errorf("exit code = %d", code)
	}
	lines := strings.Split(strings.TrimSpace(n.stdout.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("stdout has %d lines, want 3 access log lines:\n%s", len(lines), n.stdout)
	}
	var first struct {
		Route    string `json:"route"`
		Status   int    `json:"status"`
		KeyID    string `json:"key_id"`
		Attempts int    `json:"attempts"`
		Bytes    int64  `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("access log line %q is not JSON: %v", lines[0], err)
	}
	if first.Route != "keyed" || first.Status != 200 || first.KeyID != id || first.Attempts != 1 || first.Bytes != 5 {
		t.Errorf("access log line = %+v, want route keyed, status 200, key_id %s, 1 attempt, 5 bytes", first, id)
	}
	if strings.Contains(n.stdout.String(), "testkey") || strings.Contains(n.logs.String(), "testkey") {
		t.Errorf("the key appears in the gateway's output")
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) && !strings.HasPrefix(line, "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// A bad OpenTelemetry variable stops the start, with the other settings'
// problems.
func TestTracingSettingRefused(t *testing.T) {
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--access-log=maybe")
	cmd.Env = append(cleanEnv(), "OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.WaitDelay = time.Second
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("serve started with a bad OTEL_EXPORTER_OTLP_ENDPOINT:\n%s", errb.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("serve did not refuse to start:\n%s", errb.String())
	}
	for _, want := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "--access-log", `"maybe"`} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("refusal message lacks %s:\n%s", want, errb.String())
		}
	}
}
