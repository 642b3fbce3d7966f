package snapshot

import "strings"

// UpstreamPath returns the path to send upstream for a request path matched
// as m. With StripPrefix, the first m.PrefixLen bytes are removed and a
// leading "/" kept ("/api/x" → "/x", "/api" → "/"). With a rewrite template,
// the template with each "{name}" replaced by the captured value. Otherwise
// path unchanged. The query string is not part of path and is the caller's
// business. It allocates only when it builds a new string (a rewrite with
// parameters, or a stripped path that needs a leading "/").
func (rt *Route) UpstreamPath(path string, m Match) string {
	switch {
	case rt.rewrite != nil:
		return rt.expand(m.Params)
	case rt.StripPrefix:
		rest := path[min(m.PrefixLen, len(path)):]
		switch {
		case rest == "":
			return "/"
		case rest[0] != '/':
			return "/" + rest
		}
		return rest
	}
	return path
}

func (rt *Route) expand(params []Param) string {
	if len(rt.rewrite) == 1 && rt.rewrite[0].param == "" {
		return rt.rewrite[0].lit
	}
	size := 0
	for _, p := range rt.rewrite {
		if p.param == "" {
			size += len(p.lit)
		} else {
			size += len(paramValue(params, p.param))
		}
	}
	var b strings.Builder
	b.Grow(size)
	for _, p := range rt.rewrite {
		if p.param == "" {
			b.WriteString(p.lit)
		} else {
			b.WriteString(paramValue(params, p.param))
		}
	}
	return b.String()
}

func paramValue(params []Param, name string) string {
	for _, p := range params {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}
