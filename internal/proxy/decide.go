package proxy

import (
	"net/http"
	"strings"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// decision is what routing decided for one request, free of engine types
// so that any HTTP engine can act on it. status is 0 when the request is to
// be forwarded to the service of match.Route, or answered with its Respond;
// otherwise the engine answers status with reason.
type decision struct {
	match  snapshot.Match
	status int
	reason string
}

// decide routes req on snap. It does no I/O and, for routes without path
// parameters, no allocation. Replicas are picked per attempt, later (see
// Proxy.pick).
func decide(snap *snapshot.Snapshot, req snapshot.Request) decision {
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
	if m.Route.Respond != nil {
		return decision{match: m}
	}
	if svc := m.Route.Service; svc == nil || len(svc.Replicas) == 0 {
		return decision{match: m, status: http.StatusServiceUnavailable, reason: errNoReplica}
	}
	return decision{match: m}
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
