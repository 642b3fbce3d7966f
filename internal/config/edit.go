package config

import "slices"

// The editing helpers below never write to the backing array of an existing
// slice: they build a new one. A Config copied before the call (for example
// the one a running snapshot was compiled from) is therefore unaffected.

// Service returns the service with the given name.
func (c Config) Service(name string) (Service, bool) {
	for _, s := range c.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// SetService replaces the service with s.Name, keeping its position, or
// appends s if there is none. It does not validate.
func (c *Config) SetService(s Service) {
	c.Services = set(c.Services, s, func(x Service) bool { return x.Name == s.Name })
}

// DeleteService removes the service with the given name and reports whether
// it existed. Routes still pointing at it are reported by Validate.
func (c *Config) DeleteService(name string) bool {
	var ok bool
	c.Services, ok = del(c.Services, func(x Service) bool { return x.Name == name })
	return ok
}

// Route returns the route with the given name.
func (c Config) Route(name string) (Route, bool) {
	for _, r := range c.Routes {
		if r.Name == name {
			return r, true
		}
	}
	return Route{}, false
}

// SetRoute replaces the route with r.Name, keeping its position (which
// matters for precedence ties), or appends r if there is none. It does not
// validate.
func (c *Config) SetRoute(r Route) {
	c.Routes = set(c.Routes, r, func(x Route) bool { return x.Name == r.Name })
}

// DeleteRoute removes the route with the given name and reports whether it
// existed.
func (c *Config) DeleteRoute(name string) bool {
	var ok bool
	c.Routes, ok = del(c.Routes, func(x Route) bool { return x.Name == name })
	return ok
}

func set[T any](s []T, v T, same func(T) bool) []T {
	out := slices.Clone(s)
	if i := slices.IndexFunc(out, same); i >= 0 {
		out[i] = v
		return out
	}
	return append(out, v)
}

func del[T any](s []T, match func(T) bool) ([]T, bool) {
	if !slices.ContainsFunc(s, match) {
		return s, false
	}
	out := make([]T, 0, len(s)-1)
	for _, v := range s {
		if !match(v) {
			out = append(out, v)
		}
	}
	return out, true
}
