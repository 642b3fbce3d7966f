package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/artifact/miniotest"
	"github.com/gatehouse-gw/gatehouse/internal/store/redisstore/redistest"
)

// syncVars is the environment of synchronized mode on redisURL, with a
// fresh bucket on the shared MinIO server.
func syncVars(t testing.TB, redisURL string) []string {
	t.Helper()
	s3 := miniotest.Shared(t)
	return []string{
		"SYNC_REDIS_URL=" + redisURL,
		"SYNC_S3_HOST=" + s3.Endpoint,
		"SYNC_S3_REGION=us-east-1",
		"SYNC_S3_ACCESS_KEY=" + s3.AccessKey,
		"SYNC_S3_SECRET_KEY=" + s3.SecretKey,
		"SYNC_S3_BUCKET=" + s3.NewBucket(t),
		"SYNC_S3_PATH_STYLE=true",
	}
}

// startCluster starts n gateway processes sharing env's synchronized mode,
// each with its own data directory (the artifact cache).
func startCluster(t testing.TB, n int, env []string) []*node {
	t.Helper()
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(t, t.TempDir(), append(env, fmt.Sprintf("NODE_ID=gw%d", i+1)))
	}
	return nodes
}

// clusterOf runs `gatehouse cluster -o json` on n.
func clusterOf(t *testing.T, n *node) clusterBody {
	t.Helper()
	out, errOut, code := n.cli(t, "cluster", "-o", "json")
	if code != 0 {
		t.Fatalf("gatehouse cluster = exit %d: %s", code, errOut)
	}
	var body clusterBody
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		t.Fatalf("gatehouse cluster -o json: %v\n%s", err, out)
	}
	return body
}

var appliedOnAll = regexp.MustCompile(`revision (\d+) applied on all (\d+) live instances in (\S+)`)

// applyWait applies cfg through n with --wait and returns the propagation
// time the CLI reported.
func applyWait(t *testing.T, n *node, cfg string, instances int) string {
	t.Helper()
	out, errOut, code := n.cli(t, "apply", "-f", writeFile(t, "gatehouse.yaml", cfg), "--wait", "--wait-timeout", "20s")
	m := appliedOnAll.FindStringSubmatch(out)
	if code != 0 || m == nil || m[2] != fmt.Sprint(instances) {
		t.Fatalf("apply --wait = exit %d\nstdout: %s\nstderr: %s\nwant it applied on all %d instances", code, out, errOut, instances)
	}
	return m[3]
}

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	return httpDo(t, http.MethodGet, url, "", header...)
}

const clusterConfig = `
services:
  - name: echo
    targets: [{url: "%s"}]
  - name: pool
routes:
  - name: echo
    service: echo
    paths: ["/echo"]
  - name: keyed
    service: echo
    paths: ["/keyed"]
    auth: {api_key: true}
  - name: limited
    service: echo
    paths: ["/limited"]
    rate_limit: {requests: 30, per: 1m}
  - name: pool
    service: pool
    paths: ["/pool"]
%s`

func TestClusterOnRedis(t *testing.T) {
	redis := redistest.Start(t, redistest.Config{})
	env := syncVars(t, "redis://"+redis.Addr+"/3")
	nodes := startCluster(t, 3, env)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "echo") }))
	t.Cleanup(echo.Close)

	took := applyWait(t, nodes[0], fmt.Sprintf(clusterConfig, echo.URL, ""), 3)
	t.Logf("config change through gw1 applied by all 3 instances in %s (apply --wait, polling every %s)", took, waitPoll)
	for i, n := range nodes {
		if code, body := get(t, n.proxy+"/echo"); code != 200 || body != "echo" {
			t.Fatalf("gw%d GET /echo = %d %q after apply --wait on gw1", i+1, code, body)
		}
	}
	body := clusterOf(t, nodes[2])
	if len(body.Members) != 3 || body.Error != "" {
		t.Fatalf("gatehouse cluster on gw3 = %+v, want 3 members", body)
	}
	for _, m := range body.Members {
		if m.Mode != "redis" || m.Status != "ready" || m.AppliedRevision == 0 {
			t.Errorf("member %+v: want mode redis, ready, a revision", m)
		}
	}

	t.Run("a key created on one instance works on the others", func(t *testing.T) {
		out, errOut, code := keysCLI(t, nodes[0], "k3y-from-gw1-0123456789", "keys", "create", "--import-stdin")
		if code != 0 {
			t.Fatalf("keys create = exit %d: %s%s", code, out, errOut)
		}
		for i, n := range nodes {
			poll(t, fmt.Sprintf("key valid on gw%d", i+1), func() bool {
				code, _ := get(t, n.proxy+"/keyed", "Authorization", "Bearer k3y-from-gw1-0123456789")
				return code == 200
			})
			if code, _ := get(t, n.proxy+"/keyed", "Authorization", "Bearer not-a-key-0123456789"); code != 401 {
				t.Errorf("gw%d: unknown key = %d, want 401 while Redis is up", i+1, code)
			}
		}
	})

	t.Run("a replica ejected via gw1 is avoided by gw2", func(t *testing.T) {
		a, b := startReplica(t, "a"), startReplica(t, "b")
		for _, r := range []*replicaServer{a, b} {
			if out, errOut, code := nodes[0].cli(t, "register", "--service", "pool", "--address", r.URL, "--ttl", "60s"); code != 0 {
				t.Fatalf("register = exit %d: %s%s", code, out, errOut)
			}
		}
		poll(t, "both replicas routable on gw2", func() bool { return len(nodes[1].replicas(t, "pool")) == 2 })
		target := nodes[0].replicas(t, "pool")[a.URL]
		if out, errOut, code := nodes[0].cli(t, "eject", "--service", "pool", target.ID, "--for", "60s"); code != 0 {
			t.Fatalf("eject via gw1 = exit %d: %s%s", code, out, errOut)
		}
		poll(t, "ejection seen by gw2", func() bool { return nodes[1].replicas(t, "pool")[a.URL].State == "ejected" })
		resetHits(a, b)
		if failed := traffic(t, 30, nodes[1].proxy+"/pool"); failed != 0 {
			t.Errorf("%d of 30 requests through gw2 failed", failed)
		}
		if a.hits.Load() != 0 || b.hits.Load() != 30 {
			t.Errorf("through gw2: ejected replica got %d, other %d; want 0 and 30", a.hits.Load(), b.hits.Load())
		}
	})

	t.Run("a cluster-wide rate limit holds across 3 instances", func(t *testing.T) {
		var allowed, limited atomic.Int64
		var wg sync.WaitGroup
		for i := range 90 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, _ := get(t, nodes[i%3].proxy+"/limited")
				switch code {
				case 200:
					allowed.Add(1)
				case 429:
					limited.Add(1)
				}
			}()
		}
		wg.Wait()
		t.Logf("limit 30/min over 3 instances, 90 requests: %d allowed, %d limited", allowed.Load(), limited.Load())
		// Exactly 30 while every decision is made in Redis. A decision
		// Redis could not make in time (a loaded host) falls back to the
		// instance's own share of the limit, 30/3, which bounds the excess.
		fellBack := 0
		for _, n := range nodes {
			if strings.Contains(n.logs.String(), "deciding with the local fallback") {
				fellBack++
			}
		}
		want := int64(30)
		if fellBack > 0 {
			t.Logf("%d instances fell back to their local share for some decisions", fellBack)
		}
		if a := allowed.Load(); a < want || a > want+int64(fellBack*10) || a+limited.Load() != 90 {
			t.Errorf("allowed %d, limited %d; want 30 allowed (up to 10 more per instance that fell back: %d did), the rest 429", a, limited.Load(), fellBack)
		}
	})

	t.Run("an artifact stored through gw1 is served by every instance", func(t *testing.T) {
		const doc = `{"openapi":"3.1.0","info":{"title":"echo","version":"1"}}`
		code, body := httpDo(t, http.MethodPost, nodes[0].admin+"/artifacts", doc, "Content-Type", "application/json")
		var info struct {
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		}
		if err := json.Unmarshal([]byte(body), &info); code != 201 || err != nil || len(info.Digest) != 64 || info.Size != int64(len(doc)) {
			t.Fatalf("POST /artifacts = %d %s", code, body)
		}
		extra := fmt.Sprintf(`  - name: openapi
    paths: ["/openapi.json"]
    respond: {artifact: "%s"}
`, info.Digest)
		applyWait(t, nodes[1], fmt.Sprintf(clusterConfig, echo.URL, extra), 3)
		for i, n := range nodes {
			if code, got := get(t, n.proxy+"/openapi.json"); code != 200 || got != doc {
				t.Errorf("gw%d GET /openapi.json = %d %q, want the artifact", i+1, code, got)
			}
			if code, got := get(t, n.admin+"/artifacts/"+info.Digest); code != 200 || got != doc {
				t.Errorf("gw%d GET /artifacts/{digest} = %d %q", i+1, code, got)
			}
		}
	})

	t.Run("a restarted instance catches up", func(t *testing.T) {
		if code := nodes[2].stop(); code != 0 {
			t.Fatalf("gw3 exit code %d", code)
		}
		poll(t, "gw3 leaves the cluster list", func() bool { return len(clusterOf(t, nodes[0]).Members) == 2 })
		extra := `  - name: added-while-down
    service: echo
    paths: ["/added"]
`
		applyWait(t, nodes[0], fmt.Sprintf(clusterConfig, echo.URL, extra), 2)
		nodes[2] = startNode(t, t.TempDir(), append(env, "NODE_ID=gw3"))
		if code, body := get(t, nodes[2].proxy+"/added"); code != 200 || body != "echo" {
			t.Fatalf("restarted gw3 GET /added = %d %q, want the route applied while it was down", code, body)
		}
		poll(t, "3 members again", func() bool { return len(clusterOf(t, nodes[0]).Members) == 3 })
	})

	t.Run("Redis unreachable: serving goes on from the last config and known keys", func(t *testing.T) {
		redis.Pause(t) // resumed by t's cleanup on failure
		n := nodes[1]
		poll(t, "gw2 reports degraded", func() bool {
			_, body := get(t, n.admin+"/readyz")
			return strings.Contains(body, `"degraded"`)
		})
		if code, body := get(t, n.admin+"/readyz"); code != 200 {
			t.Errorf("readyz while degraded = %d %s, want 200 (still serving)", code, body)
		}
		for range 20 {
			if code, body := get(t, n.proxy+"/echo"); code != 200 {
				t.Fatalf("GET /echo with Redis hung = %d %s", code, body)
			}
			if code, body := get(t, n.proxy+"/keyed", "Authorization", "Bearer k3y-from-gw1-0123456789"); code != 200 {
				t.Fatalf("known key with Redis hung = %d %s, want 200 from the local cache", code, body)
			}
		}
		if code, body := get(t, n.proxy+"/keyed", "Authorization", "Bearer never-seen-0123456789"); code != 503 {
			t.Errorf("never-seen key with Redis hung = %d %s, want 503 (not 401)", code, body)
		}
		// The rate limit is decided locally (this instance's share) rather
		// than waiting on Redis for every request.
		for range 5 {
			if code, body := get(t, n.proxy+"/limited"); code != 200 && code != 429 {
				t.Errorf("rate-limited route with Redis hung = %d %s, want 200 or 429", code, body)
			}
		}
		if !strings.Contains(n.logs.String(), "deciding with the local fallback") {
			t.Errorf("no rate limit fell back to the local share while Redis hung")
		}
		// A change cannot be stored: a clear 503, not a 500.
		code, body := httpDo(t, http.MethodPost, n.admin+"/register", `{"service":"pool","address":"http://127.0.0.1:1"}`, "Content-Type", "application/json")
		if code != 503 || !strings.Contains(body, "shared store did not answer") {
			t.Errorf("POST /register with Redis hung = %d %s, want 503 saying the store did not answer", code, body)
		}
		redis.Resume()
		poll(t, "gw2 ready again", func() bool {
			_, body := get(t, n.admin+"/readyz")
			return strings.Contains(body, `"ready"`)
		})
		if code, _ := get(t, n.proxy+"/keyed", "Authorization", "Bearer never-seen-0123456789"); code != 401 {
			t.Errorf("unknown key after Redis came back = %d, want 401", code)
		}
	})
}

// BenchmarkConfigPropagation measures how long a configuration change
// takes to be served by 3 instances on Redis: from the return of PUT
// /config on one instance (in turn) until each instance's own /status
// shows the new revision (polled every millisecond). Reported as
// ms/propagation (mean) and max-ms (worst).
//
//	go test -run '^$' -bench ConfigPropagation ./cmd/gatehouse
func BenchmarkConfigPropagation(b *testing.B) {
	redis := redistest.Start(b, redistest.Config{})
	nodes := startCluster(b, 3, syncVars(b, "redis://"+redis.Addr+"/4"))
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "echo") }))
	b.Cleanup(echo.Close)
	client := &http.Client{Timeout: 5 * time.Second}
	applied := func(n *node) int64 {
		resp, err := client.Get(n.admin + "/status")
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var s struct {
			AppliedRevision int64 `json:"applied_revision"`
		}
		json.NewDecoder(resp.Body).Decode(&s)
		return s.AppliedRevision
	}
	var total, worst time.Duration
	b.ResetTimer()
	for i := range b.N {
		cfg := fmt.Sprintf(clusterConfig, echo.URL, fmt.Sprintf("  - {name: r%d, service: echo, paths: [\"/r%d\"]}\n", i, i))
		req, _ := http.NewRequest(http.MethodPut, nodes[i%3].admin+"/config", strings.NewReader(cfg))
		req.Header.Set("Content-Type", "application/yaml")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var out struct {
			Revision int64 `json:"revision"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 200 || out.Revision == 0 {
			b.Fatalf("PUT /config = %d", resp.StatusCode)
		}
		start := time.Now()
		for _, n := range nodes {
			deadline := start.Add(15 * time.Second)
			for applied(n) < out.Revision {
				if time.Now().After(deadline) {
					b.Fatalf("revision %d not applied on %s within 15s", out.Revision, n.admin)
				}
				time.Sleep(time.Millisecond)
			}
		}
		d := time.Since(start)
		total += d
		worst = max(worst, d)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/propagation")
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op") // the wall time per op includes the PUT; the metrics above are the point
}

// TestArtifactsSingleInstance: without SYNC_* variables artifacts live in
// --data-dir and survive a restart.
func TestArtifactsSingleInstance(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, nil)
	const doc = "openapi: 3.1.0\n"
	code, body := httpDo(t, http.MethodPost, n.admin+"/artifacts", doc, "Content-Type", "application/yaml")
	var info struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal([]byte(body), &info); code != 201 || err != nil || len(info.Digest) != 64 {
		t.Fatalf("POST /artifacts = %d %s", code, body)
	}
	cfg := fmt.Sprintf("routes:\n  - name: spec\n    paths: [\"/openapi.yaml\"]\n    respond: {artifact: %q}\n", info.Digest)
	if out, errOut, code := n.cli(t, "apply", "-f", writeFile(t, "c.yaml", cfg), "--wait"); code != 0 || !strings.Contains(out, "applied on all 1 live instances") {
		t.Fatalf("apply --wait = exit %d: %s%s", code, out, errOut)
	}
	if n.stop() != 0 {
		t.Fatal("stop failed")
	}
	n = startNode(t, dir, nil)
	req, _ := http.NewRequest(http.MethodGet, n.proxy+"/openapi.yaml", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != doc || resp.Header.Get("Content-Type") != "application/yaml" || resp.Header.Get("ETag") != `"`+info.Digest+`"` {
		t.Fatalf("GET /openapi.yaml after restart = %d %q %v", resp.StatusCode, got, resp.Header)
	}
	out, _, code := n.cli(t, "cluster")
	if code != 0 || !strings.Contains(out, "single-instance") || !strings.Contains(out, "ready") {
		t.Errorf("gatehouse cluster = exit %d:\n%s", code, out)
	}
}

// TestSystemsShareOneRedisAndOneS3: two gateways on one Redis (databases 5
// and 6) and one MinIO (a bucket each) see nothing of each other.
func TestSystemsShareOneRedisAndOneS3(t *testing.T) {
	redis := redistest.Start(t, redistest.Config{})
	a := startNode(t, t.TempDir(), append(syncVars(t, "redis://"+redis.Addr+"/5"), "NODE_ID=a"))
	b := startNode(t, t.TempDir(), append(syncVars(t, "redis://"+redis.Addr+"/6"), "NODE_ID=b"))
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "echo") }))
	t.Cleanup(echo.Close)
	applyWait(t, a, fmt.Sprintf(clusterConfig, echo.URL, ""), 1)
	if code, _ := get(t, a.proxy+"/echo"); code != 200 {
		t.Fatalf("system a GET /echo = %d", code)
	}
	if code, _ := get(t, b.proxy+"/echo"); code != 404 {
		t.Errorf("system b GET /echo = %d, want 404: it must not see a's configuration", code)
	}
	if ms := clusterOf(t, b).Members; len(ms) != 1 || ms[0].ID != "b" {
		t.Errorf("system b's cluster = %+v, want b alone", ms)
	}
	code, body := httpDo(t, http.MethodPost, a.admin+"/artifacts", "only in a", "Content-Type", "text/plain")
	var info struct {
		Digest string `json:"digest"`
	}
	if json.Unmarshal([]byte(body), &info); code != 201 {
		t.Fatalf("POST /artifacts = %d %s", code, body)
	}
	if code, _ := get(t, b.admin+"/artifacts/"+info.Digest); code != 404 {
		t.Errorf("system b GET a's artifact = %d, want 404", code)
	}
	if out, errOut, code := keysCLI(t, a, "key-of-system-a-12345", "keys", "create", "--import-stdin"); code != 0 {
		t.Fatalf("keys create = exit %d: %s%s", code, out, errOut)
	}
	for _, n := range []*node{a, b} {
		out, errOut, code := n.cli(t, "keys", "list", "-o", "json")
		var list struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil {
			t.Fatalf("keys list -o json = exit %d %v: %s%s", code, err, out, errOut)
		}
		if want := map[*node]int{a: 1, b: 0}[n]; len(list.Keys) != want {
			t.Errorf("%s lists %d keys, want %d", n.admin, len(list.Keys), want)
		}
	}
}

// TestClusterRefusesAnotherKeySecret: an instance given a different
// GATEHOUSE_KEY_SECRET than the cluster uses refuses to start, without
// showing either secret.
func TestClusterRefusesAnotherKeySecret(t *testing.T) {
	redis := redistest.Start(t, redistest.Config{})
	env := syncVars(t, "redis://"+redis.Addr+"/7")
	const first, second = "first-secret-0123456789abcdef", "other-secret-0123456789abcdef"
	startNode(t, t.TempDir(), append(env, "GATEHOUSE_KEY_SECRET="+first))
	startNode(t, t.TempDir(), append(env, "GATEHOUSE_KEY_SECRET="+first)) // the same: fine

	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	cmd.Env = append(append(cleanEnv(), env...), "GATEHOUSE_KEY_SECRET="+second)
	cmd.WaitDelay = time.Second
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("an instance with another key secret started:\n%s", out)
	}
	if !strings.Contains(string(out), "not the one the other instances of this cluster use") {
		t.Errorf("refusal does not say why:\n%s", out)
	}
	if strings.Contains(string(out), first) || strings.Contains(string(out), second) {
		t.Errorf("refusal shows a secret:\n%s", out)
	}
}
