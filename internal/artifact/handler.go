package artifact

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// infoJSON is Info on the wire.
type infoJSON struct {
	Digest      string `json:"digest"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
}

func toJSON(i Info) infoJSON {
	return infoJSON{Digest: i.Digest, Size: i.Size, ContentType: i.ContentType}
}

// listJSON is the answer to GET /artifacts.
type listJSON struct {
	Artifacts []infoJSON `json:"artifacts"`
	// Truncated says there are more than MaxList artifacts.
	Truncated bool `json:"truncated,omitempty"`
}

// Handler serves st on the admin API. Mount it at both /artifacts and
// /artifacts/ (it routes on the full path):
//
//	POST /artifacts             store the request body, with its Content-Type:
//	                            201 {"digest","size","content_type"}; 413 over MaxSize
//	GET  /artifacts             200 {"artifacts":[{"digest","size","content_type"}...]}
//	GET  /artifacts/{digest}    the content, with its Content-Type and ETag "<digest>";
//	HEAD /artifacts/{digest}    400 for a malformed digest, 404 for an unknown one
//
// Errors are JSON, {"error":"message"}; a failing store answers 503. The
// handler is safe for concurrent use; log receives store failures (nil
// discards them).
func Handler(st Store, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{st: st, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /artifacts", h.put)
	mux.HandleFunc("GET /artifacts", h.list)
	mux.HandleFunc("GET /artifacts/{$}", h.list)
	mux.HandleFunc("GET /artifacts/{digest}", h.get)
	// The mux would answer these in plain text.
	mux.HandleFunc("/artifacts", methodNotAllowed("GET, HEAD, POST"))
	mux.HandleFunc("/artifacts/{digest}", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s; want /artifacts or /artifacts/{digest}", r.URL.Path))
	})
	return mux
}

type handler struct {
	st  Store
	log *slog.Logger
}

// immutable is the Cache-Control of an artifact: its URL names its content.
// Private, as admin responses should not sit in shared caches.
const immutable = "private, max-age=31536000, immutable"

func (h *handler) put(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > MaxSize {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is larger than the limit of %d bytes (%d MiB)", r.ContentLength, MaxSize, MaxSize>>20))
		return
	}
	ct := r.Header.Get("Content-Type")
	if _, err := normalizeContentType(ct); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	body := &bodyReader{r: r.Body}
	info, err := h.st.Put(r.Context(), body, ct)
	switch {
	case errors.Is(err, ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case err != nil && body.err != nil:
		writeError(w, http.StatusBadRequest, "read request body: "+body.err.Error())
		return
	case err != nil:
		h.log.Warn("store artifact", "err", err)
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	h.log.Info("artifact stored", "digest", info.Digest, "size", info.Size, "content_type", info.ContentType)
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+info.Digest)
	writeJSON(w, http.StatusCreated, toJSON(info))
}

// bodyReader remembers a failed read of the request body, which is the
// client's fault, not the store's.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	infos, err := h.st.List(r.Context())
	truncated := errors.Is(err, ErrTruncated)
	if err != nil && !truncated {
		h.log.Warn("list artifacts", "err", err)
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	out := listJSON{Artifacts: make([]infoJSON, 0, len(infos)), Truncated: truncated}
	for _, i := range infos {
		out.Artifacts = append(out.Artifacts, toJSON(i))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	digest := r.PathValue("digest")
	if err := ValidDigest(digest); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rc, info, err := h.st.Open(r.Context(), digest)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no artifact has digest %s", digest))
		return
	case err != nil:
		h.log.Warn("open artifact", "digest", digest, "err", err)
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer rc.Close()
	etag := `"` + info.Digest + `"`
	hdr := w.Header()
	hdr.Set("ETag", etag)
	hdr.Set("Cache-Control", immutable)
	if MatchETag(r.Header["If-None-Match"], etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", info.ContentType)
	hdr.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	// Uploaded content, served as uploaded: no guessing at its type.
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, rc); err != nil {
		// Too late for an error status: the short body tells the client.
		h.log.Warn("serve artifact", "digest", digest, "err", err)
	}
}

// MatchETag reports whether the If-None-Match values vv (every header
// line) match etag, by the weak comparison RFC 9110 section 13.1.2
// prescribes: "*", or a listed tag equal to etag with any W/ prefix
// ignored. It does not allocate. The admin handler and the proxy's respond
// routes both answer 304 by it.
func MatchETag(vv []string, etag string) bool {
	for _, v := range vv {
		for v != "" {
			var tag string
			tag, v, _ = strings.Cut(v, ",")
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
	}
	return false
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow))
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
