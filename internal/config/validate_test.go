package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// valid returns a small configuration that passes Validate; cases mutate a
// fresh copy of it.
func valid() Config {
	return Config{
		Services: []Service{
			{Name: "users", Targets: []Target{{URL: "http://10.0.0.1:8080"}, {URL: "https://users.internal/", Weight: 3}}},
			{Name: "grpc.api", Protocol: "h2c", Targets: []Target{{URL: "http://10.0.0.2:9000"}}},
		},
		Routes: []Route{
			{Name: "users", Service: "users", Hosts: []string{"api.example.com", "*.example.org"},
				Paths: []string{"/users/{id}", "/v1/users/{id}/", "/v2/{tenant-id}/users/{id}"}, Methods: []string{"GET", "PUT"},
				Headers: map[string]string{"X-Tenant": "a"}, Rewrite: "/internal/{id}.json",
				RequestHeaders: HeaderOps{Set: map[string]string{"X-Via": "gatehouse"}, Remove: []string{"Cookie"}},
				Timeout:        Duration(5 * time.Second)},
			{Name: "catch-all", Service: "users"},
			{Name: "grpc", Service: "grpc.api", Paths: []string{"/pkg.Svc/"}, PathType: "prefix", StripPrefix: true},
		},
	}
}

func TestValidateValid(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"zero value", Config{}},
		{"example", valid()},
		{"root path exact", Config{Services: []Service{{Name: "a"}}, Routes: []Route{{Name: "r", Service: "a", Paths: []string{"/"}, PathType: "exact"}}}},
		{"same path different methods", Config{Services: []Service{{Name: "a"}}, Routes: []Route{
			{Name: "r1", Service: "a", Paths: []string{"/x"}, Methods: []string{"GET"}},
			{Name: "r2", Service: "a", Paths: []string{"/x"}, Methods: []string{"POST"}},
		}}},
		{"same path different hosts", Config{Services: []Service{{Name: "a"}}, Routes: []Route{
			{Name: "r1", Service: "a", Paths: []string{"/x"}, Hosts: []string{"a.com"}},
			{Name: "r2", Service: "a", Paths: []string{"/x"}, Hosts: []string{"*.a.com"}},
		}}},
		{"same path exact and prefix", Config{Services: []Service{{Name: "a"}}, Routes: []Route{
			{Name: "r1", Service: "a", Paths: []string{"/x"}},
			{Name: "r2", Service: "a", Paths: []string{"/x"}, PathType: "exact"},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		// want are substrings of one error line each.
		want []string
	}{
		{"empty service name", func(c *Config) { c.Services[0].Name = "" }, []string{"services[0].name: service name must not be empty", `routes[0].service: unknown service "users"`, `routes[1].service: unknown service "users"`}},
		{"bad service name", func(c *Config) { c.Services[1].Name = "-x" }, []string{`services[1].name: invalid service name "-x"`, `routes[2].service: unknown service "grpc.api"`}},
		{"long service name", func(c *Config) { c.Services[1].Name = strings.Repeat("a", 64) }, []string{`services[1].name: invalid service name`, `routes[2].service: unknown service "grpc.api"`}},
		{"duplicate service", func(c *Config) { c.Services[1].Name = "users" }, []string{`services[1].name: duplicate service name "users" (also services[0])`, `routes[2].service: unknown service "grpc.api"`}},
		{"protocol", func(c *Config) { c.Services[0].Protocol = "h3" }, []string{`services[0].protocol: unknown protocol "h3"`}},
		{"relative target", func(c *Config) { c.Services[0].Targets[1].URL = "users.internal" }, []string{`services[0].targets[1].url: target URL "users.internal" must be absolute`}},
		{"ftp target", func(c *Config) { c.Services[0].Targets[0].URL = "ftp://x" }, []string{`services[0].targets[0].url: target URL "ftp://x" must be absolute with scheme http or https`}},
		{"target no host", func(c *Config) { c.Services[0].Targets[0].URL = "http:///x" }, []string{`services[0].targets[0].url: target URL "http:///x" has no host`}},
		{"target query", func(c *Config) { c.Services[0].Targets[0].URL = "http://a/?x=1" }, []string{`services[0].targets[0].url: target URL "http://a/?x=1" must not have a query`}},
		{"target fragment", func(c *Config) { c.Services[0].Targets[0].URL = "http://a#f" }, []string{`must not have a fragment`}},
		{"target path", func(c *Config) { c.Services[0].Targets[0].URL = "http://a/v1" }, []string{`services[0].targets[0].url: target URL "http://a/v1" must not have a path`}},
		{"target unparsable", func(c *Config) { c.Services[0].Targets[0].URL = "http://a b/" }, []string{`services[0].targets[0].url: invalid target URL "http://a b/"`}},
		{"target empty", func(c *Config) { c.Services[0].Targets[0].URL = "" }, []string{`services[0].targets[0].url: target URL must not be empty`}},
		{"duplicate target", func(c *Config) { c.Services[0].Targets[1].URL = "http://10.0.0.1:8080" }, []string{`services[0].targets[1].url: duplicate target "http://10.0.0.1:8080" (also targets[0])`}},
		{"negative weight", func(c *Config) { c.Services[0].Targets[1].Weight = -1 }, []string{`services[0].targets[1].weight: weight -1 must not be negative`}},
		{"empty route name", func(c *Config) { c.Routes[1].Name = "" }, []string{"routes[1].name: route name must not be empty"}},
		{"bad route name", func(c *Config) { c.Routes[1].Name = "a/b" }, []string{`routes[1].name: invalid route name "a/b"`}},
		{"duplicate route", func(c *Config) { c.Routes[2].Name = "users" }, []string{`routes[2].name: duplicate route name "users" (also routes[0])`}},
		{"unknown service", func(c *Config) { c.Routes[1].Service = "billing" }, []string{`routes[1].service: unknown service "billing"`}},
		{"missing service", func(c *Config) { c.Routes[1].Service = "" }, []string{`routes[1].service: must name a service`}},
		{"host with port", func(c *Config) { c.Routes[0].Hosts[0] = "api.example.com:443" }, []string{`routes[0].hosts[0]: host "api.example.com:443" must not include a port`}},
		{"host bad wildcard", func(c *Config) { c.Routes[0].Hosts[1] = "a.*.example.org" }, []string{`routes[0].hosts[1]: host "a.*.example.org": a wildcard must be a whole first label`}},
		{"host bare wildcard", func(c *Config) { c.Routes[0].Hosts[1] = "*" }, []string{`routes[0].hosts[1]: host "*"`}},
		{"host bad label", func(c *Config) { c.Routes[0].Hosts[0] = "-a.example.com" }, []string{`routes[0].hosts[0]: invalid host "-a.example.com"`}},
		{"host empty label", func(c *Config) { c.Routes[0].Hosts[0] = "a..com" }, []string{`routes[0].hosts[0]: invalid host "a..com"`}},
		{"host ipv6", func(c *Config) { c.Routes[0].Hosts[0] = "[::1]" }, []string{`routes[0].hosts[0]: host "[::1]": IPv6`}},
		{"path no slash", func(c *Config) { c.Routes[2].Paths[0] = "pkg.Svc/" }, []string{`routes[2].paths[0]: path "pkg.Svc/" must start with "/"`}},
		{"path empty segment", func(c *Config) { c.Routes[2].Paths[0] = "/a//b" }, []string{`routes[2].paths[0]: path "/a//b" has an empty segment`}},
		{"path dot segment", func(c *Config) { c.Routes[2].Paths[0] = "/a/../b" }, []string{`routes[2].paths[0]: path "/a/../b" has a dot segment ".."`}},
		{"path query", func(c *Config) { c.Routes[2].Paths[0] = "/a?b" }, []string{`routes[2].paths[0]: path "/a?b" must not contain '?'`}},
		{"path space", func(c *Config) { c.Routes[2].Paths[0] = "/a b" }, []string{`routes[2].paths[0]: path "/a b" must not contain spaces`}},
		{"param partial segment", func(c *Config) { c.Routes[0].Paths[0] = "/users/id-{id}" }, []string{`routes[0].paths[0]: path "/users/id-{id}": segment "id-{id}": a parameter must be a whole segment`}},
		{"param bad name", func(c *Config) { c.Routes[0].Paths[0] = "/users/{i*d}" }, []string{`routes[0].paths[0]: path "/users/{i*d}": parameter "{i*d}" must be a name`}},
		{"param nested brace", func(c *Config) { c.Routes[0].Paths[0] = "/users/{{id}}" }, []string{`routes[0].paths[0]: path "/users/{{id}}": parameter "{{id}}" must be a name`}},
		{"rewrite bad param", func(c *Config) { c.Routes[0].Rewrite = "/x/{i/d}" }, []string{`routes[0].rewrite: invalid rewrite "/x/{i/d}": parameter {i/d} must be a name`}},
		{"param empty", func(c *Config) { c.Routes[0].Paths[0] = "/users/{}" }, []string{`routes[0].paths[0]: path "/users/{}": parameter "{}"`}},
		{"param twice", func(c *Config) { c.Routes[0].Paths[0] = "/users/{id}/{id}" }, []string{`routes[0].paths[0]: path "/users/{id}/{id}": parameter {id} appears twice`}},
		{"duplicate path", func(c *Config) { c.Routes[0].Paths[1] = "/users/{id}" }, []string{`routes[0].paths[1]: duplicate path "/users/{id}" (also paths[0])`}},
		{"path type", func(c *Config) { c.Routes[2].PathType = "regex" }, []string{`routes[2].path_type: unknown path_type "regex"`}},
		{"lower-case method", func(c *Config) { c.Routes[0].Methods[1] = "put" }, []string{`routes[0].methods[1]: method "put" must be upper case ("PUT")`}},
		{"bad method", func(c *Config) { c.Routes[0].Methods[0] = "GE T" }, []string{`routes[0].methods[0]: invalid method "GE T"`}},
		{"bad header name", func(c *Config) { c.Routes[0].Headers["X Tenant"] = "b" }, []string{`routes[0].headers[X Tenant]: invalid header name "X Tenant"`}},
		{"bad header value", func(c *Config) { c.Routes[0].Headers["X-Tenant"] = "a\r\nb" }, []string{`routes[0].headers[X-Tenant]: invalid header value "a\r\nb"`}},
		{"host header condition", func(c *Config) { c.Routes[0].Headers["host"] = "x" }, []string{`routes[0].headers[host]: match the Host header with hosts`}},
		{"header in two cases", func(c *Config) { c.Routes[0].Headers["x-tenant"] = "b" }, []string{`routes[0].headers[x-tenant]: header "x-tenant" is also given as "X-Tenant"`}},
		{"set header in two cases", func(c *Config) { c.Routes[0].RequestHeaders.Set["x-via"] = "b" }, []string{`routes[0].request_headers.set[x-via]: header "x-via" is also given as "X-Via"`}},
		{"path non-ascii", func(c *Config) { c.Routes[2].Paths[0] = "/café" }, []string{`routes[2].paths[0]: path "/café" must be ASCII`}},
		{"bad set header", func(c *Config) { c.Routes[0].RequestHeaders.Set["X:Via"] = "" }, []string{`routes[0].request_headers.set[X:Via]: invalid header name "X:Via"`}},
		{"bad add header value", func(c *Config) {
			c.Routes[0].ResponseHeaders.Add = map[string]string{"X-A": "\x00"}
		}, []string{`routes[0].response_headers.add[X-A]: invalid header value`}},
		{"bad remove header", func(c *Config) { c.Routes[0].RequestHeaders.Remove[0] = "" }, []string{`routes[0].request_headers.remove[0]: invalid header name ""`}},
		{"rewrite and strip", func(c *Config) { c.Routes[0].StripPrefix = true }, []string{`routes[0].rewrite: rewrite and strip_prefix are mutually exclusive`}},
		{"rewrite relative", func(c *Config) { c.Routes[0].Rewrite = "internal/{id}" }, []string{`routes[0].rewrite: rewrite "internal/{id}" must start with "/"`}},
		{"rewrite unclosed", func(c *Config) { c.Routes[0].Rewrite = "/x/{id" }, []string{`routes[0].rewrite: invalid rewrite "/x/{id": unclosed '{'`}},
		{"rewrite query", func(c *Config) { c.Routes[0].Rewrite = "/x?id={id}" }, []string{`routes[0].rewrite: rewrite "/x?id={id}" must be a path only`}},
		{"rewrite unmatched", func(c *Config) { c.Routes[0].Rewrite = "/x/id}" }, []string{`routes[0].rewrite: invalid rewrite "/x/id}": unmatched '}'`}},
		{"rewrite param missing in one path", func(c *Config) { c.Routes[0].Paths[1] = "/v1/users/{name}" }, []string{`routes[0].rewrite: rewrite "/internal/{id}.json" uses {id}, which paths[1] "/v1/users/{name}" does not capture`}},
		{"rewrite param without paths", func(c *Config) { c.Routes[1].Rewrite = "/{id}" }, []string{`routes[1].rewrite: rewrite "/{id}" uses {id} but the route has no paths`}},
		{"negative timeout", func(c *Config) { c.Routes[1].Timeout = Duration(-time.Second) }, []string{`routes[1].timeout: timeout "-1s" must not be negative`}},
		{"identical catch-alls", func(c *Config) {
			c.Routes = append(c.Routes, Route{Name: "other", Service: "users"})
		}, []string{`routes[3]: route "other" matches the same requests as routes[1] "catch-all"`}},
		{"same shape different param names", func(c *Config) {
			c.Routes = append(c.Routes, Route{Name: "dup", Service: "users", Hosts: []string{"API.example.com"}, Paths: []string{"/users/{user}"},
				Methods: []string{"PUT", "GET"}, Headers: map[string]string{"x-tenant": "a"}})
		}, []string{`routes[3]: route "dup" matches the same requests as routes[0] "users" (host "API.example.com", path "/users/{user}")`}},
		{"every problem reported", func(c *Config) {
			c.Services[0].Name = ""
			c.Routes[1].Service = "billing"
			c.Routes[2].Paths[0] = "x"
		}, []string{"services[0].name: service name must not be empty", `routes[0].service: unknown service "users"`, `routes[1].service: unknown service "billing"`, `routes[2].paths[0]: path "x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", tt.want)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Validate() = %T, want Errors", err)
			}
			if len(errs) != len(tt.want) {
				t.Errorf("Validate() returned %d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					if strings.Contains(l, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("Validate() =\n%v\nwant a line containing %q", err, w)
				}
			}
		})
	}
}

func TestValidateDeletedServiceInUse(t *testing.T) {
	c := valid()
	if !c.DeleteService("grpc.api") {
		t.Fatal(`DeleteService("grpc.api") = false, want true`)
	}
	err := c.Validate()
	want := `routes[2].service: unknown service "grpc.api"`
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %q", err, want)
	}
}

func TestErrorsMessage(t *testing.T) {
	errs := Errors{{Path: "a", Message: "x"}, {Path: "b[1]", Message: "y"}}
	if got, want := errs.Error(), "a: x\nb[1]: y"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}
