package proxy

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gatehouse-gw/gatehouse/internal/artifact"
)

// ErrArtifactNotFound is the error an ArtifactSource wraps when no artifact
// has the requested digest.
var ErrArtifactNotFound = errors.New("artifact not found")

// ArtifactSource reads stored artifacts, the bodies of routes that respond
// themselves (snapshot.Route Respond). Implementations must be safe for
// concurrent use; OpenArtifact is called once per such request that is not
// answered 304, on the request's goroutine.
type ArtifactSource interface {
	// OpenArtifact returns the content of the artifact whose SHA-256 digest
	// is digest (64 lowercase hex characters), its size in bytes (-1 if
	// unknown) and its stored content type ("" if none); an error wrapping
	// ErrArtifactNotFound if it does not exist. The caller closes the
	// content.
	OpenArtifact(ctx context.Context, digest string) (io.ReadCloser, int64, string, error)
}

// errNoArtifacts is the answer on a route that responds itself when the
// proxy has no ArtifactSource.
const errNoArtifacts = "artifacts are not enabled on this gateway"

// serveArtifact answers x, admitted, on a route that responds itself with
// its artifact: the route's status, Content-Type (the route's, else the
// stored one, else application/octet-stream), Content-Length, an ETag that
// is the quoted digest, the route's headers, then its response_headers
// operations. No upstream is contacted.
//
// On a route answering 200, a GET or HEAD whose If-None-Match lists the
// ETag (or is "*") gets 304 without the artifact being opened: the digest
// names the content, so a client holding that tag holds the body. Another
// method gets 412 (RFC 9110 section 13.1.2). A HEAD gets the headers only.
// A missing artifact is answered 502 (the configuration names content the
// gateway cannot find, as an unreachable upstream would be), any other
// failure to open it 503.
func (p *Proxy) serveArtifact(x *exchange) {
	rs, r := x.route.Respond, x.r
	ctx := r.Context()
	if p.artifacts == nil {
		p.answer(x, http.StatusServiceUnavailable, errNoArtifacts)
		return
	}
	h := x.w.Header()
	if rs.Status == http.StatusOK && artifact.MatchETag(r.Header["If-None-Match"], rs.ETag) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			p.answer(x, http.StatusPreconditionFailed, "If-None-Match matches the artifact")
			return
		}
		// RFC 9110 section 15.4.5: the fields a 200 would have carried
		// that describe caching (ETag, Cache-Control...), no content.
		artifactHeaders(h, x, "")
		x.status = http.StatusNotModified
		x.w.WriteHeader(http.StatusNotModified)
		return
	}

	body, size, stored, err := p.artifacts.OpenArtifact(ctx, rs.Digest)
	if err != nil {
		switch {
		case errors.Is(err, ErrArtifactNotFound):
			p.logAttrs(ctx, x, slog.LevelWarn, "artifact not found", slog.String("artifact", rs.Digest), slog.Any("error", err))
			p.answer(x, http.StatusBadGateway, "artifact "+rs.Digest+" not found")
		case ctx.Err() != nil:
			p.clientGone(ctx, x, err)
		default:
			p.logAttrs(ctx, x, slog.LevelWarn, "artifact unavailable", slog.String("artifact", rs.Digest), slog.Any("error", err))
			p.answer(x, http.StatusServiceUnavailable, "artifact store unavailable")
		}
		return
	}
	defer body.Close()
	artifactHeaders(h, x, cmp.Or(rs.ContentType, stored, "application/octet-stream"))
	if size >= 0 {
		// Set last: neither the route's headers nor its operations may
		// misstate the framing.
		h["Content-Length"] = []string{strconv.FormatInt(size, 10)}
	} else {
		delete(h, "Content-Length")
	}
	x.status = rs.Status
	x.w.WriteHeader(rs.Status)
	if r.Method == http.MethodHead {
		return
	}

	var src io.Reader = body
	if size >= 0 {
		src = io.LimitReader(body, size)
	}
	readErr, writeErr := p.copyBody(x.w, src, nil)
	if readErr == nil && writeErr == nil && size >= 0 && x.cw.n < size {
		readErr = io.ErrUnexpectedEOF
	}
	switch {
	case writeErr != nil || (readErr != nil && ctx.Err() != nil):
		p.clientGone(ctx, x, errors.Join(writeErr, readErr))
	case readErr != nil:
		p.logAttrs(ctx, x, slog.LevelWarn, "artifact body failed", slog.String("artifact", rs.Digest), slog.Any("error", readErr))
		// The status is sent: aborting is the only way left to tell the
		// client the body is incomplete, as in Proxy.respond.
		panic(http.ErrAbortHandler)
	}
}

// artifactHeaders writes the headers of x's artifact answer into h: its
// Content-Type (unless contentType is ""), ETag and route headers, then the
// route's response header operations and the rate-limit fields.
func artifactHeaders(h http.Header, x *exchange, contentType string) {
	rs := x.route.Respond
	for k, vv := range rs.Headers {
		h[k] = vv // capacity equals length: an Add below copies
	}
	if contentType != "" {
		h["Content-Type"] = []string{contentType}
	}
	h["Etag"] = []string{rs.ETag}
	applyOps(h, &x.route.ResponseHeaders)
	writeLimitHeaders(h, &x.ad)
}
