package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
)

// access is who may call an endpoint when an admin token is configured.
type access int

const (
	public          access = iota // anyone: liveness and readiness probes
	registerOrAdmin               // the register token or the admin token
	adminOnly                     // the admin token
)

// authorize reports whether r may proceed, having answered 401 or 403 if
// not. Tokens are compared as SHA-256 digests in constant time and never
// echoed or logged; a log line carries at most a short digest prefix, enough
// to tell which stale token a client is sending.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, a access) bool {
	if h.cfg.AdminToken == "" || a == public {
		return true
	}
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: `missing bearer token: send the header "Authorization: Bearer <token>"`})
		h.log.Info("admin request unauthenticated", "method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr)
		return false
	}
	sum := sha256.Sum256([]byte(token))
	// Both comparisons always run, so the time taken does not tell which
	// token matched.
	isAdmin := subtle.ConstantTimeCompare(sum[:], h.adminSum[:]) == 1
	isRegister := h.cfg.RegisterToken != "" && subtle.ConstantTimeCompare(sum[:], h.registerSum[:]) == 1
	switch {
	case isAdmin, isRegister && a == registerOrAdmin:
		return true
	case isRegister:
		// A valid credential without the right to this endpoint: 403
		// (RFC 9110 section 15.5.4), so that the operator sees which
		// token to use rather than suspecting a typo.
		writeJSON(w, http.StatusForbidden, errorBody{Error: "the register token only allows POST /register, heartbeats and DELETE /register/{id}; use the admin token for " + r.Method + " " + r.URL.Path})
		h.log.Info("admin request forbidden for register token", "method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr)
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
	writeJSON(w, http.StatusUnauthorized, errorBody{Error: "invalid token"})
	h.log.Info("admin request with invalid token", "method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr, "token_sha256_prefix", hex.EncodeToString(sum[:3]))
	return false
}

// bearer extracts the token from an Authorization header value. The scheme
// is case-insensitive (RFC 9110 section 11.1).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
