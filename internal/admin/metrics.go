package admin

import "net/http"

// metricsRoutes mounts the Prometheus metrics at GET /metrics: public with
// Config.PublicMetrics, else behind the admin token like the rest of the
// API.
func (h *Handler) metricsRoutes() {
	a := adminOnly
	if h.cfg.PublicMetrics {
		a = public
	}
	h.handle("GET /metrics", a, h.metrics)
}

// metrics serves Deps.Metrics, or 501 when the gateway runs without one.
func (h *Handler) metrics(w http.ResponseWriter, r *http.Request) error {
	if h.deps.Metrics == nil {
		return &apiError{status: http.StatusNotImplemented, body: errorBody{Error: "metrics are not enabled on this gateway"}}
	}
	h.deps.Metrics.ServeHTTP(w, r)
	return nil
}
