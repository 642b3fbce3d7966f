// Package snapshot compiles the stored configuration and registry into the
// immutable Snapshot the data plane reads once per request.
package snapshot

import (
	"net/url"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
)

// Snapshot is an immutable, compiled view of the configuration and registry
// at one store revision. It is never mutated after Compile returns, so it is
// safe for concurrent use without locks.
type Snapshot struct {
	// Revision is the store revision the snapshot was built from.
	Revision int64
	// Services by name.
	Services map[string]*Service
	// Routes in the order given by the configuration.
	Routes []*Route

	router *router
}

// Service is the runtime form of a service. It is immutable after Compile.
type Service struct {
	// Name is the configured service name.
	Name string
	// H2C is true when plain-http replicas are spoken to with HTTP/2 prior
	// knowledge.
	H2C bool
	// Replicas are the static targets followed by the live registered
	// instances, in a stable order (static in config order, then registered
	// by ID).
	Replicas []*Replica
	// Balancer, Breaker, HealthCheck (nil: none) and RetryBudget are the
	// service's resilience settings with defaults applied.
	Balancer    Balancer
	Breaker     Breaker
	HealthCheck *HealthCheck
	RetryBudget RetryBudget
}

// Replica is one upstream endpoint of a service.
type Replica struct {
	// ID is stable across snapshots for the same endpoint: the instance ID
	// for registered replicas, "static:"+URL for static targets. Runtime state
	// (connections, breaker) is keyed by it.
	ID string
	// URL is the replica's scheme and host; its path is always empty.
	URL *url.URL
	// Weight is at least 1.
	Weight int
	// Instance is set for registered replicas, nil for static targets.
	Instance *registry.Instance
}

// Route is the runtime form of a route. It is immutable after Compile.
type Route struct {
	// Name is the configured route name.
	Name string
	// Service is the service requests are sent to; nil exactly when
	// Respond is set.
	Service *Service
	// Respond is set on a route that answers requests itself with a stored
	// artifact; nil on a route that forwards to Service. Such a route has
	// Auth, RateLimit and ResponseHeaders like any other; the forwarding
	// settings are left at their defaults and unused.
	Respond *Respond
	// StripPrefix removes the matched prefix; see UpstreamPath.
	StripPrefix bool
	// PreserveHost forwards the client's Host header upstream.
	PreserveHost bool
	// Timeout is the upstream timeout; never zero after Compile.
	Timeout time.Duration
	// RequestHeaders are applied to the request before forwarding.
	RequestHeaders HeaderOps
	// ResponseHeaders are applied to the response before it is returned.
	ResponseHeaders HeaderOps
	// Retry is the route's retry policy with defaults applied.
	Retry Retry
	// Auth is nil when the route requires no API key (its own setting, or
	// else its service's).
	Auth *Auth
	// RateLimit is nil when the route has no limit of its own.
	RateLimit *RateLimit

	rewrite []rewritePart
	config  config.Route
}

// HeaderOps are compiled header transformations with canonical names,
// applied in the order Remove, Set, Add. The zero value does nothing.
type HeaderOps struct {
	// Remove lists header names to delete, without repeats.
	Remove []string
	// Set lists {name, value} pairs replacing any earlier values, sorted by
	// name.
	Set [][2]string
	// Add lists {name, value} pairs appended to existing values, sorted by
	// name.
	Add [][2]string
}

// Empty reports whether ops do nothing.
func (h HeaderOps) Empty() bool { return len(h.Remove) == 0 && len(h.Set) == 0 && len(h.Add) == 0 }

// HeaderGetter is the one header operation routing needs; http.Header
// satisfies it without allocation.
type HeaderGetter interface {
	Get(name string) string
}

// Request is what the router looks at. It holds no engine types so that any
// HTTP engine can fill it.
type Request struct {
	// Host is the request host, possibly with a port.
	Host string
	// Method is the request method, compared case-sensitively.
	Method string
	// Path is the request path as received (not decoded).
	Path string
	// Header gives the request's header values; nil means none.
	Header HeaderGetter
}

// Param is one captured "{name}" path segment.
type Param struct {
	// Name is the parameter name from the pattern, Value the raw
	// (undecoded) segment of the request path.
	Name, Value string
}

// Match is the result of routing one request.
type Match struct {
	// Route is the chosen route; never nil in a successful match.
	Route *Route
	// Params are the captured path parameters, nil when none.
	Params []Param
	// PrefixLen is the length of the request path matched by the route's
	// pattern (the part StripPrefix removes).
	PrefixLen int
}
