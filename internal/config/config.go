// Package config holds the wire types of Gatehouse's declarative
// configuration (what users write in YAML or JSON) and their validation. It
// does no I/O; the runtime form is built by package snapshot.
package config

// Config is the whole declarative configuration of a gateway. The zero value
// is an empty, valid configuration that routes nothing.
type Config struct {
	// Services are the upstream services, with unique names.
	Services []Service `json:"services,omitempty"`
	// Routes are the routes, with unique names. Their order breaks ties
	// between equally specific routes (see snapshot.Snapshot.Match).
	Routes []Route `json:"routes,omitempty"`
}

// Service is an upstream service: a name that routes point at, with static
// targets and/or replicas that register themselves at run time.
type Service struct {
	// Name identifies the service; self-registrations use the same name.
	Name string `json:"name"`
	// Targets are static replicas, always present in addition to any
	// self-registered ones. A target is written as a URL string or as
	// {"url": ..., "weight": ...}.
	Targets []Target `json:"targets,omitempty"`
	// Protocol is how Gatehouse talks to plain-http targets: "http" (the
	// default; HTTP/1.1) or "h2c" (HTTP/2 with prior knowledge, needed for
	// gRPC upstreams without TLS). https targets negotiate HTTP/2 by ALPN.
	Protocol string `json:"protocol,omitempty"`
	// LoadBalancer chooses how requests are spread over the replicas.
	LoadBalancer LoadBalancer `json:"load_balancer,omitzero"`
	// CircuitBreaker ejects failing replicas and re-admits them; on by
	// default.
	CircuitBreaker CircuitBreaker `json:"circuit_breaker,omitzero"`
	// HealthCheck, when set, probes every replica actively.
	HealthCheck *HealthCheck `json:"health_check,omitempty"`
	// RetryBudget caps the retries sent to this service.
	RetryBudget RetryBudget `json:"retry_budget,omitzero"`
	// Auth applies to every route of the service that has no auth of its own.
	Auth *Auth `json:"auth,omitempty"`
}

// Target is one static replica of a service.
type Target struct {
	// URL is an absolute http or https URL with no path beyond "/", e.g.
	// "http://127.0.0.1:9001".
	URL string `json:"url"`
	// Weight is the replica's weight for weighted balancing; 0 means 1.
	Weight int `json:"weight,omitempty"`
}

// Route sends matching requests to a service, or answers them itself with
// a stored artifact (Respond). A request matches when every given condition
// holds: one of Hosts (if any), one of Paths (if any), one of Methods (if
// any) and all Headers.
type Route struct {
	// Name identifies the route.
	Name string `json:"name"`
	// Service is the name of the service requests are sent to. Exactly one
	// of Service and Respond is set.
	Service string `json:"service,omitempty"`
	// Respond, when set, makes the route answer every request itself with
	// a stored artifact, never contacting a service. Auth, RateLimit and
	// ResponseHeaders still apply; the forwarding settings (StripPrefix,
	// Rewrite, PreserveHost, RequestHeaders, Timeout, Retry) must be unset.
	Respond *Respond `json:"respond,omitempty"`
	// Hosts are exact host names ("api.example.com") or one-level wildcards
	// ("*.example.com"); the port of the request's Host is ignored.
	Hosts []string `json:"hosts,omitempty"`
	// Paths are path patterns starting with "/". A segment written "{name}"
	// matches any one non-empty segment and captures it.
	Paths []string `json:"paths,omitempty"`
	// PathType is "prefix" (the default: the pattern matches the path and
	// anything below it, at segment boundaries) or "exact".
	PathType string `json:"path_type,omitempty"`
	// Methods are HTTP methods, written in upper case (Validate rejects
	// "get": methods are case-sensitive); empty means any.
	Methods []string `json:"methods,omitempty"`
	// Headers must all be present on the request with exactly these values.
	Headers map[string]string `json:"headers,omitempty"`
	// StripPrefix removes the matched path prefix before forwarding.
	StripPrefix bool `json:"strip_prefix,omitempty"`
	// Rewrite replaces the path with this template; "{name}" inserts a
	// captured parameter. Mutually exclusive with StripPrefix.
	Rewrite string `json:"rewrite,omitempty"`
	// PreserveHost forwards the client's Host header; by default the
	// upstream target's host is sent.
	PreserveHost bool `json:"preserve_host,omitempty"`
	// RequestHeaders are applied to the request before forwarding.
	RequestHeaders HeaderOps `json:"request_headers,omitzero"`
	// ResponseHeaders are applied to the response before it is returned.
	ResponseHeaders HeaderOps `json:"response_headers,omitzero"`
	// Timeout bounds the whole upstream exchange up to the response headers
	// (e.g. "30s"); zero means the gateway default (60s).
	Timeout Duration `json:"timeout,omitzero"`
	// Retry says when and how often a failed attempt is tried again on
	// another replica.
	Retry Retry `json:"retry,omitzero"`
	// Auth requires an API key on this route (overrides the service's).
	Auth *Auth `json:"auth,omitempty"`
	// RateLimit limits the route as a whole, across all clients.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// HeaderOps are header transformations, applied in the order Remove, Set, Add.
type HeaderOps struct {
	// Set replaces each named header's values with the given one.
	Set map[string]string `json:"set,omitempty"`
	// Add appends a value to each named header.
	Add map[string]string `json:"add,omitempty"`
	// Remove deletes the named headers.
	Remove []string `json:"remove,omitempty"`
}
