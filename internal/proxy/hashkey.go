package proxy

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gatehouse-gw/gatehouse/internal/balance"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// hashKey returns the consistent-hash key of r for the service policy b:
// the hash of the client IP (the direct peer, or the first X-Forwarded-For
// hop when the peer is a trusted proxy), of the first value of a header, or
// of a cookie's value. A request without that value gets a random key, so
// that such requests spread over the replicas instead of all landing on
// the owner of the empty string. It does not allocate.
func (p *Proxy) hashKey(r *http.Request, b *snapshot.Balancer) uint64 {
	var s string
	switch b.HashOn {
	case "header":
		if vv := r.Header[b.HashName]; len(vv) > 0 {
			s = vv[0]
		}
	case "cookie":
		s = cookieValue(r.Header["Cookie"], b.HashName)
	default:
		s = p.clientIP(r)
	}
	if s == "" {
		return rand.Uint64()
	}
	return balance.HashKey(s)
}

// clientIP is the address the client is known by: the first hop of
// X-Forwarded-For when the direct peer is a trusted proxy, else the peer's
// address. It is "" when there is none.
func (p *Proxy) clientIP(r *http.Request) string {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	if len(p.cfg.TrustedProxies) == 0 {
		return ip
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || !p.cfg.trusted(a.Unmap()) {
		return ip
	}
	if xff := r.Header["X-Forwarded-For"]; len(xff) > 0 {
		first, _, _ := strings.Cut(xff[0], ",")
		if first = strings.TrimSpace(first); first != "" {
			return first
		}
	}
	return ip
}

// cookieValue returns the value of the cookie name in the Cookie header
// lines, without surrounding quotes, or "" if it is absent. Unlike
// http.Request.Cookie it does not allocate.
func cookieValue(lines []string, name string) string {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}
