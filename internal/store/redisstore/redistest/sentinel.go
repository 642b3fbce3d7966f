package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// sentinelMasterName is the name the sentinels monitor the master under.
	sentinelMasterName = "gatehouse"
	// sentinelReadyTimeout bounds how long the sentinels may take to find
	// the replicas and each other: they announce themselves every 2s.
	sentinelReadyTimeout = 20 * time.Second
	// clientTimeout is the dial, read and write timeout of FailoverClient,
	// as a Gatehouse deployment sets them.
	clientTimeout = 2 * time.Second
)

// SentinelConfig configures a Sentinel cluster. The zero value is a
// cluster without a password that fails over a master that has not
// answered for 1s.
type SentinelConfig struct {
	// Password, when set, is required by the servers (requirepass and
	// masterauth) and given to the sentinels for them (auth-pass). The
	// sentinels themselves take no password.
	Password string
	// DownAfter is how long the master may not answer before the
	// sentinels think it down (down-after-milliseconds). Zero means 1s.
	DownAfter time.Duration
	// FailoverTimeout is the sentinels' failover-timeout: how long a
	// failover may take, and twice it how long before another attempt
	// after a failed one. Zero means 5s.
	FailoverTimeout time.Duration
}

// SentinelCluster is a running Sentinel deployment: a master, two replicas
// of it and three sentinels (quorum 2) watching them, all on loopback.
// Its methods are safe for concurrent use.
type SentinelCluster struct {
	// MasterName is the name the sentinels know the master by.
	MasterName string
	// Master and Replicas are the servers as started; after a failover,
	// CurrentMaster tells which is master.
	Master   *Server
	Replicas []*Server
	// Sentinels are the host:port addresses of the three sentinels.
	Sentinels []string

	password  string
	t         testing.TB
	sentinels []*Server
}

// StartSentinel starts a master, two replicas and three sentinels, and
// returns once every sentinel sees the master, both replicas and the two
// other sentinels, and agrees that a quorum can fail over. t's cleanup
// stops every process, and logs what each wrote if t failed. It takes
// about two seconds (sentinels announce themselves to one another every
// 2s).
func StartSentinel(t testing.TB, cfg SentinelConfig) *SentinelCluster {
	t.Helper()
	bin := lookPath(t)
	if cfg.DownAfter == 0 {
		cfg.DownAfter = time.Second
	}
	if cfg.FailoverTimeout == 0 {
		cfg.FailoverTimeout = 5 * time.Second
	}
	c := &SentinelCluster{MasterName: sentinelMasterName, password: cfg.Password, t: t}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, p := range c.processes() {
			t.Logf("%s log:\n%s", p.name, p.srv.Log())
		}
	})
	startServer := func(cfg Config) *Server {
		t.Helper()
		s, err := start(bin, cfg, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.stop)
		return s
	}
	c.Master = startServer(Config{Password: cfg.Password})
	for range 2 {
		r := startServer(Config{Password: cfg.Password, ReplicaOf: c.Master.Addr})
		c.Replicas = append(c.Replicas, r)
		if err := r.waitLink(); err != nil {
			t.Fatal(err)
		}
	}
	_, masterPort, _ := net.SplitHostPort(c.Master.Addr)
	for range 3 {
		dir := t.TempDir()
		s, err := onFreePort(func(port int) (*Server, error) {
			conf := []string{
				fmt.Sprintf("port %d", port),
				"bind 127.0.0.1",
				"dir " + dir,
				fmt.Sprintf("sentinel monitor %s 127.0.0.1 %s 2", c.MasterName, masterPort),
				fmt.Sprintf("sentinel down-after-milliseconds %s %d", c.MasterName, cfg.DownAfter.Milliseconds()),
				fmt.Sprintf("sentinel failover-timeout %s %d", c.MasterName, cfg.FailoverTimeout.Milliseconds()),
				fmt.Sprintf("sentinel parallel-syncs %s 2", c.MasterName),
			}
			if cfg.Password != "" {
				conf = append(conf, fmt.Sprintf("sentinel auth-pass %s %s", c.MasterName, cfg.Password))
			}
			// Sentinel rewrites its configuration file as it learns (the
			// replicas, the other sentinels, a failover), so it must be a
			// writable file of its own.
			path := filepath.Join(dir, "sentinel.conf")
			if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
				return nil, err
			}
			return launch(bin, []string{path, "--sentinel"}, port, "")
		})
		if err != nil {
			t.Fatalf("start redis-sentinel: %v", err)
		}
		t.Cleanup(s.stop)
		c.sentinels = append(c.sentinels, s)
		c.Sentinels = append(c.Sentinels, s.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sentinelReadyTimeout)
	defer cancel()
	if err := c.waitReady(ctx); err != nil {
		t.Fatalf("sentinels not ready within %v: %v", sentinelReadyTimeout, err)
	}
	return c
}

type process struct {
	name string
	srv  *Server
}

// processes lists every process of the cluster, named by role and address.
func (c *SentinelCluster) processes() []process {
	var ps []process
	if c.Master != nil {
		ps = append(ps, process{"master (as started) " + c.Master.Addr, c.Master})
	}
	for _, r := range c.Replicas {
		ps = append(ps, process{"replica (as started) " + r.Addr, r})
	}
	for _, s := range c.sentinels {
		ps = append(ps, process{"sentinel " + s.Addr, s})
	}
	return ps
}

// waitReady polls every sentinel until each knows both replicas (linked to
// the master), the two other sentinels, and reaches its quorum.
func (c *SentinelCluster) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

func (c *SentinelCluster) ready(ctx context.Context) error {
	var errs []error
	for _, addr := range c.Sentinels {
		sc := c.sentinelClient(addr)
		replicas, err := sc.Replicas(ctx, c.MasterName).Result()
		if err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s: SENTINEL REPLICAS: %w", addr, err))
		} else if up := upReplicas(replicas); up != len(c.Replicas) {
			errs = append(errs, fmt.Errorf("sentinel %s sees %d replicas up, want %d: %v", addr, up, len(c.Replicas), replicas))
		}
		if others, err := sc.Sentinels(ctx, c.MasterName).Result(); err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s: SENTINEL SENTINELS: %w", addr, err))
		} else if len(others) != len(c.Sentinels)-1 {
			errs = append(errs, fmt.Errorf("sentinel %s knows %d other sentinels, want %d", addr, len(others), len(c.Sentinels)-1))
		}
		if err := sc.CkQuorum(ctx, c.MasterName).Err(); err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s: SENTINEL CKQUORUM: %w", addr, err))
		}
		_ = sc.Close()
	}
	return errors.Join(errs...)
}

// upReplicas counts the replicas a sentinel reports neither down nor
// disconnected, and linked to their master.
func upReplicas(replicas []map[string]string) int {
	n := 0
	for _, r := range replicas {
		if strings.Contains(r["flags"], "down") || strings.Contains(r["flags"], "disconnected") || r["master-link-status"] != "ok" {
			continue
		}
		n++
	}
	return n
}

func (c *SentinelCluster) sentinelClient(addr string) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{
		Addr:         addr,
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		MaxRetries:   -1,
	})
}

// CurrentMaster returns the host:port of the master, as the first sentinel
// that answers reports it (SENTINEL GET-MASTER-ADDR-BY-NAME).
func (c *SentinelCluster) CurrentMaster(ctx context.Context) (string, error) {
	var errs []error
	for _, addr := range c.Sentinels {
		master, err := c.masterFrom(ctx, addr)
		if err == nil {
			return master, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("no sentinel reported the master: %w", errors.Join(errs...))
}

func (c *SentinelCluster) masterFrom(ctx context.Context, sentinel string) (string, error) {
	sc := c.sentinelClient(sentinel)
	defer sc.Close()
	hp, err := sc.GetMasterAddrByName(ctx, c.MasterName).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s: GET-MASTER-ADDR-BY-NAME: %w", sentinel, err)
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s: GET-MASTER-ADDR-BY-NAME = %q, want host and port", sentinel, hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// ServerAt returns the cluster's server (master or replica) at addr, or nil.
func (c *SentinelCluster) ServerAt(addr string) *Server {
	for _, s := range append([]*Server{c.Master}, c.Replicas...) {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// WaitFailover waits until every sentinel reports the same master other
// than from, and that server answers ROLE as a master, and returns its
// address. It fails when ctx ends first.
func (c *SentinelCluster) WaitFailover(ctx context.Context, from string) (string, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		addr, err := c.failedOver(ctx, from)
		if err == nil {
			return addr, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no failover from %s: %w (last: %w)", from, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func (c *SentinelCluster) failedOver(ctx context.Context, from string) (string, error) {
	var master string
	for _, s := range c.Sentinels {
		addr, err := c.masterFrom(ctx, s)
		switch {
		case err != nil:
			return "", err
		case addr == from:
			return "", fmt.Errorf("sentinel %s still reports master %s", s, from)
		case master != "" && addr != master:
			return "", fmt.Errorf("sentinels disagree: %s and %s", master, addr)
		}
		master = addr
	}
	rc := redis.NewClient(&redis.Options{Addr: master, Password: c.password, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer rc.Close()
	role, err := rc.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", fmt.Errorf("ROLE on %s: %w", master, err)
	}
	if len(role) == 0 || role[0] != "master" {
		return "", fmt.Errorf("ROLE on %s = %v, want master", master, role)
	}
	return master, nil
}

// FailoverClient returns a Sentinel client (redis.NewFailoverClient) of
// database db with the settings a Gatehouse deployment uses: 2s dial,
// read and write timeouts, context deadlines honoured, and no retries. The
// cleanup of StartSentinel's t closes it.
func (c *SentinelCluster) FailoverClient(db int) *redis.Client {
	rc := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            c.MasterName,
		SentinelAddrs:         c.Sentinels,
		Password:              c.password,
		DB:                    db,
		DialTimeout:           clientTimeout,
		ReadTimeout:           clientTimeout,
		WriteTimeout:          clientTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
	c.t.Cleanup(func() { _ = rc.Close() })
	return rc
}
