package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

// TestStreamingIsNotBuffered has the upstream write one piece, flush, and
// then block until the client has read that piece through the proxy: if the
// proxy buffered, the client would never see it and the read would time out.
func TestStreamingIsNotBuffered(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		piece       string
	}{
		{name: "server-sent events", contentType: "text/event-stream", piece: "data: one\n"},
		{name: "chunked", contentType: "application/octet-stream", piece: "chunk one\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readByClient := newGate(t)
			up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				_, _ = io.WriteString(w, tt.piece)
				_ = http.NewResponseController(w).Flush()
				readByClient.wait(r.Context())
				_, _ = io.WriteString(w, "after\n")
			})
			g := startGateway(t, Config{}, config.Config{
				Services: []config.Service{service("s", up.URL)},
				Routes:   []config.Route{route("s", "s", "/")},
			})
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/", nil)
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			if resp.ContentLength != -1 {
				t.Errorf("ContentLength = %d, want -1 (streamed)", resp.ContentLength)
			}
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the first piece while the upstream holds the rest: %v (buffered by the proxy?)", err)
			}
			if line != tt.piece {
				t.Errorf("first piece = %q, want %q", line, tt.piece)
			}
			readByClient.open()
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "after\n" {
				t.Errorf("rest = %q, %v; want %q", rest, err, "after\n")
			}
		})
	}
}

func TestTrailers(t *testing.T) {
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Declared")
		_, _ = w.Write(body)
		w.Header().Set("X-Declared", "declared-value")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "undeclared-value")
		w.Header().Set(http.TrailerPrefix+"X-Request-Trailer", r.Trailer.Get("X-Req"))
	})
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, g.url+"/", pr)
	req.Trailer = http.Header{"X-Req": nil}
	go func() {
		_, _ = io.WriteString(pw, "payload")
		req.Trailer.Set("X-Req", "from-client")
		pw.Close()
	}()
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "payload" {
		t.Fatalf("body = %q, %v; want payload", body, err)
	}
	for _, c := range []struct{ k, want string }{
		{"X-Declared", "declared-value"},
		{"X-Undeclared", "undeclared-value"},
		{"X-Request-Trailer", "from-client"},
	} {
		if got := resp.Trailer.Get(c.k); got != c.want {
			t.Errorf("response trailer %s = %q, want %q (all trailers %v)", c.k, got, c.want, resp.Trailer)
		}
	}
}

// TestUpstreamBodyBroken checks that a response the upstream breaks off is
// not passed on as complete: the client must see an error, not a short body.
func TestUpstreamBodyBroken(t *testing.T) {
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, strings.Repeat("x", 10))
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // drops the connection mid-body
	})
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	// The headers may or may not have left the proxy when it aborts, so
	// the error shows either in Get or in reading the body.
	resp, err := g.client.Get(g.url + "/")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Errorf("GET of a body the upstream broke off: err = nil, want an error")
	}
	eventually(t, "the replica failure to be recorded", func() bool {
		st, _ := g.proxy.ReplicaStats("static:" + up.URL)
		return st.Failures == 1
	})
}
