package proxy

import (
	"net/http"
	"strings"

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
	if hasDotSegment(req.Path) {
		// Routes match the raw path; an upstream that resolves "/api/../admin"
		// would otherwise serve a path no route allowed (RFC 3986 section 5.2.4).
		return decision{status: http.StatusBadRequest, reason: "path contains a dot segment (. or ..)"}
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

// hasDotSegment reports whether the escaped path has a "." or ".." segment,
// written plainly or percent-encoded (%2e).
func hasDotSegment(path string) bool {
	for len(path) > 0 {
		if path[0] == '/' {
			path = path[1:]
			continue
		}
		end := strings.IndexByte(path, '/')
		if end < 0 {
			end = len(path)
		}
		if isDots(path[:end]) {
			return true
		}
		path = path[end:]
	}
	return false
}

// isDots reports whether seg is "." or ".." with any dot possibly written %2e.
func isDots(seg string) bool {
	n := 0
	for len(seg) > 0 {
		switch {
		case seg[0] == '.':
			seg = seg[1:]
		case len(seg) >= 3 && seg[0] == '%' && seg[1] == '2' && (seg[2] == 'e' || seg[2] == 'E'):
			seg = seg[3:]
		default:
			return false
		}
		n++
	}
	return n == 1 || n == 2
}
