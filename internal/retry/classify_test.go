package retry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestClassifyErrors(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		err  error
		want Failure
	}{
		{"nil", nil, Other},
		{"eof", io.EOF, Other},
		{"canceled", context.Canceled, Other},
		{"reset after sending", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, Other},
		{"dial refused", dial, NotSent},
		{"dial refused in url.Error", &url.Error{Op: "Get", URL: "http://x", Err: dial}, NotSent},
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, NotSent},
		{"proxy connect", &net.OpError{Op: "proxyconnect", Net: "tcp", Err: io.EOF}, NotSent},
		{"dns", &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, NotSent},
		{"dns in dial", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "timeout", IsTimeout: true}}, NotSent},
		{"record header", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, NotSent},
		{"unknown authority", fmt.Errorf("handshake: %w", x509.UnknownAuthorityError{}), NotSent},
		{"hostname", x509.HostnameError{Host: "x"}, NotSent},
		{"alert (QUIC)", tls.AlertError(40), NotSent},
		{"scheme mismatch", &url.Error{Op: "Get", URL: "https://x", Err: http.ErrSchemeMismatch}, NotSent},
		{"deadline", context.DeadlineExceeded, Timeout},
		{"wrapped deadline", fmt.Errorf("attempt 2: %w", context.DeadlineExceeded), Timeout},
		{"os deadline", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, Timeout},
		{"timeout text elsewhere", errors.New(errTLSHandshakeTimeout + " (not a timeout type)"), Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestClassifyRealFailures provokes each failure for real against loopback
// listeners, so that a change in what net/http or crypto/tls return shows up
// here.
func TestClassifyRealFailures(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	blocking := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(blocking.Close)

	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack() error = %v", err)
			return
		}
		conn.Close()
	}))
	t.Cleanup(hangup.Close)

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(plain.Close)

	untrusted := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake errors are expected
	untrusted.StartTLS()
	t.Cleanup(untrusted.Close)

	mtls := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("handler reached without a client certificate")
	}))
	mtls.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	mtls.Config.ErrorLog = log.New(io.Discard, "", 0)
	mtls.StartTLS()
	t.Cleanup(mtls.Close)

	tests := []struct {
		name string
		do   func(t *testing.T) error
		want Failure
	}{
		{"connection refused", func(t *testing.T) error {
			return roundTrip(t, &http.Transport{}, context.Background(), "GET", "http://"+closedAddr(t)+"/", nil)
		}, NotSent},
		{"connection refused via client", func(t *testing.T) error {
			_, err := (&http.Client{Transport: &http.Transport{}}).Get("http://" + closedAddr(t) + "/")
			return err
		}, NotSent},
		{"TLS handshake never completes", func(t *testing.T) error {
			tr := &http.Transport{TLSHandshakeTimeout: 50 * time.Millisecond}
			return roundTrip(t, tr, context.Background(), "POST", "https://"+silentAddr(t)+"/", strings.NewReader("x"))
		}, NotSent},
		{"untrusted certificate", func(t *testing.T) error {
			return roundTrip(t, &http.Transport{}, context.Background(), "POST", untrusted.URL, strings.NewReader("x"))
		}, NotSent},
		{"TLS to a plain HTTP server", func(t *testing.T) error {
			return roundTrip(t, &http.Transport{}, context.Background(), "GET", "https"+strings.TrimPrefix(plain.URL, "http"), nil)
		}, NotSent},
		{"client certificate required", func(t *testing.T) error {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool(mtls)}}
			return roundTrip(t, tr, context.Background(), "POST", mtls.URL, strings.NewReader("x"))
		}, NotSent},
		{"response header timeout", func(t *testing.T) error {
			tr := &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond}
			return roundTrip(t, tr, context.Background(), "GET", blocking.URL, nil)
		}, Timeout},
		{"per-try timeout", func(t *testing.T) error {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			return roundTrip(t, &http.Transport{}, ctx, "GET", blocking.URL, nil)
		}, Timeout},
		{"per-try timeout via client", func(t *testing.T) error {
			_, err := (&http.Client{Transport: &http.Transport{}, Timeout: 50 * time.Millisecond}).Get(blocking.URL)
			return err
		}, Timeout},
		{"connection closed mid-request", func(t *testing.T) error {
			return roundTrip(t, &http.Transport{}, context.Background(), "POST", hangup.URL, strings.NewReader("payload"))
		}, Other},
		{"connection closed mid-request GET", func(t *testing.T) error {
			return roundTrip(t, &http.Transport{}, context.Background(), "GET", hangup.URL, nil)
		}, Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(t)
			if err == nil {
				t.Fatalf("round trip succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if got := Classify(err); got != tt.want {
				t.Errorf("Classify(%q (%T)) = %v, want %v", err, err, got, tt.want)
			}
		})
	}
}

// roundTrip sends one request with tr, as the proxy does, and returns its
// error. The response, if any, is closed.
func roundTrip(t *testing.T, tr *http.Transport, ctx context.Context, method, url string, body io.Reader) error {
	t.Helper()
	t.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatalf("NewRequest() error = %v", err)
	}
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen() error = %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentAddr returns the address of a listener that accepts connections and
// never writes, so a TLS handshake with it never completes.
func silentAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen() error = %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func certPool(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

// dialServer opens a raw connection to srv, closed at the end of the test.
func dialServer(t *testing.T, srv *httptest.Server) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatalf("Dial() error = %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
