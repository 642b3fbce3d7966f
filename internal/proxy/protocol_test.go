package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gatehouse test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestHTTP2OverTLS serves the proxy with NewServer and TLS: clients
// negotiate HTTP/2 by ALPN (or stay on HTTP/1.1 if they ask), and an https
// upstream is spoken to over HTTP/2 as well.
func TestHTTP2OverTLS(t *testing.T) {
	up := httptest.NewUnstartedServer(echoHandler("tls-up"))
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	upPool := x509.NewCertPool()
	upPool.AddCert(up.Certificate())

	var snap atomic.Pointer[snapshot.Snapshot]
	snap.Store(compile(t, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	}, 1))
	p, err := New(&snap, Deps{}, Config{UpstreamTLS: &tls.Config{RootCAs: upPool}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	cert, pool := selfSigned(t)
	srv := NewServer(p, ServerConfig{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })

	tests := []struct {
		name      string
		h2        bool
		wantMajor int
	}{
		{name: "h2 by ALPN", h2: true, wantMajor: 2},
		{name: "http/1.1 over TLS", h2: false, wantMajor: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetHTTP1(!tt.h2)
			tr.Protocols.SetHTTP2(tt.h2)
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + ln.Addr().String() + "/x")
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != tt.wantMajor {
				t.Errorf("client ProtoMajor = %d, want %d", resp.ProtoMajor, tt.wantMajor)
			}
			s := decodeSeen(t, resp)
			if s.Proto != "HTTP/2.0" {
				t.Errorf("https upstream saw %s, want HTTP/2.0 negotiated by ALPN", s.Proto)
			}
			if got := s.Header.Get("X-Forwarded-Proto"); got != "https" {
				t.Errorf("X-Forwarded-Proto = %q, want https", got)
			}
		})
	}
}

// TestH2C checks HTTP/2 with prior knowledge on both sides: an h2c client
// to the proxy, and the proxy to a service with protocol h2c.
func TestH2C(t *testing.T) {
	h2cUp := httptest.NewUnstartedServer(echoHandler("h2c-up"))
	h2cUp.Config.Protocols = new(http.Protocols)
	h2cUp.Config.Protocols.SetUnencryptedHTTP2(true)
	h2cUp.Start()
	t.Cleanup(h2cUp.Close)
	h1Up := echoUpstream(t, "h1-up")
	h2cSvc := service("h2c", h2cUp.URL)
	h2cSvc.Protocol = "h2c"
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{h2cSvc, service("h1", h1Up.URL)},
		Routes:   []config.Route{route("h2c", "h2c", "/h2c"), route("h1", "h1", "/h1")},
	})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	tests := []struct {
		path      string
		wantProto string
	}{
		{path: "/h2c", wantProto: "HTTP/2.0"},
		{path: "/h1", wantProto: "HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := client.Get(g.url + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != 2 {
				t.Errorf("client ProtoMajor = %d, want 2 (h2c)", resp.ProtoMajor)
			}
			if s := decodeSeen(t, resp); s.Proto != tt.wantProto {
				t.Errorf("upstream saw %s, want %s", s.Proto, tt.wantProto)
			}
		})
	}
}

func TestGRPCHealth(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("watched", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	svc := service("grpc", "http://"+lis.Addr().String())
	svc.Protocol = "h2c"
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{svc},
		Routes:   []config.Route{route("health", "grpc", "/grpc.health.v1.Health/")},
	})
	conn, err := grpc.NewClient("passthrough:///"+g.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	tests := []struct {
		name       string
		service    string
		wantCode   codes.Code
		wantStatus healthpb.HealthCheckResponse_ServingStatus
	}{
		// A successful call ends with grpc-status in HTTP/2 trailers: the
		// client fails without them.
		{name: "serving", service: "", wantCode: codes.OK, wantStatus: healthpb.HealthCheckResponse_SERVING},
		{name: "unknown service", service: "nope", wantCode: codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: tt.service})
			if code := status.Code(err); code != tt.wantCode {
				t.Fatalf("Check(%q) code = %v (%v), want %v", tt.service, code, err, tt.wantCode)
			}
			if err == nil && resp.GetStatus() != tt.wantStatus {
				t.Errorf("Check(%q) = %v, want %v", tt.service, resp.GetStatus(), tt.wantStatus)
			}
		})
	}

	t.Run("server streaming", func(t *testing.T) {
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "watched"})
		if err != nil {
			t.Fatal(err)
		}
		// Each message must reach the client while the stream stays open.
		for _, want := range []healthpb.HealthCheckResponse_ServingStatus{
			healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING,
		} {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("Recv(): %v", err)
			}
			if resp.GetStatus() != want {
				t.Errorf("Watch status = %v, want %v", resp.GetStatus(), want)
			}
			hs.SetServingStatus("watched", healthpb.HealthCheckResponse_NOT_SERVING)
		}
	})
}

// TestHTTPBin runs a few requests against a real, feature-rich upstream.
func TestHTTPBin(t *testing.T) {
	up := httptest.NewServer(httpbin.New())
	t.Cleanup(up.Close)
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("bin", up.URL)},
		Routes:   []config.Route{route("bin", "bin", "/")},
	})
	tests := []struct {
		path     string
		wantCode int
	}{
		{path: "/status/418", wantCode: 418},
		{path: "/gzip", wantCode: 200},
		{path: "/stream/5", wantCode: 200},
		{path: "/redirect-to?url=/get&status_code=302", wantCode: 302},
	}
	noRedirect := &http.Client{
		Transport:     g.client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := noRedirect.Get(g.url + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Errorf("GET %s status = %d, want %d", tt.path, resp.StatusCode, tt.wantCode)
			}
		})
	}
}
