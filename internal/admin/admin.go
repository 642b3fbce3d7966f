// Package admin serves Gatehouse's admin REST API: configuration (whole or
// by service and route), the self-registration endpoints replicas call, and
// health, readiness and status. It speaks JSON in and out (PUT /config also
// accepts YAML) and reaches the rest of the gateway only through the small
// interfaces in Deps.
package admin

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
)

// ConfigStore reads and changes the stored configuration. The controller
// implements it.
type ConfigStore interface {
	// Config returns the current configuration and its store revision.
	Config(ctx context.Context) (config.Config, int64, error)
	// Update reads the current configuration, applies fn to it, validates
	// the result and writes it with a compare-and-swap on the revision it
	// read, returning the new revision. fn may be called more than once (on
	// a lost race) and must depend only on its argument. An invalid result
	// is returned as config.Errors and nothing is stored; an error from fn
	// is returned as is; a swap that keeps failing yields store.ErrConflict.
	Update(ctx context.Context, fn func(*config.Config) error) (int64, error)
}

// Registry is the self-registration service; *registry.Registry implements
// it.
type Registry interface {
	// Register records a replica; a bad registration is a
	// *registry.ValidationError.
	Register(ctx context.Context, r registry.Registration) (registry.Instance, error)
	// Heartbeat renews a lease; an unknown ID wraps store.ErrNotFound.
	Heartbeat(ctx context.Context, id string) (registry.Instance, error)
	// Deregister removes a replica; an unknown ID wraps store.ErrNotFound.
	Deregister(ctx context.Context, id string) error
	// List returns the live instances and the store revision.
	List(ctx context.Context) ([]registry.Instance, int64, error)
}

var _ Registry = (*registry.Registry)(nil)

// Status reports this node's readiness and the configuration revision it has
// applied.
type Status interface {
	// Ready reports whether the node should receive traffic and, if not,
	// why.
	Ready() (ready bool, reason string)
	// AppliedRevision is the store revision of the snapshot being served.
	AppliedRevision() int64
}

// Deps are the collaborators the admin API serves from. All are required
// unless their comment says otherwise.
type Deps struct {
	// Config backs /config, /services and /routes.
	Config ConfigStore
	// Registry backs /register and /instances.
	Registry Registry
	// Status backs /readyz and /status.
	Status Status
	// Keys backs /keys. It is optional: when nil, /keys answers 501.
	Keys Keys
	// Metrics serves GET /metrics (the Prometheus exposition). It is
	// optional: when nil, /metrics answers 501.
	Metrics http.Handler
	// Replicas backs /replicas. It is optional: when nil, /replicas
	// answers 501.
	Replicas Replicas
	// Cluster backs GET /cluster. It is optional: when nil, /cluster
	// answers 501.
	Cluster Cluster
	// Artifacts serves /artifacts (see artifact.Handler) behind the admin
	// token. It is optional: when nil, /artifacts is not served.
	Artifacts http.Handler
}

// Config holds the admin API's settings. The zero value serves every
// endpoint without authentication, which the caller must only allow on a
// loopback listener.
type Config struct {
	// AdminToken, when set, is required as "Authorization: Bearer <token>"
	// on every endpoint except GET /healthz and GET /readyz (and GET
	// /metrics with PublicMetrics).
	AdminToken string
	// RegisterToken, when set, is accepted in place of AdminToken on the
	// registration endpoints only (POST /register, heartbeats, DELETE
	// /register/{id}), so that replicas need not hold the admin token. It is
	// only checked when AdminToken is set: without AdminToken nothing is
	// authenticated (New logs a warning).
	RegisterToken string
	// Version is reported by GET /status.
	Version string
	// PublicMetrics serves GET /metrics without the admin token, like
	// /healthz, for scrapers that cannot send one. Set it only when the
	// listener is reachable from trusted hosts alone (a loopback address):
	// metrics name routes, services and replicas.
	PublicMetrics bool
}

// Validate reports tokens that cannot be sent in an HTTP header. Tokens never
// appear in its errors.
func (c Config) Validate() error {
	var errs []error
	for _, t := range []struct{ name, value string }{{"admin token", c.AdminToken}, {"register token", c.RegisterToken}} {
		if t.value != "" && !headerSafe(t.value) {
			errs = append(errs, errors.New("admin: the "+t.name+" contains spaces or control characters; use printable ASCII without spaces"))
		}
	}
	return errors.Join(errs...)
}

// headerSafe reports whether s can be sent as a bearer token unchanged.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// maxBody is the largest request body accepted (413 beyond it).
const maxBody = 4 << 20

// Handler is the admin API as an http.Handler. It holds no mutable state and
// is safe for concurrent use.
type Handler struct {
	deps Deps
	cfg  Config
	log  *slog.Logger
	mux  *http.ServeMux

	// Tokens are kept as SHA-256 digests so that comparing a presented
	// token takes the same time whatever its length.
	adminSum, registerSum [sha256.Size]byte
}

// New returns the admin API handler. log receives audit lines for changes
// and server-side errors; nil discards.
func New(deps Deps, cfg Config, log *slog.Logger) (*Handler, error) {
	var errs []error
	if deps.Config == nil {
		errs = append(errs, errors.New("admin: Deps.Config is nil"))
	}
	if deps.Registry == nil {
		errs = append(errs, errors.New("admin: Deps.Registry is nil"))
	}
	if deps.Status == nil {
		errs = append(errs, errors.New("admin: Deps.Status is nil"))
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.RegisterToken != "" && cfg.AdminToken == "" {
		log.Warn("admin API: a register token is set but no admin token, so no endpoint requires a token, registration included; set an admin token to enforce both")
	}
	h := &Handler{deps: deps, cfg: cfg, log: log, mux: http.NewServeMux()}
	if cfg.AdminToken != "" {
		h.adminSum = sha256.Sum256([]byte(cfg.AdminToken))
	}
	if cfg.RegisterToken != "" {
		h.registerSum = sha256.Sum256([]byte(cfg.RegisterToken))
	}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	h.handle("GET /healthz", public, h.healthz)
	h.handle("GET /readyz", public, h.readyz)
	h.handle("GET /status", adminOnly, h.status)

	h.handle("GET /config", adminOnly, h.getConfig)
	h.handle("PUT /config", adminOnly, h.putConfig)
	h.handle("GET /services", adminOnly, h.listServices)
	h.handle("GET /services/{name}", adminOnly, h.getService)
	h.handle("PUT /services/{name}", adminOnly, h.putService)
	h.handle("DELETE /services/{name}", adminOnly, h.deleteService)
	h.handle("GET /routes", adminOnly, h.listRoutes)
	h.handle("GET /routes/{name}", adminOnly, h.getRoute)
	h.handle("PUT /routes/{name}", adminOnly, h.putRoute)
	h.handle("DELETE /routes/{name}", adminOnly, h.deleteRoute)

	h.handle("GET /instances", adminOnly, h.listInstances)
	h.handle("POST /register", registerOrAdmin, h.register)
	h.handle("POST /register/{id}/heartbeat", registerOrAdmin, h.heartbeat)
	h.handle("PUT /register/{id}", registerOrAdmin, h.heartbeat)
	h.handle("DELETE /register/{id}", registerOrAdmin, h.deregister)

	h.keyRoutes()
	h.metricsRoutes()
	h.replicaRoutes()
	h.clusterRoutes()
}

// handle registers fn behind the authorization check for access.
func (h *Handler) handle(pattern string, access access, fn func(http.ResponseWriter, *http.Request) error) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if !h.authorize(w, r, access) {
			return
		}
		if err := fn(w, r); err != nil {
			h.writeError(w, r, err)
		}
	})
}

// ServeHTTP serves the admin API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern != "" {
		h.mux.ServeHTTP(w, r)
		return
	}
	// No pattern matched: let the mux decide between 404, 405 (with its
	// Allow header) and a path-cleaning redirect, then answer 404 and 405
	// in JSON like every other error.
	rec := &headerRecorder{header: http.Header{}}
	h.mux.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusNotFound:
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such endpoint: " + r.Method + " " + r.URL.Path})
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method " + r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + rec.header.Get("Allow")})
	default:
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		w.Write(rec.body)
	}
}

// headerRecorder captures what the mux's own 404, 405 and redirect handlers
// write, which is small.
type headerRecorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *headerRecorder) Header() http.Header { return r.header }

func (r *headerRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *headerRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body = append(r.body, b...)
	return len(b), nil
}
