package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// replicaServer is an upstream replica that counts the requests it serves
// (health checks aside) and whose /health answer can be flipped.
type replicaServer struct {
	*httptest.Server
	hits    atomic.Int64
	sick    atomic.Bool
	healthy atomic.Int64 // health checks answered
}

func startReplica(t *testing.T, name string) *replicaServer {
	t.Helper()
	r := &replicaServer{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/health" {
			r.healthy.Add(1)
			if r.sick.Load() {
				w.WriteHeader(http.StatusInternalServerError)
			}
			return
		}
		r.hits.Add(1)
		io.WriteString(w, name)
	}))
	t.Cleanup(r.Close)
	return r
}

// replicaRow is an entry of `gatehouse get replicas -o json`.
type replicaRow struct {
	Service             string    `json:"service"`
	ID                  string    `json:"id"`
	Address             string    `json:"address"`
	State               string    `json:"state"`
	EjectedUntil        time.Time `json:"ejected_until"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	LastError           string    `json:"last_error"`
	Manual              bool      `json:"manual"`
	Health              *struct {
		Healthy bool `json:"healthy"`
	} `json:"health"`
}

// replicas runs `gatehouse get replicas --service S -o json`, by address.
func (n *node) replicas(t *testing.T, service string) map[string]replicaRow {
	t.Helper()
	out, errOut, code := n.cli(t, "get", "replicas", "--service", service, "-o", "json")
	if code != 0 {
		t.Fatalf("gatehouse get replicas = exit %d: %s", code, errOut)
	}
	var body struct {
		Replicas []replicaRow `json:"replicas"`
	}
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		t.Fatalf("gatehouse get replicas -o json: %v\n%s", err, out)
	}
	rows := map[string]replicaRow{}
	for _, r := range body.Replicas {
		rows[r.Address] = r
	}
	return rows
}

// traffic sends n GETs to url and returns how many did not answer 200.
func traffic(t *testing.T, n int, url string) (failed int) {
	t.Helper()
	for range n {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed++
		}
	}
	return failed
}

// poll checks cond until it holds or 15s pass.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func resetHits(rs ...*replicaServer) {
	for _, r := range rs {
		r.hits.Store(0)
	}
}

func TestResilienceThroughBinary(t *testing.T) {
	var killed, manual, checked [3]*replicaServer
	for i := range 3 {
		killed[i] = startReplica(t, fmt.Sprintf("killed-%d", i))
		manual[i] = startReplica(t, fmt.Sprintf("manual-%d", i))
		checked[i] = startReplica(t, fmt.Sprintf("checked-%d", i))
	}
	cfg := writeFile(t, "gatehouse.yaml", fmt.Sprintf(`
services:
  - name: killed
    circuit_breaker: {consecutive_failures: 3}
  - name: manual
    targets: [%s, %s, %s]
  - name: checked
    health_check: {path: /health, interval: 50ms, timeout: 40ms, healthy_threshold: 1, unhealthy_threshold: 2}
routes:
  - {name: killed, service: killed, paths: [/killed], strip_prefix: true}
  - {name: manual, service: manual, paths: [/manual], strip_prefix: true}
  - {name: checked, service: checked, paths: [/checked], strip_prefix: true}
`, manual[0].URL, manual[1].URL, manual[2].URL))
	n := startNode(t, t.TempDir(), nil, "--config", cfg)
	register := func(service string, rs [3]*replicaServer) {
		for _, r := range rs {
			code, body := httpDo(t, "POST", n.admin+"/register", fmt.Sprintf(`{"service":%q,"address":%q,"ttl":600}`, service, r.URL))
			if code != http.StatusCreated {
				t.Fatalf("register %s = %d %s", r.URL, code, body)
			}
		}
	}
	register("killed", killed)
	register("checked", checked)

	t.Run("killed replica", func(t *testing.T) {
		if failed := traffic(t, 30, n.proxy+"/killed/x"); failed != 0 {
			t.Fatalf("%d of 30 GETs failed with every replica up", failed)
		}
		killed[2].Close()
		if failed := traffic(t, 60, n.proxy+"/killed/x"); failed != 0 {
			t.Errorf("%d of 60 GETs failed after a replica was killed, want 0", failed)
		}
		row := n.replicas(t, "killed")[killed[2].URL]
		if row.State != "ejected" || row.LastError == "" || row.EjectedUntil.IsZero() || row.Manual {
			t.Errorf("killed replica = %+v, want ejected by its breaker with a last error", row)
		}
		out, _, code := n.cli(t, "get", "replicas", "--service", "killed")
		if code != 0 || !strings.Contains(out, "EJECTED-UNTIL") || !strings.Contains(out, "connection refused") {
			t.Errorf("gatehouse get replicas (table) = exit %d:\n%s\nwant the ejection and its last error", code, out)
		}
	})

	t.Run("manual eject and restore", func(t *testing.T) {
		target := n.replicas(t, "manual")[manual[1].URL]
		if target.ID == "" {
			t.Fatalf("no replica with address %s in gatehouse get replicas", manual[1].URL)
		}
		out, errOut, code := n.cli(t, "eject", "--service", "manual", target.ID, "--for", "60s")
		if code != 0 || !strings.Contains(out, "ejected until") {
			t.Fatalf("gatehouse eject = exit %d\n%s%s", code, out, errOut)
		}
		if row := n.replicas(t, "manual")[manual[1].URL]; row.State != "ejected" || !row.Manual {
			t.Errorf("after gatehouse eject: %+v, want ejected by hand", row)
		}
		resetHits(manual[:]...)
		if failed := traffic(t, 30, n.proxy+"/manual/x"); failed != 0 {
			t.Errorf("%d of 30 GETs failed with one replica ejected by hand", failed)
		}
		if got := manual[1].hits.Load(); got != 0 {
			t.Errorf("ejected replica got %d requests, want 0", got)
		}

		out, errOut, code = n.cli(t, "restore", "--service", "manual", target.ID)
		if code != 0 || !strings.Contains(out, "restored") {
			t.Fatalf("gatehouse restore = exit %d\n%s%s", code, out, errOut)
		}
		if row := n.replicas(t, "manual")[manual[1].URL]; row.State != "healthy" || row.Manual {
			t.Errorf("after gatehouse restore: %+v, want healthy", row)
		}
		resetHits(manual[:]...)
		traffic(t, 30, n.proxy+"/manual/x")
		if got := manual[1].hits.Load(); got < 5 {
			t.Errorf("restored replica got %d of 30 requests, want its share", got)
		}

		_, errOut, code = n.cli(t, "eject", "--service", "manual", "no-such-replica")
		if code != 1 || !strings.Contains(errOut, `no replica "no-such-replica"`) {
			t.Errorf("gatehouse eject of an unknown replica = exit %d: %s, want 1 naming it", code, errOut)
		}
	})

	t.Run("active health check", func(t *testing.T) {
		sick := checked[0]
		poll(t, "health checks to run", func() bool { return sick.healthy.Load() > 0 })
		sick.sick.Store(true)
		poll(t, "the replica failing its health check to be unhealthy", func() bool {
			return n.replicas(t, "checked")[sick.URL].State == "unhealthy"
		})
		if row := n.replicas(t, "checked")[sick.URL]; row.Health == nil || row.Health.Healthy {
			t.Errorf("health of the sick replica = %+v, want a failed check", row.Health)
		}
		resetHits(checked[:]...)
		if failed := traffic(t, 30, n.proxy+"/checked/x"); failed != 0 {
			t.Errorf("%d of 30 GETs failed with one replica unhealthy", failed)
		}
		if got := sick.hits.Load(); got != 0 {
			t.Errorf("unhealthy replica got %d requests, want 0", got)
		}
		sick.sick.Store(false)
		poll(t, "the replica to pass its health check again", func() bool {
			return n.replicas(t, "checked")[sick.URL].State == "healthy"
		})
		traffic(t, 30, n.proxy+"/checked/x")
		if sick.hits.Load() == 0 {
			t.Errorf("replica healthy again got no requests")
		}
	})
}
