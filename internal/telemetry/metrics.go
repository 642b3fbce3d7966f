// Package telemetry holds Gatehouse's observability building blocks: the
// Prometheus metrics the data plane and controller update (metrics.go), the
// JSON access log written once per proxied request (accesslog.go), and
// OpenTelemetry tracing with W3C trace-context propagation (tracing.go).
//
// Nothing here touches process-wide state: metrics live in a private
// prometheus.Registry and tracing uses its own TracerProvider and propagator,
// so two gateways in one process (as in tests) do not see each other.
package telemetry

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Replica states reported by Metrics.ReplicaState as the value of the
// gatehouse_replica_state gauge.
const (
	ReplicaHealthy   = 0 // serving traffic
	ReplicaEjected   = 1 // ejected by the circuit breaker, cooling down
	ReplicaProbing   = 2 // half-open: admitted for a probe
	ReplicaUnhealthy = 3 // failing active health checks
)

// Reasons for Metrics.Retry, the reason label of gatehouse_retries_total.
// Any other value is counted as "other".
const (
	RetryNotSent = "not_sent" // the request never reached the replica (connect error)
	RetryTimeout = "timeout"  // the replica did not answer in time
	RetryStatus  = "status"   // the replica answered with a retryable status
)

// Scopes for Metrics.RateLimited, the scope label of
// gatehouse_ratelimit_rejections_total. Any other value is counted as "other".
const (
	LimitKey   = "key"   // the per-key rate limit
	LimitRoute = "route" // the per-route rate limit
	LimitQuota = "quota" // the key's quota
)

// Reasons for Metrics.AuthFailure, the reason label of
// gatehouse_auth_failures_total. Any other value is counted as "other".
const (
	AuthMissing   = "missing"   // no API key in the request
	AuthUnknown   = "unknown"   // the key matches no stored key
	AuthRevoked   = "revoked"   // the key was revoked
	AuthExpired   = "expired"   // the key is past its expiry
	AuthForbidden = "forbidden" // the key may not use this route
)

// unmatched is the route label of requests that matched no route.
const unmatched = "_unmatched"

// other replaces a label value outside its documented set, so that a caller's
// mistake cannot grow the number of series.
const other = "other"

// durationBuckets span what a proxied request takes: from a cached or local
// answer (1 ms) to the longest upstream timeout worth telling apart (10 s).
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// codeClasses are the code_class label values, indexed by status/100; index
// 0 is for statuses outside 100–599.
var codeClasses = [6]string{other, "1xx", "2xx", "3xx", "4xx", "5xx"}

// Metrics holds Gatehouse's Prometheus metrics in a private registry, served
// by Handler. Methods are safe for concurrent use. Label values are bounded
// by configuration (route, service and replica names) and by fixed sets
// (status class, reasons); raw paths and key values are never labels.
//
// The per-request methods, ObserveRequest and UpstreamAttempt, find their
// series through a lock-free cache and do not allocate once a series exists.
// Things removed from the configuration should be forgotten with
// ForgetRoute, ForgetService and ForgetReplica so that their series go away.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	attempts     *prometheus.CounterVec
	retries      *prometheus.CounterVec
	budget       *prometheus.CounterVec
	replicaState *prometheus.GaugeVec
	ejections    *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	revision     prometheus.Gauge
	storeErrors  *prometheus.CounterVec
	inflight     prometheus.Gauge

	// reqCache maps requestKey to *requestSeries and attemptCache maps
	// attemptKey to prometheus.Counter. sync.Map because keys are written
	// once and read on every request by every core: its reads take no lock,
	// unlike the RWMutex inside a metric vector.
	reqCache     sync.Map
	attemptCache sync.Map
	// forget serializes Forget* with the creation of cached series, so that
	// a series deleted from a vector is not left behind in a cache.
	forget sync.Mutex
}

type requestKey struct {
	route, service string
	class          uint8
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

type attemptKey struct {
	service string
	ok      bool
}

// NewMetrics returns Metrics registered in a new private registry, together
// with the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_requests_total",
			Help: "Requests answered by the proxy, by route, service and status class.",
		}, []string{"route", "service", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_request_duration_seconds",
			Help:    "Time from receiving a request to the end of its response, by route and service.",
			Buckets: durationBuckets,
		}, []string{"route", "service"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_upstream_attempts_total",
			Help: "Attempts to forward a request to a replica, by service and outcome (success, failure).",
		}, []string{"service", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_retries_total",
			Help: "Retries of a failed attempt on another replica, by service and reason (not_sent, timeout, status).",
		}, []string{"service", "reason"}),
		budget: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_retry_budget_exhausted_total",
			Help: "Retries not made because the service's retry budget was spent.",
		}, []string{"service"}),
		replicaState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_replica_state",
			Help: "State of a replica: 0 healthy, 1 ejected, 2 probing, 3 unhealthy.",
		}, []string{"service", "replica"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_ejections_total",
			Help: "Ejections of a replica by the circuit breaker.",
		}, []string{"service", "replica"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_ratelimit_rejections_total",
			Help: "Requests rejected by a rate limit or quota, by route and scope (key, route, quota).",
		}, []string{"route", "scope"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_auth_failures_total",
			Help: "Requests rejected by API key authentication, by route and reason.",
		}, []string{"route", "reason"}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_config_revision",
			Help: "Revision of the configuration this instance has applied.",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_store_errors_total",
			Help: "Failed store operations, by operation.",
		}, []string{"op"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_inflight_requests",
			Help: "Requests being proxied right now.",
		}),
	}
	m.reg.MustRegister(
		m.requests, m.duration, m.attempts, m.retries, m.budget,
		m.replicaState, m.ejections, m.rateLimited, m.authFailures,
		m.revision, m.storeErrors, m.inflight,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.handler = promhttp.InstrumentMetricHandler(m.reg,
		promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return m
}

// Handler returns the handler serving the metrics in the Prometheus text
// exposition format, for the admin listener's /metrics.
func (m *Metrics) Handler() http.Handler { return m.handler }

// ObserveRequest counts a request answered with status after d, and records
// d in the duration histogram. route is the matched route's name, "" for a
// request that matched no route (labelled "_unmatched"); service is "" when
// no service was chosen. Hot path: no allocation once the series exists.
func (m *Metrics) ObserveRequest(route, service string, status int, d time.Duration) {
	if route == "" {
		route = unmatched
	}
	k := requestKey{route: route, service: service, class: statusClass(status)}
	var s *requestSeries
	if v, ok := m.reqCache.Load(k); ok {
		s = v.(*requestSeries)
	} else {
		s = m.requestSeries(k)
	}
	s.count.Inc()
	s.duration.Observe(d.Seconds())
}

func (m *Metrics) requestSeries(k requestKey) *requestSeries {
	m.forget.Lock()
	defer m.forget.Unlock()
	s := &requestSeries{
		count:    m.requests.WithLabelValues(k.route, k.service, codeClasses[k.class]),
		duration: m.duration.WithLabelValues(k.route, k.service),
	}
	v, _ := m.reqCache.LoadOrStore(k, s)
	return v.(*requestSeries)
}

func statusClass(status int) uint8 {
	if status < 100 || status > 599 {
		return 0
	}
	return uint8(status / 100)
}

// UpstreamAttempt counts one attempt to forward a request to a replica of
// service: ok reports whether the replica answered (with any status the
// breaker does not count as a failure). Hot path: no allocation once the
// series exists.
func (m *Metrics) UpstreamAttempt(service string, ok bool) {
	k := attemptKey{service: service, ok: ok}
	var c prometheus.Counter
	if v, found := m.attemptCache.Load(k); found {
		c = v.(prometheus.Counter)
	} else {
		c = m.attemptCounter(k)
	}
	c.Inc()
}

func (m *Metrics) attemptCounter(k attemptKey) prometheus.Counter {
	m.forget.Lock()
	defer m.forget.Unlock()
	outcome := "failure"
	if k.ok {
		outcome = "success"
	}
	v, _ := m.attemptCache.LoadOrStore(k, m.attempts.WithLabelValues(k.service, outcome))
	return v.(prometheus.Counter)
}

// Retry counts a retry of a failed attempt on another replica of service.
// reason is RetryNotSent, RetryTimeout or RetryStatus.
func (m *Metrics) Retry(service, reason string) {
	switch reason {
	case RetryNotSent, RetryTimeout, RetryStatus:
	default:
		reason = other
	}
	m.retries.WithLabelValues(service, reason).Inc()
}

// RetryBudgetExhausted counts a retry of service not made because its retry
// budget was spent.
func (m *Metrics) RetryBudgetExhausted(service string) {
	m.budget.WithLabelValues(service).Inc()
}

// ReplicaState sets the state of a replica of service to one of
// ReplicaHealthy, ReplicaEjected, ReplicaProbing or ReplicaUnhealthy.
func (m *Metrics) ReplicaState(service, replica string, state int) {
	m.replicaState.WithLabelValues(service, replica).Set(float64(state))
}

// Ejection counts an ejection of a replica of service by the circuit breaker.
func (m *Metrics) Ejection(service, replica string) {
	m.ejections.WithLabelValues(service, replica).Inc()
}

// RateLimited counts a request on route rejected by a limit of scope
// LimitKey, LimitRoute or LimitQuota; route "" is labelled "_unmatched".
func (m *Metrics) RateLimited(route, scope string) {
	switch scope {
	case LimitKey, LimitRoute, LimitQuota:
	default:
		scope = other
	}
	if route == "" {
		route = unmatched
	}
	m.rateLimited.WithLabelValues(route, scope).Inc()
}

// AuthFailure counts a request on route rejected by authentication for
// reason AuthMissing, AuthUnknown, AuthRevoked, AuthExpired or AuthForbidden;
// route "" is labelled "_unmatched".
func (m *Metrics) AuthFailure(route, reason string) {
	switch reason {
	case AuthMissing, AuthUnknown, AuthRevoked, AuthExpired, AuthForbidden:
	default:
		reason = other
	}
	if route == "" {
		route = unmatched
	}
	m.authFailures.WithLabelValues(route, reason).Inc()
}

// ConfigRevision records rev as the configuration revision applied.
func (m *Metrics) ConfigRevision(rev int64) {
	m.revision.Set(float64(rev))
}

// StoreError counts a failed store operation op (a fixed name such as "get",
// "put", "watch"; never a key).
func (m *Metrics) StoreError(op string) {
	m.storeErrors.WithLabelValues(op).Inc()
}

// InFlight adds delta to the number of requests in flight: +1 when a request
// arrives, -1 when it is answered. Hot path: one atomic update.
func (m *Metrics) InFlight(delta int) {
	m.inflight.Add(float64(delta))
}

// ForgetRoute deletes every series of route, for a route removed from the
// configuration.
func (m *Metrics) ForgetRoute(route string) {
	m.forget.Lock()
	defer m.forget.Unlock()
	m.reqCache.Range(func(k, _ any) bool {
		if k.(requestKey).route == route {
			m.reqCache.Delete(k)
		}
		return true
	})
	l := prometheus.Labels{"route": route}
	m.requests.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.rateLimited.DeletePartialMatch(l)
	m.authFailures.DeletePartialMatch(l)
}

// ForgetService deletes every series of service, including those of its
// replicas and its requests on any route, for a service removed from the
// configuration.
func (m *Metrics) ForgetService(service string) {
	m.forget.Lock()
	defer m.forget.Unlock()
	m.reqCache.Range(func(k, _ any) bool {
		if k.(requestKey).service == service {
			m.reqCache.Delete(k)
		}
		return true
	})
	m.attemptCache.Range(func(k, _ any) bool {
		if k.(attemptKey).service == service {
			m.attemptCache.Delete(k)
		}
		return true
	})
	l := prometheus.Labels{"service": service}
	m.requests.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.attempts.DeletePartialMatch(l)
	m.retries.DeletePartialMatch(l)
	m.budget.DeletePartialMatch(l)
	m.replicaState.DeletePartialMatch(l)
	m.ejections.DeletePartialMatch(l)
}

// ForgetReplica deletes the series of a replica of service, for a replica
// deregistered, expired or removed from the configuration.
func (m *Metrics) ForgetReplica(service, replica string) {
	m.replicaState.DeleteLabelValues(service, replica)
	m.ejections.DeleteLabelValues(service, replica)
}
