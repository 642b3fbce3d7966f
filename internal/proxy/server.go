package proxy

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"slices"
	"time"
)

// Defaults applied by NewServer for zero fields of ServerConfig.
const (
	DefaultReadHeaderTimeout    = 5 * time.Second
	DefaultIdleTimeout          = 120 * time.Second
	DefaultMaxHeaderBytes       = 64 << 10
	DefaultMaxConcurrentStreams = 100
)

// ServerConfig configures the listener side of the gateway. The zero value
// serves plaintext HTTP/1.1 and h2c on ":http" with the Default* limits.
type ServerConfig struct {
	// Addr is the address to listen on, as for http.Server.
	Addr string
	// TLSConfig enables TLS with HTTP/2 negotiated by ALPN; nil serves
	// plaintext with HTTP/2 by prior knowledge (h2c). With TLS, start the
	// server with ListenAndServeTLS("", "") or ServeTLS(ln, "", ""), the
	// certificates coming from TLSConfig.
	TLSConfig *tls.Config
	// ReadHeaderTimeout bounds reading a request's headers; 0 means
	// DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long an idle keep-alive connection is kept; 0
	// means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes limits the size of request headers; 0 means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxConcurrentStreams limits concurrent HTTP/2 streams per connection;
	// 0 means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams int
	// Log receives the server's own errors (TLS handshakes, broken
	// connections) at warn level; nil leaves net/http's default (stderr).
	Log *slog.Logger
}

// NewServer returns an http.Server serving h with cfg's limits. It sets no
// read or write timeout on whole requests, since bodies and responses may be
// long streams; ReadHeaderTimeout and IdleTimeout bound idle clients. The
// caller starts and stops it (ListenAndServe or ListenAndServeTLS, and
// Shutdown).
func NewServer(h http.Handler, cfg ServerConfig) *http.Server {
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.MaxConcurrentStreams == 0 {
		cfg.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	tlsCfg := cfg.TLSConfig
	if tlsCfg != nil {
		protos.SetHTTP2(true)
		// ServeTLS adds h2 itself; setting it here also makes Serve on a
		// tls.Listener built from srv.TLSConfig negotiate HTTP/2.
		if !slices.Contains(tlsCfg.NextProtos, "h2") {
			tlsCfg = tlsCfg.Clone()
			tlsCfg.NextProtos = append([]string{"h2"}, tlsCfg.NextProtos...)
			if !slices.Contains(tlsCfg.NextProtos, "http/1.1") {
				tlsCfg.NextProtos = append(tlsCfg.NextProtos, "http/1.1")
			}
		}
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		Protocols:         protos,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: cfg.MaxConcurrentStreams},
	}
	if cfg.Log != nil {
		srv.ErrorLog = slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn)
	}
	return srv
}
