package retry

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// source is a client body: it hands out data a few bytes at a time and
// records how much was read and whether it was closed.
type source struct {
	r      io.Reader
	read   int
	closed bool
}

func newSource(data []byte) *source {
	return &source{r: iotest.HalfReader(bytes.NewReader(data))}
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.read += n
	return n, err
}

func (s *source) Close() error { s.closed = true; return nil }

func TestBufferReplayable(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	tests := []struct {
		name          string
		data          []byte
		contentLength int64
		max           int64
	}{
		{"known length", data, 1000, 4096},
		{"unknown length", data, -1, 4096},
		{"exactly max known", data, 1000, 1000},
		{"exactly max unknown", data, -1, 1000},
		{"empty", nil, 0, 4096},
		{"empty unknown", nil, -1, 4096},
		{"empty with max 0", nil, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Buffer(newSource(tt.data), tt.contentLength, tt.max)
			if err != nil {
				t.Fatalf("Buffer() error = %v", err)
			}
			if !b.Replayable() {
				t.Fatalf("Replayable() = false, want true")
			}
			if got, want := b.ContentLength(), int64(len(tt.data)); got != want {
				t.Errorf("ContentLength() = %d, want %d", got, want)
			}
			// Two readers open at once read independently.
			r1, r2 := b.Open(), b.Open()
			half := make([]byte, len(tt.data)/2)
			if _, err := io.ReadFull(r1, half); err != nil {
				t.Fatalf("reading half of attempt 1: %v", err)
			}
			for i, r := range []io.ReadCloser{r2, r1, b.Open()} {
				got, err := io.ReadAll(r)
				if err != nil {
					t.Fatalf("reader %d: ReadAll() error = %v", i, err)
				}
				if i == 1 {
					got = append(half, got...)
				}
				if !bytes.Equal(got, tt.data) {
					t.Errorf("reader %d read %d bytes %.20q..., want %d bytes %.20q...", i, len(got), got, len(tt.data), tt.data)
				}
				if err := r.Close(); err != nil {
					t.Errorf("reader %d: Close() = %v", i, err)
				}
			}
		})
	}
}

func TestBufferNilBody(t *testing.T) {
	for _, body := range []io.ReadCloser{nil, http.NoBody} {
		b, err := Buffer(body, 0, 10)
		if err != nil || !b.Replayable() {
			t.Fatalf("Buffer(%v) = replayable %v, %v, want true, nil", body, b.Replayable(), err)
		}
		if got := b.Open(); got != http.NoBody {
			t.Errorf("Open() = %v, want http.NoBody", got)
		}
	}
}

func TestBufferTooLarge(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefghij"), 100) // 1000 bytes
	tests := []struct {
		name          string
		contentLength int64
		max           int64
		wantRead      int // bytes Buffer reads ahead, at most
	}{
		{"known length over max: nothing read", 1000, 999, 0},
		{"unknown length one over max", -1, 999, 1000},
		{"unknown length well over max", -1, 100, 101},
		{"max zero", -1, 0, 1},
		{"negative max", -1, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(data)
			b, err := Buffer(src, tt.contentLength, tt.max)
			if err != nil {
				t.Fatalf("Buffer() error = %v", err)
			}
			if b.Replayable() {
				t.Fatalf("Replayable() = true, want false")
			}
			if src.read > tt.wantRead {
				t.Errorf("Buffer read %d bytes ahead, want at most %d", src.read, tt.wantRead)
			}
			if got := b.ContentLength(); got != tt.contentLength {
				t.Errorf("ContentLength() = %d, want %d", got, tt.contentLength)
			}
			r := b.Open()
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("ReadAll() error = %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("single attempt read %d bytes %.20q..., want the whole %d bytes %.20q...", len(got), got, len(data), data)
			}
			if err := r.Close(); err != nil || !src.closed {
				t.Errorf("Close() = %v, client body closed = %v, want nil, true", err, src.closed)
			}
			if _, err := b.Open().Read(make([]byte, 1)); !errors.Is(err, ErrNotReplayable) {
				t.Errorf("second Open().Read() error = %v, want ErrNotReplayable", err)
			}
		})
	}
}

func TestBufferClientErrors(t *testing.T) {
	boom := errors.New("client went away")
	data := strings.Repeat("x", 300)
	t.Run("while buffering", func(t *testing.T) {
		src := io.NopCloser(io.MultiReader(strings.NewReader(data), iotest.ErrReader(boom)))
		_, err := Buffer(src, -1, 1000)
		if !errors.Is(err, ErrClientBody) || !errors.Is(err, boom) {
			t.Errorf("Buffer() error = %v, want ErrClientBody wrapping %v", err, boom)
		}
	})
	t.Run("short body", func(t *testing.T) {
		// A client that sends less than its Content-Length: net/http's
		// server reports io.ErrUnexpectedEOF.
		ran := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(ran)
			_, err := Buffer(r.Body, r.ContentLength, 1000)
			if !errors.Is(err, ErrClientBody) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("Buffer() error = %v, want ErrClientBody wrapping io.ErrUnexpectedEOF", err)
			}
		}))
		defer srv.Close()
		conn := dialServer(t, srv)
		_, _ = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
		conn.(interface{ CloseWrite() error }).CloseWrite()
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not run")
		}
	})
	t.Run("after the read-ahead", func(t *testing.T) {
		src := io.NopCloser(io.MultiReader(strings.NewReader(data), iotest.ErrReader(boom)))
		b, err := Buffer(src, -1, 100)
		if err != nil {
			t.Fatalf("Buffer() error = %v", err)
		}
		got, err := io.ReadAll(b.Open())
		if !errors.Is(err, ErrClientBody) || !errors.Is(err, boom) {
			t.Errorf("ReadAll() error = %v, want ErrClientBody wrapping %v", err, boom)
		}
		if string(got) != data {
			t.Errorf("read %d bytes before the error, want %d", len(got), len(data))
		}
	})
}

// TestBufferThroughProxy forwards real client requests to a real upstream the
// way the proxy does: replayable bodies arrive whole at every attempt, and a
// body too large to replay arrives whole at its single attempt.
func TestBufferThroughProxy(t *testing.T) {
	var mu sync.Mutex
	var received [][]byte
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream ReadAll() error = %v", err)
		}
		mu.Lock()
		received = append(received, body)
		mu.Unlock()
	}))
	defer upstream.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()

	const max = 1000
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := Buffer(r.Body, r.ContentLength, max)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		attempts := 1
		if b.Replayable() {
			attempts = 3
		}
		for range attempts {
			out, _ := http.NewRequestWithContext(r.Context(), "POST", upstream.URL, b.Open())
			out.ContentLength = b.ContentLength()
			resp, err := tr.RoundTrip(out)
			if err != nil {
				t.Errorf("upstream RoundTrip() error = %v", err)
				return
			}
			resp.Body.Close()
		}
	}))
	defer proxy.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	tests := []struct {
		name    string
		size    int
		chunked bool
		want    int // attempts
	}{
		{"small", 500, false, 3},
		{"small chunked", 500, true, 3},
		{"large", 100_000, false, 1},
		{"large chunked", 100_000, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			received = nil
			mu.Unlock()
			data := bytes.Repeat([]byte{'z'}, tt.size)
			data[0], data[len(data)-1] = 'A', 'Z'
			var body io.Reader = bytes.NewReader(data)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			resp, err := client.Post(proxy.URL, "application/octet-stream", body)
			if err != nil {
				t.Fatalf("Post() error = %v", err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if len(received) != tt.want {
				t.Fatalf("upstream received %d requests, want %d", len(received), tt.want)
			}
			for i, got := range received {
				if !bytes.Equal(got, data) {
					t.Errorf("attempt %d: upstream received %d bytes, want %d identical", i, len(got), len(data))
				}
			}
		})
	}
}
