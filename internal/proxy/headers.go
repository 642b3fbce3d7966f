package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// isHopByHop reports whether the canonical header name k is a hop-by-hop
// header (RFC 9110 section 7.6.1, plus the non-standard Proxy-Connection and
// Keep-Alive that clients still send).
func isHopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// hasToken reports whether the comma-separated header values vv contain
// token, compared case-insensitively. It does not allocate.
func hasToken(vv []string, token string) bool {
	for _, v := range vv {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// copyEndToEnd copies the end-to-end headers of src into dst: everything but
// the hop-by-hop headers and the headers src's Connection header names. The
// value slices are shared, capped so that an append never writes into src.
func copyEndToEnd(dst, src http.Header) {
	conn := src["Connection"]
	for k, vv := range src {
		if isHopByHop(k) || (len(conn) > 0 && hasToken(conn, k)) {
			continue
		}
		dst[k] = vv[:len(vv):len(vv)]
	}
}

// isWebSocket reports whether h asks for a WebSocket upgrade: Connection
// names "upgrade" and Upgrade names "websocket". Other upgrades (h2c, TLS)
// are not let through: they are stripped like any hop-by-hop header and the
// request goes on as a plain one.
func isWebSocket(h http.Header) bool {
	return hasToken(h["Connection"], "upgrade") && hasToken(h["Upgrade"], "websocket")
}

// applyOps applies route header operations in the documented order Remove,
// Set, Add. Names in ops are canonical already.
func applyOps(h http.Header, ops *snapshot.HeaderOps) {
	for _, k := range ops.Remove {
		delete(h, k)
	}
	for _, kv := range ops.Set {
		h[kv[0]] = []string{kv[1]}
	}
	for _, kv := range ops.Add {
		h[kv[0]] = append(h[kv[0]], kv[1])
	}
}

// setForwarded sets X-Forwarded-For, -Proto and -Host on out for the
// incoming request in. A trusted peer's values are kept (For is appended
// to); anyone else's are replaced, so that a client cannot spoof its address
// to the upstream.
func (p *Proxy) setForwarded(out http.Header, in *http.Request) {
	ip, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		ip = ""
	}
	trusted := false
	if ip != "" && len(p.cfg.TrustedProxies) > 0 {
		if a, err := netip.ParseAddr(ip); err == nil {
			trusted = p.cfg.trusted(a.Unmap())
		}
	}
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	if !trusted {
		if ip == "" {
			delete(out, "X-Forwarded-For")
		} else {
			out["X-Forwarded-For"] = []string{ip}
		}
		out["X-Forwarded-Proto"] = []string{proto}
		out["X-Forwarded-Host"] = []string{in.Host}
		return
	}
	if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
		ip = strings.Join(prior, ", ") + ", " + ip
	}
	out["X-Forwarded-For"] = []string{ip}
	if len(in.Header["X-Forwarded-Proto"]) == 0 {
		out["X-Forwarded-Proto"] = []string{proto}
	}
	if len(in.Header["X-Forwarded-Host"]) == 0 {
		out["X-Forwarded-Host"] = []string{in.Host}
	}
}
