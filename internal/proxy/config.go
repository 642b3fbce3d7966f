package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Defaults applied by New for zero fields of Config.
const (
	DefaultDialTimeout         = 5 * time.Second
	DefaultTLSHandshakeTimeout = 5 * time.Second
	DefaultIdleConnTimeout     = 90 * time.Second
	DefaultMaxIdleConnsPerHost = 64
)

// Config holds the tunables of a Proxy. The zero value is valid and useful:
// no trusted proxies (client-sent X-Forwarded-* headers are replaced), the
// Default* timeouts and pool sizes, no request body limit, the system roots
// for https upstreams and the system clock. The per-request upstream
// timeout and the retry policy are not here: they are the route's Timeout
// and Retry in the snapshot.
type Config struct {
	// TrustedProxies are the networks whose X-Forwarded-For, -Proto and -Host
	// headers are kept (For is appended to). A request from any other peer
	// has them replaced by what the gateway sees. Empty trusts no one.
	TrustedProxies []netip.Prefix
	// DialTimeout bounds connecting to an upstream; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake with an https upstream; 0
	// means DefaultTLSHandshakeTimeout.
	TLSHandshakeTimeout time.Duration
	// IdleConnTimeout is how long an idle upstream connection is kept; 0
	// means DefaultIdleConnTimeout.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost is the number of idle keep-alive connections kept
	// per upstream replica; 0 means DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// MaxBodyBytes limits request bodies; a larger body is answered with
	// 413. 0 means no limit.
	MaxBodyBytes int64
	// UpstreamTLS is the TLS configuration for https upstreams (for example
	// a private CA in RootCAs). Nil uses the system roots. It is cloned.
	UpstreamTLS *tls.Config
	// Now is the clock of circuit-breaker and retry-budget decisions
	// (cool-downs, failure windows, budget windows); nil means the system
	// clock. Timeouts, back-off and measured latencies always use the
	// system clock.
	Now func() time.Time
}

// Validate reports every invalid field of c.
func (c Config) Validate() error {
	var errs []error
	for i, p := range c.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("trusted_proxies[%d]: invalid prefix %v", i, p))
		}
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("dial_timeout: %v is negative; use 0 for the default %v", c.DialTimeout, DefaultDialTimeout))
	}
	if c.TLSHandshakeTimeout < 0 {
		errs = append(errs, fmt.Errorf("tls_handshake_timeout: %v is negative; use 0 for the default %v", c.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout))
	}
	if c.IdleConnTimeout < 0 {
		errs = append(errs, fmt.Errorf("idle_conn_timeout: %v is negative; use 0 for the default %v", c.IdleConnTimeout, DefaultIdleConnTimeout))
	}
	if c.MaxIdleConnsPerHost < 0 {
		errs = append(errs, fmt.Errorf("max_idle_conns_per_host: %d is negative; use 0 for the default %d", c.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %d is negative; use 0 for no limit", c.MaxBodyBytes))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.TLSHandshakeTimeout == 0 {
		c.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	return c
}

// trusted reports whether addr is in one of the trusted proxy networks.
func (c *Config) trusted(addr netip.Addr) bool {
	for _, p := range c.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
