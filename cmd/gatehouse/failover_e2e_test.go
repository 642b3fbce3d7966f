package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store/redisstore/redistest"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// addrOf strips the scheme of a node's URL.
func addrOf(u string) string { return strings.TrimPrefix(u, "http://") }

// startHAProxy runs haproxy in front of the nodes' proxy listeners, round
// robin, health-checking each node's /readyz on its admin listener, and
// returns its URL. t's cleanup stops it.
func startHAProxy(t *testing.T, nodes []*node) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy not found (%v): run make deps", err)
	}
	port := freePort(t)
	var b strings.Builder
	fmt.Fprintf(&b, `global
  maxconn 2000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 2
  option redispatch
frontend gatehouse
  bind 127.0.0.1:%d
  default_backend gateways
backend gateways
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
`, port)
	for i, n := range nodes {
		_, adminPort, _ := strings.Cut(addrOf(n.admin), ":")
		fmt.Fprintf(&b, "  server gw%d %s check port %s inter 500ms\n", i+1, addrOf(n.proxy), adminPort)
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", cfg, "-db")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addrOf(url), time.Second)
		if err == nil {
			c.Close()
			return url
		}
		select {
		case <-done:
			t.Fatalf("haproxy exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not listen on %s within 10s: %s", url, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// load sends authenticated GETs to url from a few workers until stop is
// closed (or 2000 requests per worker), counting answers other than 200.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   map[string]int
	wg         sync.WaitGroup
	stop       chan struct{}
}

func startLoad(url, key string, workers int) *load {
	l := &load{failures: map[string]int{}, stop: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for range 2000 {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", key)
				resp, err := client.Do(req)
				var why string
				if err != nil {
					why = err.Error()
				} else {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						why = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
					}
				}
				if why == "" {
					l.ok.Add(1)
				} else {
					l.failed.Add(1)
					l.mu.Lock()
					l.failures[why]++
					l.mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

// TestSentinelFailoverBehindHAProxy is the Tyk walk-through: three
// gateways behind HAProxy on Redis Sentinel (a master, two replicas, three
// sentinels, quorum 2); the master hangs (SIGSTOP) under load, the
// sentinels promote a replica, and not one authenticated request fails.
func TestSentinelFailoverBehindHAProxy(t *testing.T) {
	sc := redistest.StartSentinel(t, redistest.SentinelConfig{})
	url := "redis+sentinel://" + strings.Join(sc.Sentinels, ",") + "/" + sc.MasterName + "/2"
	nodes := startCluster(t, 3, syncVars(t, url))
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "echo") }))
	t.Cleanup(echo.Close)
	applyWait(t, nodes[0], fmt.Sprintf(clusterConfig, echo.URL, ""), 3)
	if out, errOut, code := keysCLI(t, nodes[0], "testkey", "keys", "create", "--name", "tyk", "--import-stdin"); code != 0 {
		t.Fatalf("import testkey = exit %d: %s%s", code, out, errOut)
	}
	lb := startHAProxy(t, nodes)
	for i, n := range nodes {
		poll(t, fmt.Sprintf("testkey valid on gw%d", i+1), func() bool {
			code, _ := get(t, n.proxy+"/keyed", "Authorization", "testkey")
			return code == 200
		})
	}

	l := startLoad(lb+"/keyed", "testkey", 4)
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	master, err := sc.CurrentMaster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hung := time.Now()
	sc.ServerAt(master).Pause(t)
	newMaster, err := sc.WaitFailover(ctx, master)
	if err != nil {
		l.finish()
		t.Fatalf("no failover: %v", err)
	}
	tookOver := time.Since(hung)

	// Writes go to the new master: a key created after the failover
	// authenticates through the load balancer on every gateway.
	poll(t, "a key created after the failover", func() bool {
		_, _, code := keysCLI(t, nodes[1], "key-after-failover-123456", "keys", "create", "--import-stdin")
		return code == 0
	})
	for i, n := range nodes {
		poll(t, fmt.Sprintf("new key valid on gw%d", i+1), func() bool {
			code, _ := get(t, n.proxy+"/keyed", "Authorization", "key-after-failover-123456")
			return code == 200
		})
	}
	time.Sleep(time.Second)
	l.finish()
	t.Logf("failover %s -> %s took %s; authenticated requests through HAProxy: %d ok, %d failed %v",
		master, newMaster, tookOver.Round(time.Millisecond), l.ok.Load(), l.failed.Load(), l.failures)
	if l.failed.Load() != 0 {
		t.Errorf("%d authenticated requests failed during the failover: %v", l.failed.Load(), l.failures)
	}
	if l.ok.Load() < 100 {
		t.Errorf("only %d requests went through: the load did not run across the failover", l.ok.Load())
	}
}
