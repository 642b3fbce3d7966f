package main

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/breaker"
	"github.com/gatehouse-gw/gatehouse/internal/health"
	"github.com/gatehouse-gw/gatehouse/internal/proxy"
	"github.com/gatehouse-gw/gatehouse/internal/retry"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// resilience holds the components that keep bad replicas away from
// traffic: per-replica circuit breakers shared with other instances through
// the store, active health checks feeding the same breakers, and the retry
// budgets. follow keeps them in step with the published snapshots; the
// Syncer and the Checker run in the errgroup.
type resilience struct {
	node     string
	breakers *breaker.Breakers
	syncer   *breaker.Syncer
	checker  *health.Checker
	budgets  *retry.Budgets
}

func newResilience(st store.Store, log *slog.Logger) (*resilience, error) {
	node, err := nodeID()
	if err != nil {
		return nil, err
	}
	log.Info("breaker sync node", "node", node)
	rs := &resilience{node: node, budgets: new(retry.Budgets)}
	rs.breakers = breaker.New(proxy.BreakerConfig, log)
	rs.syncer, err = breaker.NewSyncer(st, rs.breakers, breaker.SyncConfig{Node: node}, log)
	if err != nil {
		return nil, err
	}
	rs.checker = health.New(nil, healthReporter{rs.breakers, log}, log)
	return rs, nil
}

// nodeID names this instance in the breaker records it shares: the host
// name and a random suffix, new at each start, so that two processes on one
// host (or a restarted one) are told apart.
func nodeID() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "gatehouse"
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate node id: %w", err)
	}
	return host + "-" + hex.EncodeToString(b[:]), nil
}

// follow is the controller's OnPublish subscriber: the breakers follow the
// snapshot's services and replicas first, so that health results reported
// for new replicas find their breakers, then the checker gets the replicas
// of services with a health check.
func (rs *resilience) follow(snap *snapshot.Snapshot) {
	rs.breakers.Sync(snap, time.Now())
	rs.checker.Sync(healthTargets(snap))
}

// healthTargets lists the replicas of the services of snap that have an
// active health check.
func healthTargets(snap *snapshot.Snapshot) []health.Target {
	var targets []health.Target
	for name, svc := range snap.Services {
		hc := svc.HealthCheck
		if hc == nil {
			continue
		}
		check := health.Check{
			Path:               hc.Path,
			Interval:           hc.Interval,
			Timeout:            hc.Timeout,
			HealthyThreshold:   hc.HealthyThreshold,
			UnhealthyThreshold: hc.UnhealthyThreshold,
			ExpectedStatuses:   hc.ExpectedStatuses,
		}
		for _, r := range svc.Replicas {
			targets = append(targets, health.Target{Service: name, Replica: r, Check: check})
		}
	}
	return targets
}

// healthReporter hands health check verdicts to the breakers, where they
// take a replica out of rotation like an ejection does.
type healthReporter struct {
	breakers *breaker.Breakers
	log      *slog.Logger
}

func (h healthReporter) SetHealthy(service, replicaID string, healthy bool) {
	if err := h.breakers.For(service).SetHealthy(replicaID, healthy); err != nil {
		// The replica left the configuration while it was being checked.
		h.log.Debug("health result for an unknown replica", "service", service, "replica", replicaID, "error", err)
	}
}

// replicaAdmin is the admin API's view of the replicas: the snapshot's
// replicas with their breaker state, last health check and load.
type replicaAdmin struct {
	src   proxy.Source
	rs    *resilience
	proxy *proxy.Proxy
}

var _ admin.Replicas = replicaAdmin{}

func (ra replicaAdmin) Replicas(service string) ([]admin.Replica, error) {
	snap := ra.src.Load()
	var services []*snapshot.Service
	switch {
	case service != "":
		svc := lookupService(snap, service)
		if svc == nil {
			return nil, fmt.Errorf("service %q: %w", service, admin.ErrUnknownService)
		}
		services = append(services, svc)
	case snap != nil:
		for _, svc := range snap.Services {
			services = append(services, svc)
		}
		slices.SortFunc(services, func(a, b *snapshot.Service) int { return cmp.Compare(a.Name, b.Name) })
	}
	now := time.Now()
	var out []admin.Replica
	for _, svc := range services {
		statuses := ra.rs.breakers.For(svc.Name).Statuses(now)
		seen := make(map[string]bool, len(svc.Replicas))
		for _, r := range svc.Replicas {
			if seen[r.ID] {
				continue
			}
			seen[r.ID] = true
			out = append(out, ra.view(svc.Name, r.ID, r.URL.String(), statuses[r.ID]))
		}
	}
	return out, nil
}

func (ra replicaAdmin) Eject(service, id string, d time.Duration) (admin.Replica, error) {
	return ra.change(service, id, func(g *breaker.Group, now time.Time) error { return g.Eject(id, d, now) })
}

func (ra replicaAdmin) Restore(service, id string) (admin.Replica, error) {
	return ra.change(service, id, func(g *breaker.Group, now time.Time) error { return g.Restore(id, now) })
}

// change applies fn to the breaker group of service and returns the
// replica's new state.
func (ra replicaAdmin) change(service, id string, fn func(*breaker.Group, time.Time) error) (admin.Replica, error) {
	g := ra.rs.breakers.For(service)
	if g == nil {
		return admin.Replica{}, fmt.Errorf("service %q: %w", service, admin.ErrUnknownService)
	}
	now := time.Now()
	if err := fn(g, now); err != nil {
		if errors.Is(err, breaker.ErrUnknownReplica) {
			return admin.Replica{}, fmt.Errorf("%w: %w", admin.ErrUnknownReplica, err)
		}
		return admin.Replica{}, err
	}
	var st breaker.Status
	if b := g.Breaker(id); b != nil {
		st = b.State(now)
	}
	addr := ""
	if svc := lookupService(ra.src.Load(), service); svc != nil {
		for _, r := range svc.Replicas {
			if r.ID == id {
				addr = r.URL.String()
				break
			}
		}
	}
	return ra.view(service, id, addr, st), nil
}

// lookupService returns the named service of snap, nil if there is none or no
// snapshot yet.
func lookupService(snap *snapshot.Snapshot, name string) *snapshot.Service {
	if snap == nil {
		return nil
	}
	return snap.Service(name)
}

// view combines what is known of one replica.
func (ra replicaAdmin) view(service, id, address string, st breaker.Status) admin.Replica {
	v := admin.Replica{
		Service:             service,
		ID:                  id,
		Address:             address,
		State:               cmp.Or(st.State, breaker.StateHealthy),
		EjectedUntil:        st.EjectedUntil,
		Ejections:           st.Ejections,
		ConsecutiveFailures: st.ConsecutiveFailures,
		WindowRequests:      st.WindowRequests,
		WindowFailures:      st.WindowFailures,
		LastError:           st.LastError,
		LastErrorAt:         st.LastErrorAt,
		Manual:              st.Manual,
	}
	if res, ok := ra.rs.checker.Status(service, id); ok {
		h := &admin.ReplicaHealth{
			Healthy:              res.Healthy,
			URL:                  res.URL,
			Status:               res.Status,
			CheckedAt:            res.Checked,
			ConsecutiveSuccesses: res.Successes,
			ConsecutiveFailures:  res.Failures,
		}
		if res.Err != nil {
			h.Error = res.Err.Error()
		}
		v.Health = h
	}
	if ps, ok := ra.proxy.ReplicaStats(id); ok {
		v.InFlight = ps.InFlight
	}
	return v
}
