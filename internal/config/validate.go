package config

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Validate checks the whole configuration and returns nil or an Errors
// listing every problem found (not just the first), each naming the field
// and quoting the offending value.
//
// Methods must be written in upper case: HTTP methods are case-sensitive
// (RFC 9110 section 9.1), so "get" would never match a GET request, and
// Validate rejects it rather than guess.
func (c Config) Validate() error {
	v := &validator{}
	services := make(map[string]int, len(c.Services))
	for i, s := range c.Services {
		p := fmt.Sprintf("services[%d]", i)
		// An invalid but non-empty name is still recorded, so that the
		// routes naming it do not add a second, misleading error.
		if v.name(p+".name", "service", s.Name) || s.Name != "" {
			if j, dup := services[s.Name]; dup {
				v.addf(p+".name", "duplicate service name %q (also services[%d])", s.Name, j)
			} else {
				services[s.Name] = i
			}
		}
		v.service(p, s)
	}
	routes := make(map[string]int, len(c.Routes))
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		// An invalid but non-empty name is still recorded, so that the
		// routes naming it do not add a second, misleading error.
		if v.name(p+".name", "route", r.Name) || r.Name != "" {
			if j, dup := routes[r.Name]; dup {
				v.addf(p+".name", "duplicate route name %q (also routes[%d])", r.Name, j)
			} else {
				routes[r.Name] = i
			}
		}
		switch {
		case r.Service != "" && r.Respond != nil:
			v.addf(p+".respond", "route has both service %q and respond: a route forwards to a service or responds itself, remove one", r.Service)
		case r.Service == "" && r.Respond == nil:
			v.add(p+".service", "must name a service (or set respond to answer with an artifact)")
		}
		if r.Service != "" {
			if _, ok := services[r.Service]; !ok {
				v.addf(p+".service", "unknown service %q", r.Service)
			}
		}
		v.route(p, r)
	}
	v.ambiguous(c.Routes)
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

type validator struct {
	errs Errors
}

func (v *validator) add(path, msg string) {
	v.errs = append(v.errs, FieldError{Path: path, Message: msg})
}

func (v *validator) addf(path, format string, args ...any) {
	v.add(path, fmt.Sprintf(format, args...))
}

// name checks a service or route name and reports whether it is valid.
func (v *validator) name(path, kind, s string) bool {
	if s == "" {
		v.addf(path, "%s name must not be empty", kind)
		return false
	}
	if !validName(s) {
		v.addf(path, "invalid %s name %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", kind, s)
		return false
	}
	return true
}

func (v *validator) service(p string, s Service) {
	switch s.Protocol {
	case "", "http", "h2c":
	default:
		v.addf(p+".protocol", "unknown protocol %q: use \"http\" or \"h2c\"", s.Protocol)
	}
	seen := make(map[string]int, len(s.Targets))
	for i, t := range s.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", p, i)
		if msg := checkTargetURL(t.URL); msg != "" {
			v.add(tp+".url", msg)
		} else if j, dup := seen[t.URL]; dup {
			// Replica IDs are "static:"+URL; two equal URLs would share
			// one breaker and one connection count.
			v.addf(tp+".url", "duplicate target %q (also targets[%d])", t.URL, j)
		} else {
			seen[t.URL] = i
		}
		if t.Weight < 0 {
			v.addf(tp+".weight", "weight %d must not be negative", t.Weight)
		}
	}
	v.servicePolicies(p, s)
}

func checkTargetURL(s string) string {
	if s == "" {
		return "target URL must not be empty"
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("invalid target URL %q: %v", s, unwrapURLError(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("target URL %q must be absolute with scheme http or https", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("target URL %q has no host", s)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Sprintf("target URL %q must not have a query", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Sprintf("target URL %q must not have a fragment", s)
	case u.Path != "" && u.Path != "/":
		return fmt.Sprintf("target URL %q must not have a path (use a route's rewrite instead)", s)
	}
	return ""
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func (v *validator) route(p string, r Route) {
	for i, h := range r.Hosts {
		if msg := checkHost(h); msg != "" {
			v.add(fmt.Sprintf("%s.hosts[%d]", p, i), msg)
		}
	}
	// params[i] is the set of parameter names of Paths[i], nil if invalid.
	var params []map[string]bool
	seenPath := make(map[string]int, len(r.Paths))
	for i, pat := range r.Paths {
		pp := fmt.Sprintf("%s.paths[%d]", p, i)
		names, msg := checkPath(pat)
		if msg != "" {
			v.add(pp, msg)
			params = append(params, nil)
			continue
		}
		if j, dup := seenPath[pat]; dup {
			v.addf(pp, "duplicate path %q (also paths[%d])", pat, j)
		}
		seenPath[pat] = i
		set := make(map[string]bool, len(names))
		for _, n := range names {
			set[n] = true
		}
		params = append(params, set)
	}
	switch r.PathType {
	case "", "prefix", "exact":
	default:
		v.addf(p+".path_type", "unknown path_type %q: use \"prefix\" or \"exact\"", r.PathType)
	}
	for i, m := range r.Methods {
		mp := fmt.Sprintf("%s.methods[%d]", p, i)
		switch {
		case !validToken(m):
			v.addf(mp, "invalid method %q", m)
		case strings.ToUpper(m) != m:
			v.addf(mp, "method %q must be upper case (%q): methods are case-sensitive", m, strings.ToUpper(m))
		}
	}
	v.headerMap(p+".headers", r.Headers)
	for _, name := range sortedKeys(r.Headers) {
		if http.CanonicalHeaderKey(name) == "Host" {
			// Go servers move Host out of the header map.
			v.addf(fmt.Sprintf("%s.headers[%s]", p, name), "match the Host header with hosts, not headers")
		}
	}
	v.headerOps(p+".request_headers", r.RequestHeaders)
	v.headerOps(p+".response_headers", r.ResponseHeaders)
	if r.Rewrite != "" {
		if r.StripPrefix {
			v.add(p+".rewrite", "rewrite and strip_prefix are mutually exclusive: use one")
		}
		v.rewrite(p+".rewrite", r.Rewrite, r.Paths, params)
	}
	if r.Timeout < 0 {
		v.addf(p+".timeout", "timeout %q must not be negative", r.Timeout.String())
	}
	v.routePolicies(p, r)
	if r.Respond != nil {
		v.respond(p, r)
	}
}

func (v *validator) headerOps(p string, h HeaderOps) {
	for _, kind := range []struct {
		name string
		m    map[string]string
	}{{"set", h.Set}, {"add", h.Add}} {
		v.headerMap(p+"."+kind.name, kind.m)
	}
	for i, name := range h.Remove {
		if !validToken(name) {
			v.addf(fmt.Sprintf("%s.remove[%d]", p, i), "invalid header name %q", name)
		}
	}
}

// headerMap checks header names and values, and that no two names are the
// same header in different case (which one applied would be arbitrary).
func (v *validator) headerMap(p string, m map[string]string) {
	seen := make(map[string]string, len(m))
	for _, name := range sortedKeys(m) {
		hp := fmt.Sprintf("%s[%s]", p, name)
		if !validToken(name) {
			v.addf(hp, "invalid header name %q", name)
		} else if other, dup := seen[http.CanonicalHeaderKey(name)]; dup {
			v.addf(hp, "header %q is also given as %q: header names are case-insensitive", name, other)
		} else {
			seen[http.CanonicalHeaderKey(name)] = name
		}
		if !validHeaderValue(m[name]) {
			v.addf(hp, "invalid header value %q: control characters are not allowed", m[name])
		}
	}
}

func (v *validator) rewrite(p, tmpl string, paths []string, params []map[string]bool) {
	if !strings.HasPrefix(tmpl, "/") {
		v.addf(p, "rewrite %q must start with \"/\"", tmpl)
	}
	if strings.ContainsAny(tmpl, "?#") {
		// The query is carried over from the request by the proxy.
		v.addf(p, "rewrite %q must be a path only, without '?' or '#'", tmpl)
	}
	names, msg := templateParams(tmpl)
	if msg != "" {
		v.addf(p, "invalid rewrite %q: %s", tmpl, msg)
		return
	}
	for _, n := range names {
		if len(paths) == 0 {
			v.addf(p, "rewrite %q uses {%s} but the route has no paths to capture it from", tmpl, n)
			continue
		}
		for i, set := range params {
			if set != nil && !set[n] {
				v.addf(p, "rewrite %q uses {%s}, which paths[%d] %q does not capture", tmpl, n, i, paths[i])
			}
		}
	}
}

// checkPath checks a path pattern and returns its parameter names in order,
// or a message saying what is wrong.
func checkPath(pat string) ([]string, string) {
	if !strings.HasPrefix(pat, "/") {
		return nil, fmt.Sprintf("path %q must start with \"/\"", pat)
	}
	if strings.ContainsAny(pat, "?#") {
		return nil, fmt.Sprintf("path %q must not contain '?' or '#'", pat)
	}
	for i := 0; i < len(pat); i++ {
		if c := pat[i]; c <= ' ' || c == 0x7f {
			return nil, fmt.Sprintf("path %q must not contain spaces or control characters", pat)
		}
		if pat[i] >= 0x80 {
			// Requests are matched as sent, percent-encoded.
			return nil, fmt.Sprintf("path %q must be ASCII: write other characters percent-encoded, as clients send them", pat)
		}
	}
	if pat == "/" {
		return nil, ""
	}
	segs := strings.Split(strings.TrimSuffix(pat[1:], "/"), "/")
	var names []string
	for _, seg := range segs {
		switch {
		case seg == "":
			return nil, fmt.Sprintf("path %q has an empty segment (\"//\")", pat)
		case seg == "." || seg == "..":
			return nil, fmt.Sprintf("path %q has a dot segment %q, which never matches a normalised request path", pat, seg)
		case seg[0] == '{' && seg[len(seg)-1] == '}':
			n := seg[1 : len(seg)-1]
			if !validParamName(n) {
				return nil, fmt.Sprintf("path %q: parameter %q must be a name made of letters, digits, '_', '-' or '.'", pat, seg)
			}
			if slices.Contains(names, n) {
				return nil, fmt.Sprintf("path %q: parameter {%s} appears twice", pat, n)
			}
			names = append(names, n)
		case strings.ContainsAny(seg, "{}"):
			return nil, fmt.Sprintf("path %q: segment %q: a parameter must be a whole segment, like \"/{id}\"", pat, seg)
		}
	}
	return names, ""
}

// templateParams returns the names referenced by "{name}" in a rewrite
// template. Unlike path patterns, a parameter may be part of a segment.
func templateParams(tmpl string) ([]string, string) {
	var names []string
	for rest := tmpl; rest != ""; {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			break
		}
		if rest[open] == '}' {
			return nil, "unmatched '}'"
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] != '}' {
			return nil, "unclosed '{'"
		}
		n := rest[open+1 : open+1+end]
		if !validParamName(n) {
			return nil, fmt.Sprintf("parameter {%s} must be a name made of letters, digits, '_', '-' or '.'", n)
		}
		names = append(names, n)
		rest = rest[open+1+end+1:]
	}
	return names, ""
}

// checkHost accepts a host name ("api.example.com", case-insensitive) or a
// one-label wildcard ("*.example.com").
func checkHost(h string) string {
	name := strings.TrimPrefix(h, "*.")
	switch {
	case h == "":
		return "host must not be empty"
	case strings.HasPrefix(h, "["):
		return fmt.Sprintf("host %q: IPv6 literals are not supported as route hosts", h)
	case strings.Contains(h, ":"):
		return fmt.Sprintf("host %q must not include a port: the request's port is ignored", h)
	case strings.Contains(name, "*"):
		return fmt.Sprintf("host %q: a wildcard must be a whole first label, as in \"*.example.com\"", h)
	case !validHostname(name):
		return fmt.Sprintf("invalid host %q: use a host name like \"api.example.com\" or \"*.example.com\"", h)
	}
	return ""
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// validName reports whether s matches ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$.
func validName(s string) bool {
	if s == "" || len(s) > 63 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// validParamName accepts the parameter names found in real API
// descriptions, such as GitHub's "{enterprise-team}".
func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// validToken reports whether s is an RFC 9110 token (section 5.6.2), the
// syntax of method and header field names.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validHeaderValue rejects control characters other than horizontal tab
// (RFC 9110 section 5.5); CR and LF would split the header.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ambiguous reports pairs of routes that match exactly the same requests
// with the same precedence for some host and path, so that the later one
// could only ever win by configuration order: almost always a mistake.
// Routes are compared per (host, path) combination with parameter names
// ignored ("/u/{id}" and "/u/{name}" are the same path), with their methods
// and header conditions as sets.
func (v *validator) ambiguous(routes []Route) {
	first := make(map[string]int)
	reported := make(map[[2]int]bool)
	for i, r := range routes {
		pathType := r.PathType
		if pathType == "" {
			pathType = "prefix"
		}
		methods := slices.Clone(r.Methods)
		slices.Sort(methods)
		methods = slices.Compact(methods)
		headers := make([]string, 0, len(r.Headers))
		for k, val := range r.Headers {
			headers = append(headers, http.CanonicalHeaderKey(k)+"\x00"+val)
		}
		slices.Sort(headers)
		rest := pathType + "\x01" + strings.Join(methods, ",") + "\x01" + strings.Join(headers, "\x02")
		hosts := r.Hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		paths := r.Paths
		if len(paths) == 0 {
			paths = []string{""}
		}
		for _, h := range hosts {
			for _, pat := range paths {
				key := strings.ToLower(h) + "\x01" + pathShape(pat) + "\x01" + rest
				j, seen := first[key]
				if !seen {
					first[key] = i
					continue
				}
				if j == i || reported[[2]int{j, i}] {
					continue
				}
				reported[[2]int{j, i}] = true
				v.addf(fmt.Sprintf("routes[%d]", i), "route %q matches the same requests as routes[%d] %q (host %q, path %q) and could never be chosen: make their conditions differ", r.Name, j, routes[j].Name, h, pat)
			}
		}
	}
}

// pathShape replaces parameter names with "{}".
func pathShape(pat string) string {
	if !strings.Contains(pat, "{") {
		return pat
	}
	segs := strings.Split(pat, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}
