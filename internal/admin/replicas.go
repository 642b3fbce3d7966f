package admin

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Replicas reports and changes the runtime state of service replicas: what
// their circuit breakers, health checks and load say. The gateway's wiring
// implements it over the data plane.
type Replicas interface {
	// Replicas returns the replicas of service, or of every service when
	// service is "", by service name and then in the service's order. An
	// unknown service is an error wrapping ErrUnknownService.
	Replicas(service string) ([]Replica, error)
	// Eject takes replica id of service out of rotation for d, or until
	// restored when d is 0, on every gateway instance, and returns its new
	// state. Unknown names wrap ErrUnknownService or ErrUnknownReplica.
	Eject(service, id string, d time.Duration) (Replica, error)
	// Restore puts replica id of service back in rotation at once, with
	// its failure counts reset, and returns its new state.
	Restore(service, id string) (Replica, error)
}

// Errors a Replicas implementation wraps for names it does not know.
var (
	ErrUnknownService = errors.New("unknown service")
	ErrUnknownReplica = errors.New("unknown replica")
)

// Replica is one replica's runtime state as GET /replicas shows it.
type Replica struct {
	Service string `json:"service"`
	ID      string `json:"id"`
	Address string `json:"address"`
	// State is healthy, ejected, probing (its half-open probe is in
	// flight) or unhealthy (failing active health checks).
	State string `json:"state"`
	// EjectedUntil is the end of the cool-down while ejected; zero
	// (omitted) otherwise, and for an ejection that lasts until restored.
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	// Ejections is the count that sets the next cool-down.
	Ejections           int `json:"ejections"`
	ConsecutiveFailures int `json:"consecutive_failures"`
	// WindowRequests and WindowFailures are the counts of the breaker's
	// failure-ratio window.
	WindowRequests int       `json:"window_requests"`
	WindowFailures int       `json:"window_failures"`
	LastError      string    `json:"last_error"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
	// Manual is true while an operator's ejection is in force.
	Manual bool `json:"manual"`
	// Health is the last active health check; nil when none runs.
	Health *ReplicaHealth `json:"health,omitempty"`
	// InFlight is the number of requests this instance has at the replica.
	InFlight int64 `json:"in_flight"`
}

// ReplicaHealth is the result of a replica's last active health check.
type ReplicaHealth struct {
	Healthy bool   `json:"healthy"`
	URL     string `json:"url"`
	// Status is the last response's, 0 if none came.
	Status int `json:"status,omitempty"`
	// Error says why the last check failed; empty if it passed.
	Error string `json:"error,omitempty"`
	// CheckedAt is when the last check ended; zero before the first.
	CheckedAt            time.Time `json:"checked_at,omitzero"`
	ConsecutiveSuccesses int       `json:"consecutive_successes"`
	ConsecutiveFailures  int       `json:"consecutive_failures"`
}

type replicasBody struct {
	Replicas []Replica `json:"replicas"`
}

// ejectRequest is the body of POST /replicas/{id}/eject and, without
// Duration, of POST /replicas/{id}/restore.
type ejectRequest struct {
	Service string `json:"service"`
	// Duration is a Go duration ("60s", "5m"); empty or "0" means until
	// restored.
	Duration string `json:"duration"`
}

// replicaRoutes registers the /replicas endpoints. They are admin only:
// ejecting a replica takes capacity away from a service.
func (h *Handler) replicaRoutes() {
	h.handle("GET /replicas", adminOnly, h.withReplicas(h.listReplicas))
	h.handle("POST /replicas/{id}/eject", adminOnly, h.withReplicas(h.ejectReplica))
	h.handle("POST /replicas/{id}/restore", adminOnly, h.withReplicas(h.restoreReplica))
}

// withReplicas answers 501 when the gateway has no replica state to show.
func (h *Handler) withReplicas(fn func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if h.deps.Replicas == nil {
			return &apiError{status: http.StatusNotImplemented, body: errorBody{Error: "replica state is not available on this gateway"}}
		}
		return fn(w, r)
	}
}

func (h *Handler) listReplicas(w http.ResponseWriter, r *http.Request) error {
	service := r.URL.Query().Get("service")
	reps, err := h.deps.Replicas.Replicas(service)
	if err != nil {
		return replicaError(err, service, "")
	}
	if reps == nil {
		reps = []Replica{}
	}
	writeJSON(w, http.StatusOK, replicasBody{Replicas: reps})
	return nil
}

func (h *Handler) ejectReplica(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	req, err := decodeEjectRequest(w, r)
	if err != nil {
		return err
	}
	var d time.Duration
	if req.Duration != "" {
		if d, err = time.ParseDuration(req.Duration); err != nil || d < 0 {
			e := badRequest("duration %q is not a positive duration such as 60s or 5m; leave it out to eject until restored", req.Duration)
			e.body.Details = []detail{{Path: "duration", Message: "invalid duration"}}
			return e
		}
	}
	rep, err := h.deps.Replicas.Eject(req.Service, id, d)
	if err != nil {
		return replicaError(err, req.Service, id)
	}
	h.log.Info("replica ejected by admin API", "service", req.Service, "replica", id, "duration", d, "remote_addr", r.RemoteAddr)
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (h *Handler) restoreReplica(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	req, err := decodeEjectRequest(w, r)
	if err != nil {
		return err
	}
	if req.Duration != "" {
		e := badRequest("duration applies to eject only; send {\"service\": %q}", req.Service)
		e.body.Details = []detail{{Path: "duration", Message: "unknown field for restore"}}
		return e
	}
	rep, err := h.deps.Replicas.Restore(req.Service, id)
	if err != nil {
		return replicaError(err, req.Service, id)
	}
	h.log.Info("replica restored by admin API", "service", req.Service, "replica", id, "remote_addr", r.RemoteAddr)
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// decodeEjectRequest reads the body of eject and restore, which must name
// the service: a static target's replica ID may belong to several.
func decodeEjectRequest(w http.ResponseWriter, r *http.Request) (ejectRequest, error) {
	var req ejectRequest
	b, err := readBody(w, r)
	if err != nil {
		return req, err
	}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := decodeJSON(b, &req); err != nil {
			return req, err
		}
	}
	if req.Service == "" {
		e := badRequest("service is required: send {\"service\": \"NAME\"} with the replica's service")
		e.body.Details = []detail{{Path: "service", Message: "required"}}
		return req, e
	}
	return req, nil
}

// replicaError turns unknown names into 404s that say which name.
func replicaError(err error, service, id string) error {
	switch {
	case errors.Is(err, ErrUnknownService):
		return notFound("unknown service %q: see GET /services for the configured ones", service)
	case errors.Is(err, ErrUnknownReplica):
		return notFound("service %q has no replica %q: see GET /replicas?service=%s", service, id, service)
	}
	return fmt.Errorf("replicas: %w", err)
}
