package config

import (
	"slices"
	"testing"
)

func serviceNames(c Config) []string {
	var names []string
	for _, s := range c.Services {
		names = append(names, s.Name)
	}
	return names
}

func routeNames(c Config) []string {
	var names []string
	for _, r := range c.Routes {
		names = append(names, r.Name)
	}
	return names
}

func TestServiceEdits(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(c *Config) bool
		wantNames []string
		wantOK    bool
	}{
		{"set replaces in place", func(c *Config) bool { c.SetService(Service{Name: "a", Protocol: "h2c"}); return true }, []string{"a", "b"}, true},
		{"set appends", func(c *Config) bool { c.SetService(Service{Name: "c"}); return true }, []string{"a", "b", "c"}, true},
		{"delete existing", func(c *Config) bool { return c.DeleteService("a") }, []string{"b"}, true},
		{"delete missing", func(c *Config) bool { return c.DeleteService("z") }, []string{"a", "b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := Config{Services: []Service{{Name: "a"}, {Name: "b"}}}
			c := orig
			if ok := tt.edit(&c); ok != tt.wantOK {
				t.Errorf("edit returned %v, want %v", ok, tt.wantOK)
			}
			if got := serviceNames(c); !slices.Equal(got, tt.wantNames) {
				t.Errorf("services = %v, want %v", got, tt.wantNames)
			}
			if got := serviceNames(orig); !slices.Equal(got, []string{"a", "b"}) || orig.Services[0].Protocol != "" {
				t.Errorf("original config changed to %+v; edits must not share backing arrays", orig.Services)
			}
		})
	}
	c := Config{Services: []Service{{Name: "a"}}}
	c.SetService(Service{Name: "a", Protocol: "h2c"})
	if s, ok := c.Service("a"); !ok || s.Protocol != "h2c" {
		t.Errorf(`Service("a") = %+v, %v, want protocol h2c, true`, s, ok)
	}
	if _, ok := c.Service("z"); ok {
		t.Errorf(`Service("z") ok = true, want false`)
	}
}

func TestRouteEdits(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(c *Config) bool
		wantNames []string
		wantOK    bool
	}{
		{"set replaces in place", func(c *Config) bool { c.SetRoute(Route{Name: "a", Service: "y"}); return true }, []string{"a", "b"}, true},
		{"set appends", func(c *Config) bool { c.SetRoute(Route{Name: "c"}); return true }, []string{"a", "b", "c"}, true},
		{"delete existing", func(c *Config) bool { return c.DeleteRoute("b") }, []string{"a"}, true},
		{"delete missing", func(c *Config) bool { return c.DeleteRoute("z") }, []string{"a", "b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := Config{Routes: []Route{{Name: "a", Service: "x"}, {Name: "b"}}}
			c := orig
			if ok := tt.edit(&c); ok != tt.wantOK {
				t.Errorf("edit returned %v, want %v", ok, tt.wantOK)
			}
			if got := routeNames(c); !slices.Equal(got, tt.wantNames) {
				t.Errorf("routes = %v, want %v", got, tt.wantNames)
			}
			if got := routeNames(orig); !slices.Equal(got, []string{"a", "b"}) || orig.Routes[0].Service != "x" {
				t.Errorf("original config changed to %+v; edits must not share backing arrays", orig.Routes)
			}
		})
	}
	c := Config{Routes: []Route{{Name: "a", Service: "x"}}}
	if r, ok := c.Route("a"); !ok || r.Service != "x" {
		t.Errorf(`Route("a") = %+v, %v, want service x, true`, r, ok)
	}
	if _, ok := c.Route("z"); ok {
		t.Errorf(`Route("z") ok = true, want false`)
	}
}
