package proxy

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings; nil means valid
	}{
		{name: "zero value", cfg: Config{}},
		{name: "all set", cfg: Config{
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			DialTimeout:    time.Second, TLSHandshakeTimeout: time.Second, IdleConnTimeout: time.Minute,
			MaxIdleConnsPerHost: 8, MaxBodyBytes: 1 << 20,
		}},
		{name: "invalid prefix", cfg: Config{TrustedProxies: []netip.Prefix{{}}}, wantErr: []string{"trusted_proxies[0]"}},
		{name: "negatives all reported", cfg: Config{
			DialTimeout: -1, TLSHandshakeTimeout: -1, IdleConnTimeout: -1, MaxIdleConnsPerHost: -1, MaxBodyBytes: -1,
		}, wantErr: []string{"dial_timeout", "tls_handshake_timeout", "idle_conn_timeout", "max_idle_conns_per_host", "max_body_bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors about %v", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
			if _, err := New(nilSource{}, Deps{}, tt.cfg, nil); err == nil {
				t.Errorf("New() with an invalid config: err = nil, want the validation error")
			}
		})
	}
}

func TestNewServerDefaults(t *testing.T) {
	srv := NewServer(nil, ServerConfig{Addr: "127.0.0.1:0"})
	if srv.ReadHeaderTimeout != DefaultReadHeaderTimeout || srv.IdleTimeout != DefaultIdleTimeout ||
		srv.MaxHeaderBytes != DefaultMaxHeaderBytes || srv.HTTP2.MaxConcurrentStreams != DefaultMaxConcurrentStreams {
		t.Errorf("NewServer() limits = %v %v %d %d, want the defaults",
			srv.ReadHeaderTimeout, srv.IdleTimeout, srv.MaxHeaderBytes, srv.HTTP2.MaxConcurrentStreams)
	}
	if srv.WriteTimeout != 0 || srv.ReadTimeout != 0 {
		t.Errorf("NewServer() ReadTimeout, WriteTimeout = %v, %v; want none (streams)", srv.ReadTimeout, srv.WriteTimeout)
	}
	if p := srv.Protocols; !p.HTTP1() || !p.UnencryptedHTTP2() {
		t.Errorf("plaintext NewServer() protocols = %v, want HTTP1 and UnencryptedHTTP2", p)
	}
}
