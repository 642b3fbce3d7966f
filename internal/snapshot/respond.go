package snapshot

import (
	"cmp"
	"net/http"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

// Respond is the compiled answer of a route that responds itself with a
// stored artifact instead of forwarding to a service. It is immutable after
// Compile: the proxy may put the slices of Headers in a response header map
// (their capacity equals their length, so an append there copies) but must
// not write to them.
type Respond struct {
	// Status is the response status; 200 when the configuration sets none.
	Status int
	// Digest is the artifact's SHA-256 digest, 64 lowercase hex characters.
	Digest string
	// ETag is the response's entity tag, the quoted Digest: the artifact is
	// addressed by its content, so the tag changes exactly when the body
	// does.
	ETag string
	// ContentType replaces the artifact's stored content type; "" keeps it.
	ContentType string
	// Headers are the extra response headers, with canonical names; nil
	// when none.
	Headers http.Header
}

func compileRespond(rc *config.Respond) *Respond {
	if rc == nil {
		return nil
	}
	rs := &Respond{
		Status:      cmp.Or(rc.Status, http.StatusOK),
		Digest:      rc.Artifact,
		ETag:        `"` + rc.Artifact + `"`,
		ContentType: rc.ContentType,
	}
	if len(rc.Headers) > 0 {
		rs.Headers = make(http.Header, len(rc.Headers))
		for k, v := range rc.Headers {
			rs.Headers[http.CanonicalHeaderKey(k)] = []string{v}
		}
	}
	return rs
}
