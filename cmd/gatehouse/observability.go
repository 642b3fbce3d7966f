package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/breaker"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/store"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

// tracingShutdownTimeout bounds the export of the spans still buffered at
// exit, so that an unreachable collector cannot hold the process.
const tracingShutdownTimeout = 5 * time.Second

// boolFlag is a boolean flag whose default comes from the environment and
// whose value is checked with the other settings, so that a bad value (flag
// or variable) is reported in the one "cannot start" message. IsBoolFlag
// lets it be given bare (--access-log) or with a value (--access-log=false).
type boolFlag string

// String returns the raw value.
func (b *boolFlag) String() string {
	if b == nil {
		return ""
	}
	return string(*b)
}

// Set records v; parseSettings validates it.
func (b *boolFlag) Set(v string) error {
	*b = boolFlag(v)
	return nil
}

// IsBoolFlag tells package flag that the flag needs no value.
func (b *boolFlag) IsBoolFlag() bool { return true }

// replicaStateInterval is how often gatehouse_replica_state is refreshed
// from the breakers. The proxy sets it at once on the transitions it causes;
// the refresh catches the others (a cool-down ending, health checks, an
// operator's ejection, another instance's).
const replicaStateInterval = 5 * time.Second

// metricsFollower keeps the metrics in step with the configuration and the
// breakers. publish, the controller's OnPublish subscriber, records the
// revision applied and forgets the series of routes, services and replicas
// that left the configuration, so that the number of series follows the
// configuration rather than its history. Run copies every replica's breaker
// state into gatehouse_replica_state periodically. mu orders the two, so
// that a refresh cannot recreate the series of a replica just forgotten.
type metricsFollower struct {
	m        *telemetry.Metrics
	src      interface{ Load() *snapshot.Snapshot }
	breakers *breaker.Breakers

	mu   sync.Mutex
	prev *snapshot.Snapshot // guarded by mu
}

// publish runs on the controller's publishing goroutine, in O(routes +
// replicas).
func (f *metricsFollower) publish(s *snapshot.Snapshot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m.ConfigRevision(s.Revision)
	if f.prev != nil {
		forgetRemoved(f.m, f.prev, s)
	}
	f.prev = s
}

// Run refreshes the replica states every replicaStateInterval until ctx
// ends; then it returns nil.
func (f *metricsFollower) Run(ctx context.Context) error {
	t := time.NewTicker(replicaStateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			f.refresh(now)
		}
	}
}

// refresh sets gatehouse_replica_state of every replica of the current
// snapshot from its breaker.
func (f *metricsFollower) refresh(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	snap := f.src.Load()
	if snap == nil {
		return
	}
	for name, svc := range snap.Services {
		g := f.breakers.For(name)
		if g == nil {
			continue
		}
		statuses := g.Statuses(now)
		for _, rep := range svc.Replicas {
			f.m.ReplicaState(name, rep.ID, replicaState(statuses[rep.ID].State))
		}
	}
}

// replicaState is the gauge value of a breaker state; an unknown replica is
// healthy (its breaker admits it).
func replicaState(s string) int {
	switch s {
	case breaker.StateEjected:
		return telemetry.ReplicaEjected
	case breaker.StateProbing:
		return telemetry.ReplicaProbing
	case breaker.StateUnhealthy:
		return telemetry.ReplicaUnhealthy
	}
	return telemetry.ReplicaHealthy
}

// forgetRemoved forgets in m what is in prev but not in next.
func forgetRemoved(m *telemetry.Metrics, prev, next *snapshot.Snapshot) {
	routes := make(map[string]bool, len(next.Routes))
	for _, r := range next.Routes {
		routes[r.Name] = true
	}
	for _, r := range prev.Routes {
		if !routes[r.Name] {
			m.ForgetRoute(r.Name)
		}
	}
	for name, old := range prev.Services {
		svc := next.Services[name]
		if svc == nil {
			m.ForgetService(name)
			continue
		}
		ids := make(map[string]bool, len(svc.Replicas))
		for _, rep := range svc.Replicas {
			ids[rep.ID] = true
		}
		for _, rep := range old.Replicas {
			if !ids[rep.ID] {
				m.ForgetReplica(name, rep.ID)
			}
		}
	}
}

// countingStore counts the failures of a store.Store in
// gatehouse_store_errors_total, by operation. Answers that are part of the
// contract (not found, a lost compare-and-swap, a compacted watch) and
// cancellations by the caller are not failures. It costs one interface call
// per operation; it is not on the request path (quota counts are flushed in
// the background).
type countingStore struct {
	store.Store
	m *telemetry.Metrics
}

var (
	_ store.Store          = countingStore{}
	_ store.HealthReporter = countingStore{}
)

// Health passes on the wrapped store's health: nil for a store that
// cannot become unreachable.
func (s countingStore) Health() error {
	if h, ok := s.Store.(store.HealthReporter); ok {
		return h.Health()
	}
	return nil
}

// Get counts a failed Get.
func (s countingStore) Get(ctx context.Context, key string) (store.KV, error) {
	kv, err := s.Store.Get(ctx, key)
	s.count("get", err)
	return kv, err
}

// List counts a failed List.
func (s countingStore) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	kvs, rev, err := s.Store.List(ctx, prefix)
	s.count("list", err)
	return kvs, rev, err
}

// Put counts a failed Put.
func (s countingStore) Put(ctx context.Context, key string, value []byte, opts store.PutOptions) (int64, error) {
	rev, err := s.Store.Put(ctx, key, value, opts)
	s.count("put", err)
	return rev, err
}

// Delete counts a failed Delete.
func (s countingStore) Delete(ctx context.Context, key string, ifRevision int64) error {
	err := s.Store.Delete(ctx, key, ifRevision)
	s.count("delete", err)
	return err
}

// Watch counts a Watch that could not start.
func (s countingStore) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan store.Event, error) {
	ch, err := s.Store.Watch(ctx, prefix, fromRevision)
	s.count("watch", err)
	return ch, err
}

// Incr counts a failed Incr.
func (s countingStore) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	n, err := s.Store.Incr(ctx, key, delta, ttl)
	s.count("incr", err)
	return n, err
}

func (s countingStore) count(op string, err error) {
	switch {
	case err == nil,
		errors.Is(err, store.ErrNotFound),
		errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrCompacted),
		errors.Is(err, context.Canceled):
		return
	}
	s.m.StoreError(op)
}

// shutdownTracing flushes the spans not yet exported, waiting at most
// tracingShutdownTimeout, and logs a failure: losing the last spans must not
// change the exit code of a clean shutdown.
func shutdownTracing(t *telemetry.Tracing, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("tracing shutdown", "error", err)
	}
}
