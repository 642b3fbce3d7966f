package admin

import "net/http"

type healthBody struct {
	Status string `json:"status"`
}

type readyBody struct {
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
	Revision int64  `json:"revision"`
}

type notReadyBody struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
}

type statusBody struct {
	Version         string `json:"version"`
	AppliedRevision int64  `json:"applied_revision"`
	Ready           bool   `json:"ready"`
	Reason          string `json:"reason,omitempty"`
}

// healthz is the liveness probe: the process serves HTTP.
func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, healthBody{Status: "ok"})
	return nil
}

// readyz is the readiness probe: 503 until the node has a configuration to
// serve. A node that serves but has lost its shared store answers 200 with
// status "degraded" and the reason: it still serves its last configuration
// and the keys it knows, and taking every node out of the load balancer
// when the store fails would turn a store outage into a full one.
func (h *Handler) readyz(w http.ResponseWriter, _ *http.Request) error {
	ready, reason := h.deps.Status.Ready()
	if !ready {
		writeJSON(w, http.StatusServiceUnavailable, notReadyBody{Status: "not ready", Reason: reason})
		return nil
	}
	status := "ready"
	if reason != "" {
		status = "degraded"
	}
	writeJSON(w, http.StatusOK, readyBody{Status: status, Reason: reason, Revision: h.deps.Status.AppliedRevision()})
	return nil
}

func (h *Handler) status(w http.ResponseWriter, _ *http.Request) error {
	ready, reason := h.deps.Status.Ready()
	writeJSON(w, http.StatusOK, statusBody{
		Version:         h.cfg.Version,
		AppliedRevision: h.deps.Status.AppliedRevision(),
		Ready:           ready,
		Reason:          reason,
	})
	return nil
}
