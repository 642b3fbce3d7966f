package artifact

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serve serves st through Handler, mounted as the admin API mounts it.
func serve(t *testing.T, st Store) *httptest.Server {
	t.Helper()
	h := Handler(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	mux := http.NewServeMux()
	mux.Handle("/artifacts", h)
	mux.Handle("/artifacts/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, url string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

type infoBody struct {
	Digest      string `json:"digest"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
}

func TestHandlerPutGet(t *testing.T) {
	srv := serve(t, newDir(t, 0))
	body := []byte("openapi: 3.1.0\ninfo: {title: pets}\n")
	digest := digestOf(body)

	resp, b := do(t, "POST", srv.URL+"/artifacts", body, map[string]string{"Content-Type": "application/yaml"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST status = %d (%s), want 201", resp.StatusCode, b)
	}
	want := infoBody{Digest: digest, Size: int64(len(body)), ContentType: "application/yaml"}
	if got := decode[infoBody](t, b); got != want {
		t.Errorf("POST body = %+v, want %+v", got, want)
	}
	if got := resp.Header.Get("Location"); got != "/artifacts/"+digest {
		t.Errorf("POST Location = %q, want %q", got, "/artifacts/"+digest)
	}
	// Again: the same artifact.
	if resp, b := do(t, "POST", srv.URL+"/artifacts", body, map[string]string{"Content-Type": "application/yaml"}); resp.StatusCode != http.StatusCreated || decode[infoBody](t, b) != want {
		t.Errorf("POST again = %d %s, want 201 %+v", resp.StatusCode, b, want)
	}

	wantHeader := map[string]string{
		"Content-Type":   "application/yaml",
		"Content-Length": strconv.Itoa(len(body)),
		"ETag":           `"` + digest + `"`,
		"Cache-Control":  immutable,
	}
	for _, method := range []string{"GET", "HEAD"} {
		resp, b := do(t, method, srv.URL+"/artifacts/"+digest, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s status = %d (%s), want 200", method, resp.StatusCode, b)
		}
		for k, v := range wantHeader {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s %s = %q, want %q", method, k, got, v)
			}
		}
		wantBody := body
		if method == "HEAD" {
			wantBody = []byte{}
		}
		if !bytes.Equal(b, wantBody) {
			t.Errorf("%s body = %q, want %q", method, b, wantBody)
		}
	}

	resp, b = do(t, "GET", srv.URL+"/artifacts/"+digest, nil, map[string]string{"If-None-Match": `"` + digest + `"`})
	if resp.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Errorf("GET If-None-Match = %d %q, want 304 and no body", resp.StatusCode, b)
	}
}

func TestHandlerDefaultContentType(t *testing.T) {
	srv := serve(t, newDir(t, 0))
	resp, b := do(t, "POST", srv.URL+"/artifacts", []byte("raw"), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST status = %d (%s), want 201", resp.StatusCode, b)
	}
	if got := decode[infoBody](t, b).ContentType; got != DefaultContentType {
		t.Errorf("POST content_type = %q, want %q", got, DefaultContentType)
	}
	resp, _ = do(t, "GET", srv.URL+"/artifacts/"+digestOf([]byte("raw")), nil, nil)
	if got := resp.Header.Get("Content-Type"); got != DefaultContentType {
		t.Errorf("GET Content-Type = %q, want %q", got, DefaultContentType)
	}
}

func TestHandlerList(t *testing.T) {
	srv := serve(t, newDir(t, 0))
	type listBody struct {
		Artifacts []infoBody `json:"artifacts"`
	}
	resp, b := do(t, "GET", srv.URL+"/artifacts", nil, nil)
	if resp.StatusCode != http.StatusOK || string(b) != "{\"artifacts\":[]}\n" {
		t.Errorf("GET /artifacts (empty) = %d %s, want 200 {\"artifacts\":[]}", resp.StatusCode, b)
	}
	var want []infoBody
	for i, ct := range []string{"text/plain", "application/json", "application/yaml"} {
		body := blob(ct, 50+i)
		do(t, "POST", srv.URL+"/artifacts", body, map[string]string{"Content-Type": ct})
		want = append(want, infoBody{Digest: digestOf(body), Size: int64(len(body)), ContentType: ct})
	}
	slices.SortFunc(want, func(a, b infoBody) int { return strings.Compare(a.Digest, b.Digest) })
	for _, path := range []string{"/artifacts", "/artifacts/"} {
		resp, b := do(t, "GET", srv.URL+path, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s status = %d (%s), want 200", path, resp.StatusCode, b)
		}
		if got := decode[listBody](t, b).Artifacts; !slices.Equal(got, want) {
			t.Errorf("GET %s = %+v, want %+v", path, got, want)
		}
	}
}

func TestHandlerErrors(t *testing.T) {
	const limit = 1024
	srv := serve(t, newDir(t, limit))
	unknown := digestOf([]byte("unknown"))
	for _, tc := range []struct {
		name       string
		method     string
		path       string
		body       []byte
		header     map[string]string
		wantStatus int
		wantError  string
	}{
		{"bad digest", "GET", "/artifacts/not-a-digest", nil, nil, http.StatusBadRequest, `invalid digest "not-a-digest"`},
		{"upper case digest", "HEAD", "/artifacts/" + strings.ToUpper(unknown), nil, nil, http.StatusBadRequest, ""},
		{"unknown digest", "GET", "/artifacts/" + unknown, nil, nil, http.StatusNotFound, unknown},
		{"too large", "POST", "/artifacts", blob("big", limit+1), nil, http.StatusRequestEntityTooLarge, "1024 bytes"},
		{"declared too large", "POST", "/artifacts", []byte("small"), map[string]string{"Content-Length": strconv.Itoa(MaxSize + 1)}, http.StatusRequestEntityTooLarge, "limit"},
		{"method", "DELETE", "/artifacts/" + unknown, nil, nil, http.StatusMethodNotAllowed, "DELETE"},
		{"method on list", "PUT", "/artifacts", []byte("x"), nil, http.StatusMethodNotAllowed, "PUT"},
		{"nested path", "GET", "/artifacts/" + unknown + "/x", nil, nil, http.StatusNotFound, "no such endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp *http.Response
			var b []byte
			if cl, ok := tc.header["Content-Length"]; ok {
				resp, b = declaredLength(t, srv.URL+tc.path, cl, tc.body)
			} else {
				resp, b = do(t, tc.method, srv.URL+tc.path, tc.body, tc.header)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, b, tc.wantStatus)
			}
			if tc.method == "HEAD" {
				return
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			msg := decode[map[string]string](t, b)["error"]
			if msg == "" || !strings.Contains(msg, tc.wantError) {
				t.Errorf("error = %q, want one containing %q", msg, tc.wantError)
			}
		})
	}
}

// declaredLength sends a POST whose Content-Length header claims more than
// the body: the handler must refuse it before reading.
func declaredLength(t *testing.T, url, length string, body []byte) (*http.Response, []byte) {
	t.Helper()
	// Bounded: a handler that reads the body waits for the rest forever.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength, _ = strconv.ParseInt(length, 10, 64)
	// The transport would refuse to send fewer bytes than declared; a body
	// that stops short is a client error the server never sees, as the
	// server answers first.
	req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), blockingReader{ctx.Done()}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s (Content-Length %s, body never complete): %v", url, length, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// blockingReader blocks until done is closed, like a slow client.
type blockingReader struct{ done <-chan struct{} }

func (r blockingReader) Read([]byte) (int, error) {
	<-r.done
	return 0, io.ErrUnexpectedEOF
}

func TestHandlerBackendFailure(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, d)
	// A file where the store's directory should be: every access fails,
	// and not as "not found".
	root := filepath.Join(dir, "sha256")
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/artifacts/" + digestOf([]byte("x"))},
		{"GET", "/artifacts"},
		{"POST", "/artifacts"},
	} {
		resp, b := do(t, tc.method, srv.URL+tc.path, []byte("body"), nil)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s %s status = %d (%s), want 503", tc.method, tc.path, resp.StatusCode, b)
			continue
		}
		if msg := decode[map[string]string](t, b)["error"]; !strings.Contains(msg, "not a directory") {
			t.Errorf("%s %s error = %q, want the store's failure", tc.method, tc.path, msg)
		}
	}
}
