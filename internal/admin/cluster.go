package admin

import (
	"context"
	"net/http"

	"github.com/gatehouse-gw/gatehouse/internal/cluster"
)

// Cluster lists the live instances of the gateway. *cluster.Announcer
// implements it.
type Cluster interface {
	// Members returns the live instances; when the store cannot be read,
	// this instance alone with the error.
	Members(ctx context.Context) ([]cluster.Member, error)
}

var _ Cluster = (*cluster.Announcer)(nil)

type clusterBody struct {
	Members []cluster.Member `json:"members"`
	// Error says why the list holds this instance only.
	Error string `json:"error,omitempty"`
}

// clusterRoutes registers GET /cluster and, when the gateway stores
// artifacts, /artifacts.
func (h *Handler) clusterRoutes() {
	h.handle("GET /cluster", adminOnly, h.listCluster)
	if h.deps.Artifacts != nil {
		for _, p := range []string{"/artifacts", "/artifacts/"} {
			h.handle(p, adminOnly, func(w http.ResponseWriter, r *http.Request) error {
				h.deps.Artifacts.ServeHTTP(w, r)
				return nil
			})
		}
	}
}

// listCluster lists the live instances. When the store is unreachable it
// still answers 200, with this instance alone and the reason in "error":
// that is true of this instance, and a client waiting for the whole
// cluster (apply --wait) must not take it for the whole.
func (h *Handler) listCluster(w http.ResponseWriter, r *http.Request) error {
	if h.deps.Cluster == nil {
		return &apiError{status: http.StatusNotImplemented, body: errorBody{Error: "cluster membership is not available on this gateway"}}
	}
	ms, err := h.deps.Cluster.Members(r.Context())
	body := clusterBody{Members: ms}
	if body.Members == nil {
		body.Members = []cluster.Member{}
	}
	if err != nil {
		h.log.Warn("list cluster members", "error", err)
		body.Error = err.Error()
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}
