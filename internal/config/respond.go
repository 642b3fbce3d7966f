package config

import (
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"strings"
)

// Respond makes a route answer requests itself with a stored artifact as
// the body, as a mock or a static document (an OpenAPI file, a maintenance
// page), instead of forwarding them to a service.
type Respond struct {
	// Status is the response status (default 200). It must be a final
	// status that carries content: 200-599 except 204, 205 and 304, which
	// have no content (RFC 9110 sections 15.3.5, 15.3.6, 15.4.5) while
	// Respond always sends the artifact.
	Status int `json:"status,omitempty"`
	// Artifact is the SHA-256 digest of the stored artifact that is the
	// body: 64 lowercase hex characters.
	Artifact string `json:"artifact"`
	// ContentType, when set, replaces the content type stored with the
	// artifact; without either the body is application/octet-stream.
	ContentType string `json:"content_type,omitempty"`
	// Headers are extra response headers. Content-Type, Content-Length,
	// ETag and hop-by-hop headers are set by the gateway and cannot be
	// given here.
	Headers map[string]string `json:"headers,omitempty"`
}

// respond checks the Respond of route r at path p (r.Respond is not nil),
// and that r sets none of the fields that only forwarding uses.
func (v *validator) respond(p string, r Route) {
	rs, rp := r.Respond, p+".respond"
	if s := rs.Status; s != 0 {
		switch {
		case s < 200 || s > 599:
			v.addf(rp+".status", "status %d must be a final HTTP status code (200-599)", s)
		case s == http.StatusNoContent || s == http.StatusResetContent || s == http.StatusNotModified:
			v.addf(rp+".status", "status %d has no content but respond always sends the artifact: use a status that carries content", s)
		}
	}
	switch {
	case rs.Artifact == "":
		v.add(rp+".artifact", "artifact must name the stored artifact by its SHA-256 digest (64 lowercase hex characters)")
	case !validDigest(rs.Artifact):
		v.addf(rp+".artifact", "invalid artifact %q: want a SHA-256 digest, 64 lowercase hex characters", rs.Artifact)
	}
	if ct := rs.ContentType; ct != "" {
		if !validMediaType(ct) {
			v.addf(rp+".content_type", "invalid content_type %q: use a media type such as \"application/json\"", ct)
		}
	}
	v.headerMap(rp+".headers", rs.Headers)
	for _, name := range sortedKeys(rs.Headers) {
		if why := gatewayHeader(http.CanonicalHeaderKey(name)); why != "" {
			v.addf(fmt.Sprintf("%s.headers[%s]", rp, name), "header %q cannot be set here: %s", name, why)
		}
	}

	// Forwarding settings would be silently ignored: say so instead.
	const unused = "has no effect on a route with respond, which contacts no service: remove it"
	if r.StripPrefix {
		v.addf(p+".strip_prefix", "strip_prefix %t %s", r.StripPrefix, unused)
	}
	if r.Rewrite != "" {
		v.addf(p+".rewrite", "rewrite %q %s", r.Rewrite, unused)
	}
	if r.PreserveHost {
		v.addf(p+".preserve_host", "preserve_host %t %s", r.PreserveHost, unused)
	}
	if !reflect.ValueOf(r.RequestHeaders).IsZero() {
		v.addf(p+".request_headers", "request_headers %s", unused)
	}
	if r.Timeout != 0 {
		v.addf(p+".timeout", "timeout %q %s", r.Timeout.String(), unused)
	}
	if !reflect.ValueOf(r.Retry).IsZero() {
		v.addf(p+".retry", "retry %s", unused)
	}
}

// gatewayHeader says why the canonical header name k cannot be one of
// Respond.Headers, or "" if it can.
func gatewayHeader(k string) string {
	switch k {
	case "Content-Type":
		return "use content_type"
	case "Content-Length", "Etag":
		return "the gateway sets it from the artifact"
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return "it is a hop-by-hop header"
	}
	return ""
}

// validMediaType reports whether s is a media type, "type/subtype" with
// optional parameters (RFC 9110 section 8.3.1), fit for a header value.
func validMediaType(s string) bool {
	mt, _, err := mime.ParseMediaType(s)
	if err != nil || !validHeaderValue(s) {
		return false
	}
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && validToken(typ) && validToken(sub)
}

// validDigest reports whether s is a SHA-256 digest as artifacts are named:
// 64 lowercase hex characters.
func validDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
