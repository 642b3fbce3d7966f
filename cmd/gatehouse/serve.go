package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/apikey"
	"github.com/gatehouse-gw/gatehouse/internal/artifact"
	"github.com/gatehouse-gw/gatehouse/internal/cluster"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/controller"
	"github.com/gatehouse-gw/gatehouse/internal/proxy"
	"github.com/gatehouse-gw/gatehouse/internal/ratelimit"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

func serveCommand(args []string, stdout, stderr io.Writer) error {
	s, err := parseSettings(args, os.Environ(), stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return serve(ctx, s, stdout, stderr)
}

// serve runs the gateway until ctx ends, then drains and returns nil. The
// access log goes to stdout, every other log line to stderr.
func serve(ctx context.Context, s settings, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level(s.logLevel)}))
	s.nodeID = nodeName(s.nodeID)

	var initial *config.Config
	if s.configFile != "" {
		data, err := os.ReadFile(s.configFile)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		cfg, err := config.Parse(data)
		if err != nil {
			return fmt.Errorf("--config %s: %w", s.configFile, err)
		}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("--config %s is invalid:\n%w", s.configFile, err)
		}
		initial = &cfg
	}
	var tlsConfig *tls.Config
	if s.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(s.tlsCert, s.tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	// Observability: metrics (served on the admin listener's /metrics), the
	// access log on stdout, and tracing (exporting only when an OTEL_*
	// endpoint is set; trace context is propagated either way).
	metrics := telemetry.NewMetrics()
	accessLog := telemetry.NewAccessLog(stdout, s.accessLog)
	tracing, err := telemetry.NewTracing(ctx, s.tracing, log)
	if err != nil {
		return err
	}
	// Flushed last, after the proxy drained (deferred calls run in reverse).
	defer shutdownTracing(tracing, log)

	be, err := openBackend(ctx, s, log)
	if err != nil {
		return err
	}
	defer be.close()
	if s.sync != nil {
		log.Info("synchronized mode", "sync", s.sync)
	}
	st := countingStore{Store: be.store, m: metrics}

	// API keys: the Index is the data plane's view of them, the Manager
	// (behind /keys) writes them and tells the Index of each write at once,
	// so that a revoked key is refused from the next request on.
	var secret []byte
	var secretSource string
	if s.sync == nil {
		secret, secretSource, err = keySecret(s.keySecret, s.dataDir)
	} else {
		secret, secretSource, err = sharedKeySecret(ctx, st, s.keySecret)
	}
	if err != nil {
		return err
	}
	log.Info("api key secret loaded", "source", secretSource)
	keyCfg := apikey.Config{Secret: secret}
	// keys is checked by the proxy on the routes that require a key.
	keys, err := apikey.NewIndex(st, keyCfg, log)
	if err != nil {
		return err
	}
	keyManager, err := apikey.NewManager(st, keys, keyCfg, log)
	if err != nil {
		return err
	}
	// Rate limits are counted in memory (Local, keys "key:<id>" and
	// "route:<name>"); quotas too, flushed to the store every second and
	// once more at shutdown, after the proxy drained.
	local, err := ratelimit.NewLocal(ratelimit.LocalConfig{})
	if err != nil {
		return err
	}
	// In synchronized mode the limits are counted in Redis; while it cannot
	// answer, each instance enforces its share of the limit, the share
	// being one over the live instances (known once membership runs).
	var membersRef atomic.Pointer[cluster.Announcer]
	limiter, err := newLimiter(be, local, func() int {
		if m := membersRef.Load(); m != nil {
			return m.Size()
		}
		return 1
	}, log)
	if err != nil {
		return err
	}
	artifacts, err := openArtifacts(ctx, s)
	if err != nil {
		return err
	}
	quotas, err := ratelimit.NewQuotas(st, ratelimit.QuotaConfig{}, log)
	if err != nil {
		return err
	}

	ctrl, err := controller.New(st, controller.Config{}, log)
	if err != nil {
		return err
	}
	res, err := newResilience(st, log)
	if err != nil {
		return err
	}
	ctrl.OnPublish(res.follow)
	metricsFollow := &metricsFollower{m: metrics, src: ctrl, breakers: res.breakers}
	ctrl.OnPublish(metricsFollow.publish)
	if initial != nil {
		rev, err := ctrl.Update(ctx, func(c *config.Config) error { *c = *initial; return nil })
		if err != nil {
			return fmt.Errorf("apply --config %s: %w", s.configFile, err)
		}
		log.Info("configuration applied from file", "file", s.configFile, "revision", rev)
	}
	if err := ctrl.Refresh(ctx); err != nil {
		return fmt.Errorf("load stored configuration: %w", err)
	}

	px, err := proxy.New(ctrl, proxy.Deps{
		Breakers: res.breakers, Budgets: res.budgets,
		Keys: keys, Limiter: limiter, Quotas: quotas, Artifacts: artifactSource{artifacts},
		Metrics: metrics, AccessLog: accessLog, Tracing: tracing,
	}, proxy.Config{TrustedProxies: s.trusted}, log)
	if err != nil {
		return err
	}
	defer px.Close()

	reg := registry.New(st, registry.Config{})
	status := &serverStatus{ctrl: ctrl, store: be.store}
	proxyLn, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", s.listen, err)
	}
	adminLn, err := net.Listen("tcp", s.adminListen)
	if err != nil {
		proxyLn.Close()
		return fmt.Errorf("--admin-listen %s: %w", s.adminListen, err)
	}
	// Every instance, single or not, announces itself and the revision it
	// serves (GET /cluster, gatehouse apply --wait).
	members, err := cluster.New(st, cluster.Member{
		ID: s.nodeID, Hostname: hostname(), Version: version, Mode: be.mode,
		Proxy: proxyLn.Addr().String(), Admin: adminLn.Addr().String(), Started: time.Now().UTC(),
	}, status.memberState, cluster.Config{}, log)
	if err != nil {
		proxyLn.Close()
		adminLn.Close()
		return err
	}
	ctrl.OnPublish(func(*snapshot.Snapshot) { members.Kick() })
	membersRef.Store(members)
	adminHandler, err := admin.New(admin.Deps{
		Config:   ctrl,
		Registry: refreshingRegistry{reg, ctrl},
		Status:   status,
		Keys:     keyManager,
		Metrics:  metrics.Handler(),
		Replicas: replicaAdmin{src: ctrl, rs: res, proxy: px},
		Cluster:  members,
		// Content-addressed files for respond routes (and OpenAPI
		// documents), in the S3 bucket in synchronized mode.
		Artifacts: artifact.Handler(artifacts, log),
	}, admin.Config{
		AdminToken: s.adminToken, RegisterToken: s.registerToken, Version: version,
		// Scrapers rarely send a bearer token: /metrics is open when only
		// this host can reach the admin listener.
		PublicMetrics: isLoopbackAddr(s.adminListen),
	}, log)
	if err != nil {
		proxyLn.Close()
		adminLn.Close()
		return err
	}

	proxySrv := proxy.NewServer(px, proxy.ServerConfig{TLSConfig: tlsConfig})
	adminSrv := &http.Server{Handler: adminHandler, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}

	log.Info("gatehouse started", "version", version, "mode", be.mode, "node", s.nodeID,
		"proxy", proxyLn.Addr().String(), "admin", adminLn.Addr().String(), "tls", tlsConfig != nil,
		"data_dir", s.dataDir, "revision", ctrl.AppliedRevision(),
		"access_log", accessLog.Enabled(), "tracing", tracing.Enabled())

	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return ctrl.Run(gctx) })
	g.Go(func() error { return keys.Run(gctx) })
	g.Go(func() error { return local.Run(gctx) })
	// gctx ends after the proxy drained (cancelRun below), so the final
	// flush counts every request served.
	g.Go(func() error { return quotas.Run(gctx) })
	g.Go(func() error { return res.syncer.Run(gctx) })
	g.Go(func() error { return res.checker.Run(gctx) })
	g.Go(func() error { return metricsFollow.Run(gctx) })
	g.Go(func() error { return members.Run(gctx) })
	g.Go(func() error {
		var err error
		if tlsConfig != nil {
			err = proxySrv.ServeTLS(proxyLn, "", "")
		} else {
			err = proxySrv.Serve(proxyLn)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("proxy listener: %w", err)
	})
	g.Go(func() error {
		if err := adminSrv.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin listener: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		select {
		case <-ctx.Done():
		case <-gctx.Done():
			return nil
		}
		// Draining: readiness goes false first so load balancers stop
		// sending, then the proxy stops accepting and waits for in-flight
		// requests up to the drain deadline.
		status.draining.Store(true)
		members.Kick()
		log.Info("draining", "timeout", s.drainTimeout.String())
		drainCtx, cancel := context.WithTimeout(context.Background(), s.drainTimeout)
		defer cancel()
		err := proxySrv.Shutdown(drainCtx)
		if err != nil {
			log.Warn("drain deadline reached; closing remaining connections", "error", err)
			proxySrv.Close()
		}
		adminCtx, cancelAdmin := context.WithTimeout(context.Background(), time.Second)
		defer cancelAdmin()
		if err := adminSrv.Shutdown(adminCtx); err != nil {
			adminSrv.Close()
		}
		cancelRun()
		return nil
	})
	err = g.Wait()
	log.Info("gatehouse stopped")
	return err
}

func level(name string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(name)) // validated in parseSettings
	return l
}

// serverStatus is what /readyz reports: ready once a snapshot is loaded,
// not ready while draining, degraded (still ready) while the shared store
// is unreachable.
type serverStatus struct {
	ctrl     *controller.Controller
	store    store.Store
	draining atomic.Bool
}

func (s *serverStatus) Ready() (bool, string) {
	if s.draining.Load() {
		return false, "draining"
	}
	if ok, reason := s.ctrl.Ready(); !ok {
		return false, reason
	}
	if h, ok := s.store.(store.HealthReporter); ok {
		if err := h.Health(); err != nil {
			return true, "shared store unreachable, serving the last configuration and known keys: " + err.Error()
		}
	}
	return true, ""
}

// memberState is what this instance announces to the cluster.
func (s *serverStatus) memberState() (int64, string) {
	ready, reason := s.Ready()
	status := "ready"
	switch {
	case s.draining.Load():
		status = "draining"
	case !ready:
		status = "starting"
	case reason != "":
		status = "degraded"
	}
	return s.AppliedRevision(), status
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func (s *serverStatus) AppliedRevision() int64 { return s.ctrl.AppliedRevision() }

// refreshingRegistry applies registry changes to the local snapshot before
// answering, so that a replica is routable as soon as its registration
// returns (the watch would apply it a moment later anyway).
type refreshingRegistry struct {
	*registry.Registry
	ctrl *controller.Controller
}

func (r refreshingRegistry) Register(ctx context.Context, reg registry.Registration) (registry.Instance, error) {
	in, err := r.Registry.Register(ctx, reg)
	if err == nil {
		r.refresh(ctx)
	}
	return in, err
}

func (r refreshingRegistry) Deregister(ctx context.Context, id string) error {
	err := r.Registry.Deregister(ctx, id)
	if err == nil {
		r.refresh(ctx)
	}
	return err
}

func (r refreshingRegistry) refresh(ctx context.Context) {
	// A failure here is not the caller's: the change is stored, and the
	// watch or the periodic re-read applies it (and logs why it could not).
	_ = r.ctrl.Refresh(ctx)
}
