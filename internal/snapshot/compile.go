package snapshot

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
)

// DefaultTimeout is the upstream timeout of a route that sets none.
const DefaultTimeout = 60 * time.Second

// Compile builds the immutable Snapshot for cfg and the registered instances
// at a store revision. It is a pure function: it does no I/O and keeps no
// reference to instances or to cfg's mutable parts that it does not copy.
//
// It first calls cfg.Validate and returns its error (a config.Errors)
// unchanged. Each service's replicas are its static targets in config order
// (ID "static:"+URL) followed by the registered instances of that service
// sorted by ID. Instances of services not in cfg are ignored, as are
// instances whose address is not an absolute http or https URL without a
// path, and repeated instance IDs after the first. An instance or target
// weight of 0 means 1. A route with Respond has a nil Service.
func Compile(cfg config.Config, instances []registry.Instance, revision int64) (*Snapshot, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Snapshot{
		Revision: revision,
		Services: make(map[string]*Service, len(cfg.Services)),
		Routes:   make([]*Route, 0, len(cfg.Routes)),
	}
	auth := make(map[string]*config.Auth, len(cfg.Services))
	for _, sc := range cfg.Services {
		auth[sc.Name] = sc.Auth
		svc, err := compileService(sc)
		if err != nil {
			return nil, err
		}
		s.Services[sc.Name] = svc
	}
	addInstances(s.Services, instances)

	b := newRouterBuilder()
	for i, rc := range cfg.Routes {
		rt, err := compileRoute(rc, s.Services[rc.Service], auth[rc.Service])
		if err != nil {
			return nil, err
		}
		s.Routes = append(s.Routes, rt)
		b.add(rt, rc, i)
	}
	s.router = b.build()
	return s, nil
}

func compileService(sc config.Service) (*Service, error) {
	svc := &Service{
		Name:        sc.Name,
		H2C:         sc.Protocol == "h2c",
		Balancer:    compileBalancer(sc.LoadBalancer),
		Breaker:     compileBreaker(sc.CircuitBreaker),
		HealthCheck: compileHealthCheck(sc.HealthCheck),
		RetryBudget: RetryBudget{
			Ratio:        cmp.Or(sc.RetryBudget.Ratio, DefaultRetryBudgetRatio),
			MinPerSecond: cmp.Or(sc.RetryBudget.MinPerSecond, DefaultRetryBudgetMin),
		},
	}
	for _, t := range sc.Targets {
		u, err := parseUpstream(t.URL)
		if err != nil {
			// Unreachable after Validate; kept so that a gap between the
			// two checks fails loudly rather than with a nil URL.
			return nil, fmt.Errorf("service %s: target %q: %w", sc.Name, t.URL, err)
		}
		svc.Replicas = append(svc.Replicas, &Replica{ID: "static:" + t.URL, URL: u, Weight: weight(t.Weight)})
	}
	return svc, nil
}

func addInstances(services map[string]*Service, instances []registry.Instance) {
	sorted := make([]registry.Instance, 0, len(instances))
	for _, in := range instances {
		if services[in.Service] != nil {
			sorted = append(sorted, in)
		}
	}
	slices.SortStableFunc(sorted, func(a, b registry.Instance) int { return cmp.Compare(a.ID, b.ID) })
	for i := range sorted {
		in := sorted[i]
		if i > 0 && in.ID == sorted[i-1].ID {
			continue
		}
		u, err := parseUpstream(in.Address)
		if err != nil {
			continue
		}
		in.Metadata = maps.Clone(in.Metadata)
		svc := services[in.Service]
		svc.Replicas = append(svc.Replicas, &Replica{ID: in.ID, URL: u, Weight: weight(in.Weight), Instance: &in})
	}
}

func weight(w int) int {
	if w <= 0 {
		return 1
	}
	return w
}

// parseUpstream parses a replica address. The returned URL has an empty
// path, so that the proxy can use it as scheme and host only.
func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse upstream address: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("upstream address %q: want an absolute http or https URL without a path", s)
	}
	u.Path, u.RawPath = "", ""
	return u, nil
}

func compileRoute(rc config.Route, svc *Service, serviceAuth *config.Auth) (*Route, error) {
	rt := &Route{
		Name:            rc.Name,
		Service:         svc,
		StripPrefix:     rc.StripPrefix,
		PreserveHost:    rc.PreserveHost,
		Timeout:         rc.Timeout.Std(),
		RequestHeaders:  compileHeaderOps(rc.RequestHeaders),
		ResponseHeaders: compileHeaderOps(rc.ResponseHeaders),
		Respond:         compileRespond(rc.Respond),
		Retry:           compileRetry(rc.Retry),
		Auth:            compileAuth(rc.Auth, serviceAuth),
		RateLimit:       compileRateLimit(rc.RateLimit),
		config:          rc,
	}
	if rt.Timeout == 0 {
		rt.Timeout = DefaultTimeout
	}
	if rc.Rewrite != "" {
		parts, err := parseRewrite(rc.Rewrite)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", rc.Name, err)
		}
		rt.rewrite = parts
	}
	return rt, nil
}

func compileHeaderOps(h config.HeaderOps) HeaderOps {
	var ops HeaderOps
	for _, name := range h.Remove {
		name = http.CanonicalHeaderKey(name)
		if !slices.Contains(ops.Remove, name) {
			ops.Remove = append(ops.Remove, name)
		}
	}
	ops.Set = sortedPairs(h.Set)
	ops.Add = sortedPairs(h.Add)
	return ops
}

// sortedPairs returns m with canonical names, sorted by name so that the
// order headers are written in does not depend on map iteration.
func sortedPairs(m map[string]string) [][2]string {
	if len(m) == 0 {
		return nil
	}
	pairs := make([][2]string, 0, len(m))
	for k, v := range m {
		pairs = append(pairs, [2]string{http.CanonicalHeaderKey(k), v})
	}
	slices.SortFunc(pairs, func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	return pairs
}

// rewritePart is a literal piece of a rewrite template, or, when param is
// set, a captured parameter to insert.
type rewritePart struct {
	lit   string
	param string
}

func parseRewrite(tmpl string) ([]rewritePart, error) {
	var parts []rewritePart
	for rest := tmpl; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			parts = append(parts, rewritePart{lit: rest})
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("rewrite %q: unclosed '{'", tmpl)
		}
		if open > 0 {
			parts = append(parts, rewritePart{lit: rest[:open]})
		}
		parts = append(parts, rewritePart{param: rest[open+1 : open+end]})
		rest = rest[open+end+1:]
	}
	return parts, nil
}

// Service returns the named service, or nil if there is none.
func (s *Snapshot) Service(name string) *Service {
	return s.Services[name]
}
