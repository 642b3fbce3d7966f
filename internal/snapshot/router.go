package snapshot

import (
	"cmp"
	"slices"
	"strings"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

// Match finds the route for r. It is safe for concurrent use, does not
// allocate unless the chosen route captures parameters (then it allocates
// the Params slice once), and its cost depends on the depth of the path and
// the number of routes sharing a path node, not on the number of routes.
//
// A route matches when all of its conditions hold: the request host (compared
// case-insensitively, port ignored) equals one of its Hosts, or is one label
// followed by a "*.suffix" wildcard's suffix ("*.example.com" matches
// "a.example.com" but neither "example.com" nor "a.b.example.com"); the path
// matches one of its Paths; the method is one of its Methods; and every
// header condition holds exactly. An absent condition always holds.
//
// A path pattern matches segment by segment: a literal segment matches the
// same text, a "{name}" segment matches any one non-empty segment and
// captures it. An exact pattern must cover the whole path. A prefix pattern
// (the default) matches the path and anything below it at a segment
// boundary: "/api" matches "/api", "/api/" and "/api/x" but not "/apix";
// "/api/" matches "/api/" and "/api/x" but not "/api". "/" matches every
// path.
//
// When several routes match, the winner is decided by these rules in turn:
//
//  1. A route that names the request's host beats one that matches it by a
//     wildcard, which beats one with no Hosts.
//  2. The more specific path wins. Patterns are compared from the first
//     segment on, and at the first position where they differ a literal
//     segment beats a "{name}", which beats a trailing "/", which beats the
//     pattern ending there. So "/users/me" beats "/users/{id}", and longer
//     patterns beat their prefixes ("/api/v1" beats "/api" for "/api/v1/x").
//     When two patterns have the same shape, exact beats prefix. A route
//     with no Paths comes after every route with one.
//  3. A route with Methods beats one without.
//  4. A route with more Headers conditions beats one with fewer.
//  5. The route listed first in the configuration wins.
//
// Match.PrefixLen is the number of bytes of r.Path covered by the chosen
// pattern: 4 for "/api" on "/api/x", 5 for "/api/", 0 for a route without
// Paths. Params are in the order of the pattern's segments. The path is
// compared byte for byte as received: it is neither decoded nor cleaned.
func (s *Snapshot) Match(r Request) (Match, bool) {
	if s.router == nil {
		return Match{}, false
	}
	e, n, ps := s.router.match(&r)
	if e == nil {
		return Match{}, false
	}
	return Match{Route: e.route, Params: ps, PrefixLen: n}, true
}

// router holds one segment trie per host bucket.
type router struct {
	exact    map[string]*node // by lower-case host name
	wildcard map[string]*node // by the suffix after "*."
	anyHost  *node
}

// node is one position in a path trie. Request paths are walked segment by
// segment from the root; nothing is split or copied.
type node struct {
	// Literal children are in literals, or in literalMap once there are
	// more than maxLinearChildren of them.
	literals   []literalChild
	literalMap map[string]*node
	param      *node
	// slash holds the patterns ending with "/" after this node's segment.
	slash *node
	// exact and prefix are the patterns ending at this node, in precedence
	// order (see byPrecedence).
	exact  []*entry
	prefix []*entry
}

// maxLinearChildren is the fan-out up to which literal children are scanned
// rather than hashed. In BenchmarkMatchGitHub, hashing every node was
// slowest; thresholds from 8 to 32 were within noise of each other.
const maxLinearChildren = 16

type literalChild struct {
	seg  string
	node *node
}

// entry is one (route, path pattern) pair in a trie.
type entry struct {
	route   *Route
	order   int
	methods []string
	headers [][2]string
	// params are the names of the pattern's parameters, in order.
	params []string
}

func (rt *router) match(r *Request) (*entry, int, []Param) {
	if len(rt.exact) > 0 || len(rt.wildcard) > 0 {
		if e, n, ps := rt.matchHost(r); e != nil {
			return e, n, ps
		}
	}
	return rt.anyHost.lookup(r)
}

// maxHostLen is the longest valid host name (RFC 1035 section 2.3.4);
// longer request hosts can only match routes without Hosts.
const maxHostLen = 253

func (rt *router) matchHost(r *Request) (*entry, int, []Param) {
	host := hostname(r.Host)
	if host == "" || len(host) > maxHostLen {
		return nil, 0, nil
	}
	exact, wild := rt.hostTrees(host)
	if e, l, ps := exact.lookup(r); e != nil {
		return e, l, ps
	}
	return wild.lookup(r)
}

// hostTrees returns the tries for host's exact name and its wildcard
// suffix, nil where there is none.
func (rt *router) hostTrees(host string) (exact, wild *node) {
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return rt.hostTreesFold(host)
		}
	}
	exact = rt.exact[host]
	if dot := strings.IndexByte(host, '.'); dot > 0 && dot < len(host)-1 && len(rt.wildcard) > 0 {
		wild = rt.wildcard[host[dot+1:]]
	}
	return exact, wild
}

// hostTreesFold is hostTrees for a host with upper-case letters. It lowers
// them in a stack buffer: map lookups keyed by string(buf[:n]) do not
// allocate.
func (rt *router) hostTreesFold(host string) (exact, wild *node) {
	var buf [maxHostLen]byte
	n := copy(buf[:], host)
	for i := range n {
		if c := buf[i]; 'A' <= c && c <= 'Z' {
			buf[i] = c + ('a' - 'A')
		}
	}
	exact = rt.exact[string(buf[:n])]
	if dot := strings.IndexByte(host, '.'); dot > 0 && dot < n-1 && len(rt.wildcard) > 0 {
		wild = rt.wildcard[string(buf[dot+1:n])]
	}
	return exact, wild
}

// hostname strips the port and a trailing dot from a Host header value.
func hostname(h string) string {
	if strings.HasPrefix(h, "[") {
		// An IPv6 literal; route hosts cannot name one, so keep it whole.
		if end := strings.IndexByte(h, ']'); end > 0 {
			return h[:end+1]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

// lookup finds the best entry of the trie rooted at n for r and the length
// of r.Path it covers.
func (n *node) lookup(r *Request) (*entry, int, []Param) {
	if n == nil {
		return nil, 0, nil
	}
	if r.Path == "" || r.Path[0] != '/' {
		// "*" (OPTIONS) or an authority (CONNECT): only routes without
		// Paths apply.
		return pick(n.prefix, r), 0, nil
	}
	return n.walk(r, r.Path, 0, 0)
}

// walk matches path[i:], where i is len(path) or the index of a '/', below
// n; k is the number of parameters captured above n. Candidates are tried
// most specific first, so the first entry whose method and header
// conditions hold is the answer. The Params slice is allocated once the
// answer is known and filled in while the recursion unwinds.
func (n *node) walk(r *Request, path string, i, k int) (*entry, int, []Param) {
	if i == len(path) {
		e := pick(n.exact, r)
		if e == nil {
			e = pick(n.prefix, r)
		}
		return e, i, e.newParams()
	}
	j := i + 1
	for j < len(path) && path[j] != '/' {
		j++
	}
	if j > i+1 {
		if c := n.child(path[i+1 : j]); c != nil {
			if e, l, ps := c.walk(r, path, j, k); e != nil {
				return e, l, ps
			}
		}
		if n.param != nil {
			if e, l, ps := n.param.walk(r, path, j, k+1); e != nil {
				ps[k] = Param{Name: e.params[k], Value: path[i+1 : j]}
				return e, l, ps
			}
		}
	}
	if n.slash != nil {
		if j == len(path) && j == i+1 {
			if e := pick(n.slash.exact, r); e != nil {
				return e, j, e.newParams()
			}
		}
		if e := pick(n.slash.prefix, r); e != nil {
			return e, i + 1, e.newParams()
		}
	}
	e := pick(n.prefix, r)
	return e, i, e.newParams()
}

// child returns the literal child for seg. Small fan-outs, the common case
// below the first segment or two, are scanned linearly: comparing a few
// short strings is cheaper than hashing.
func (n *node) child(seg string) *node {
	if n.literalMap != nil {
		return n.literalMap[seg]
	}
	for _, c := range n.literals {
		if c.seg == seg {
			return c.node
		}
	}
	return nil
}

func pick(entries []*entry, r *Request) *entry {
	for _, e := range entries {
		if e.accepts(r) {
			return e
		}
	}
	return nil
}

func (e *entry) accepts(r *Request) bool {
	if len(e.methods) > 0 && !slices.Contains(e.methods, r.Method) {
		return false
	}
	if len(e.headers) > 0 {
		if r.Header == nil {
			return false
		}
		for _, h := range e.headers {
			if r.Header.Get(h[0]) != h[1] {
				return false
			}
		}
	}
	return true
}

// newParams returns the slice walk fills with e's parameters, nil if e is
// nil or captures none.
func (e *entry) newParams() []Param {
	if e == nil || len(e.params) == 0 {
		return nil
	}
	return make([]Param, len(e.params))
}

// routerBuilder accumulates entries; build sorts them into precedence order.
type routerBuilder struct {
	rt    *router
	nodes []*node
}

func newRouterBuilder() *routerBuilder {
	return &routerBuilder{rt: &router{
		exact:    map[string]*node{},
		wildcard: map[string]*node{},
	}}
}

func (b *routerBuilder) newNode() *node {
	n := &node{}
	b.nodes = append(b.nodes, n)
	return n
}

func (b *routerBuilder) add(rt *Route, rc config.Route, order int) {
	var roots []*node
	if len(rc.Hosts) == 0 {
		if b.rt.anyHost == nil {
			b.rt.anyHost = b.newNode()
		}
		roots = append(roots, b.rt.anyHost)
	}
	for _, h := range rc.Hosts {
		h = strings.ToLower(h)
		m := b.rt.exact
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			h, m = suffix, b.rt.wildcard
		}
		if m[h] == nil {
			m[h] = b.newNode()
		}
		if !slices.Contains(roots, m[h]) {
			roots = append(roots, m[h])
		}
	}
	methods := slices.Clone(rc.Methods)
	headers := sortedPairs(rc.Headers)
	exact := rc.PathType == "exact"
	for _, root := range roots {
		if len(rc.Paths) == 0 {
			root.prefix = append(root.prefix, &entry{route: rt, order: order, methods: methods, headers: headers})
			continue
		}
		for _, p := range rc.Paths {
			n, params := b.insert(root, p)
			e := &entry{route: rt, order: order, methods: methods, headers: headers, params: params}
			if exact {
				n.exact = append(n.exact, e)
			} else {
				n.prefix = append(n.prefix, e)
			}
		}
	}
}

// insert returns the node for a validated pattern below root, creating it,
// and the pattern's parameters.
func (b *routerBuilder) insert(root *node, pattern string) (*node, []string) {
	n := root
	var params []string
	for rest := pattern[1:]; rest != ""; {
		s, after, found := strings.Cut(rest, "/")
		switch {
		case strings.HasPrefix(s, "{"):
			params = append(params, s[1:len(s)-1])
			if n.param == nil {
				n.param = b.newNode()
			}
			n = n.param
		default:
			c := n.child(s)
			if c == nil {
				c = b.newNode()
				n.addChild(s, c)
			}
			n = c
		}
		rest = after
		if found && rest == "" {
			// A trailing slash.
			if n.slash == nil {
				n.slash = b.newNode()
			}
			return n.slash, params
		}
	}
	if pattern == "/" {
		if n.slash == nil {
			n.slash = b.newNode()
		}
		return n.slash, params
	}
	return n, params
}

func (n *node) addChild(seg string, c *node) {
	if n.literalMap == nil && len(n.literals) < maxLinearChildren {
		n.literals = append(n.literals, literalChild{seg, c})
		return
	}
	if n.literalMap == nil {
		n.literalMap = make(map[string]*node, len(n.literals)+1)
		for _, l := range n.literals {
			n.literalMap[l.seg] = l.node
		}
		n.literals = nil
	}
	n.literalMap[seg] = c
}

func (b *routerBuilder) build() *router {
	for _, n := range b.nodes {
		slices.SortStableFunc(n.exact, byPrecedence)
		slices.SortStableFunc(n.prefix, byPrecedence)
		n.exact = slices.Clip(n.exact)
		n.prefix = slices.Clip(n.prefix)
	}
	return b.rt
}

// byPrecedence orders entries of one trie node: routes with methods first,
// then more header conditions, then configuration order.
func byPrecedence(a, b *entry) int {
	am, bm := len(a.methods) > 0, len(b.methods) > 0
	if am != bm {
		if am {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(len(b.headers), len(a.headers)), cmp.Compare(a.order, b.order))
}
