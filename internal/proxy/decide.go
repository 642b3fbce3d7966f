package proxy

import (
	"net/http"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// Picker chooses the replica of svc that serves one request. Implementations
// must be safe for concurrent use, must not allocate on the hot path, and
// return nil only when svc has no replicas.
type Picker interface {
	Pick(svc *snapshot.Service) *snapshot.Replica
}

// decision is what the pipeline decided for one request, free of engine
// types so that any HTTP engine can act on it. status is 0 when the request
// is to be forwarded to replica; otherwise the engine answers status with
// reason.
type decision struct {
	match   snapshot.Match
	replica *snapshot.Replica
	status  int
	reason  string
}

// decide routes req on snap and picks a replica. It does no I/O and, for
// routes without path parameters, no allocation.
func decide(snap *snapshot.Snapshot, req snapshot.Request, picker Picker) decision {
	if snap == nil {
		return decision{status: http.StatusServiceUnavailable, reason: "no configuration loaded"}
	}
	m, ok := snap.Match(req)
	if !ok {
		return decision{status: http.StatusNotFound, reason: "no route"}
	}
	svc := m.Route.Service
	if svc == nil || len(svc.Replicas) == 0 {
		return decision{match: m, status: http.StatusServiceUnavailable, reason: "no replicas available"}
	}
	rep := picker.Pick(svc)
	if rep == nil {
		return decision{match: m, status: http.StatusServiceUnavailable, reason: "no replicas available"}
	}
	return decision{match: m, replica: rep}
}
