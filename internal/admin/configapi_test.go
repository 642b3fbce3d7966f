package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/store"
)

const yamlConfig = `
services:
  - name: orders
    targets: ["http://127.0.0.1:9001"]
  - name: users
    targets:
      - url: http://127.0.0.1:9002
        weight: 2
routes:
  - name: orders
    service: orders
    paths: ["/orders"]
`

type configResponse struct {
	Revision int64         `json:"revision"`
	Config   config.Config `json:"config"`
}

func TestPutAndGetConfig(t *testing.T) {
	e := newEnv(t, admin.Config{})

	var empty configResponse
	e.must(t, http.StatusOK, "GET", "/config", "").decode(t, &empty)
	if empty.Revision != 0 || len(empty.Config.Services) != 0 {
		t.Errorf("GET /config before any PUT = %+v, want revision 0 and nothing configured", empty)
	}

	var put struct{ Revision int64 }
	e.must(t, http.StatusOK, "PUT", "/config", yamlConfig).decode(t, &put)
	if put.Revision <= 0 {
		t.Errorf("PUT /config (YAML) revision = %d, want > 0", put.Revision)
	}
	var got configResponse
	e.must(t, http.StatusOK, "GET", "/config", "").decode(t, &got)
	if got.Revision != put.Revision {
		t.Errorf("GET /config revision = %d, want %d", got.Revision, put.Revision)
	}
	if len(got.Config.Services) != 2 || got.Config.Services[1].Targets[0].Weight != 2 || len(got.Config.Routes) != 1 {
		t.Errorf("GET /config = %+v, want the two services and one route just PUT", got.Config)
	}

	// JSON works too, and replaces everything.
	var put2 struct{ Revision int64 }
	e.must(t, http.StatusOK, "PUT", "/config", `{"services":[{"name":"billing"}]}`).decode(t, &put2)
	got = configResponse{} // decoding into the old value would merge
	e.must(t, http.StatusOK, "GET", "/config", "").decode(t, &got)
	if len(got.Config.Services) != 1 || got.Config.Services[0].Name != "billing" || len(got.Config.Routes) != 0 || got.Revision != put2.Revision {
		t.Errorf("GET /config after JSON PUT = %+v, want only service billing at revision %d", got, put2.Revision)
	}
}

func TestPutConfigRejectsAndKeepsOld(t *testing.T) {
	e := newEnv(t, admin.Config{})
	var before configResponse
	e.must(t, http.StatusOK, "PUT", "/config", yamlConfig)
	e.must(t, http.StatusOK, "GET", "/config", "").decode(t, &before)

	tests := []struct {
		name      string
		body      string
		wantError string
		wantPaths string
	}{
		{
			name:      "every validation problem",
			body:      `{"services":[{"name":"-bad","targets":["ftp://x"]}],"routes":[{"name":"r","service":"missing","paths":["/a"]},{"name":"r2","service":"","methods":["get"]}]}`,
			wantError: "the configuration is invalid (5 problems); nothing was changed",
			wantPaths: "services[0].name services[0].targets[0].url routes[0].service routes[1].service routes[1].methods[0]",
		},
		{
			name:      "unknown field",
			body:      "services:\n  - name: a\n    protocl: h2c\n",
			wantError: `unknown field "protocl"`,
		},
		{
			name:      "YAML syntax",
			body:      "services: [\n",
			wantError: "parse config",
		},
		{
			name:      "empty body",
			body:      " \n",
			wantError: "request body is empty: send the whole configuration as JSON or YAML (an empty configuration is {})",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.must(t, http.StatusBadRequest, "PUT", "/config", tt.body)
			var eb errorBody
			r.decode(t, &eb)
			if !strings.Contains(eb.Error, tt.wantError) {
				t.Errorf("error = %q, want it to contain %q", eb.Error, tt.wantError)
			}
			if got := eb.paths(); got != tt.wantPaths {
				t.Errorf("detail paths = %q, want %q", got, tt.wantPaths)
			}
			for _, d := range eb.Details {
				if d.Message == "" {
					t.Errorf("detail %s has no message", d.Path)
				}
			}
			var after configResponse
			e.must(t, http.StatusOK, "GET", "/config", "").decode(t, &after)
			if after.Revision != before.Revision || len(after.Config.Services) != 2 {
				t.Errorf("GET /config after a rejected PUT = revision %d, %d services, want the old revision %d with 2", after.Revision, len(after.Config.Services), before.Revision)
			}
		})
	}
}

type serviceResponse struct {
	Revision int64          `json:"revision"`
	Service  config.Service `json:"service"`
}

type routeResponse struct {
	Revision int64        `json:"revision"`
	Route    config.Route `json:"route"`
}

func TestServicesAndRoutes(t *testing.T) {
	e := newEnv(t, admin.Config{})

	if got, want := e.must(t, http.StatusOK, "GET", "/services", "").body, `{"revision":0,"services":[]}`+"\n"; got != want {
		t.Errorf("GET /services when empty = %s, want %s", got, want)
	}
	if got, want := e.must(t, http.StatusOK, "GET", "/routes", "").body, `{"revision":0,"routes":[]}`+"\n"; got != want {
		t.Errorf("GET /routes when empty = %s, want %s", got, want)
	}

	var svc serviceResponse
	e.must(t, http.StatusOK, "PUT", "/services/orders", `{"targets":["http://127.0.0.1:9001"],"protocol":"h2c"}`).decode(t, &svc)
	if svc.Service.Name != "orders" || svc.Revision <= 0 {
		t.Errorf("PUT /services/orders = %+v, want the service named from the URL and a revision", svc)
	}
	// The same name in the body is fine.
	e.must(t, http.StatusOK, "PUT", "/services/users", `{"name":"users","targets":[{"url":"http://127.0.0.1:9002","weight":2}]}`)

	var rt routeResponse
	e.must(t, http.StatusOK, "PUT", "/routes/orders", `{"service":"orders","paths":["/orders"],"timeout":"5s"}`).decode(t, &rt)
	if rt.Route.Name != "orders" || rt.Route.Timeout.Std().Seconds() != 5 || rt.Revision <= svc.Revision {
		t.Errorf("PUT /routes/orders = %+v, want route orders with timeout 5s at a revision after %d", rt, svc.Revision)
	}

	var list struct {
		Revision int64
		Services []config.Service
	}
	e.must(t, http.StatusOK, "GET", "/services", "").decode(t, &list)
	if len(list.Services) != 2 || list.Services[0].Name != "orders" || list.Services[1].Name != "users" || list.Revision != rt.Revision {
		t.Errorf("GET /services = %+v, want orders and users at revision %d", list, rt.Revision)
	}
	e.must(t, http.StatusOK, "GET", "/services/users", "").decode(t, &svc)
	if svc.Service.Targets[0].Weight != 2 {
		t.Errorf("GET /services/users = %+v, want target weight 2", svc)
	}
	var routes struct{ Routes []config.Route }
	e.must(t, http.StatusOK, "GET", "/routes", "").decode(t, &routes)
	if len(routes.Routes) != 1 || routes.Routes[0].Name != "orders" {
		t.Errorf("GET /routes = %+v, want route orders", routes)
	}
	e.must(t, http.StatusOK, "GET", "/routes/orders", "").decode(t, &rt)
	if rt.Route.Service != "orders" {
		t.Errorf("GET /routes/orders = %+v, want service orders", rt)
	}

	errorCases := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantError  string
		wantPaths  string
	}{
		{"service name mismatch", "PUT", "/services/orders", `{"name":"billing"}`, http.StatusBadRequest, `the body names service "billing" but the URL names "orders"`, "name"},
		{"route name mismatch", "PUT", "/routes/orders", `{"name":"x","service":"orders"}`, http.StatusBadRequest, `the body names route "x" but the URL names "orders"`, "name"},
		{"invalid service", "PUT", "/services/bad", `{"targets":["10.0.0.1:80"],"protocol":"h3"}`, http.StatusBadRequest, "the configuration is invalid (2 problems)", "services[2].protocol services[2].targets[0].url"},
		{"route to unknown service", "PUT", "/routes/r", `{"service":"nope"}`, http.StatusBadRequest, "the configuration is invalid (1 problem)", "routes[1].service"},
		{"unknown service field", "PUT", "/services/x", `{"targets":[],"weight":1}`, http.StatusBadRequest, `unknown field "weight" in request body`, "weight"},
		{"unknown route field", "PUT", "/routes/x", `{"service":"orders","path":"/x"}`, http.StatusBadRequest, `unknown field "path" in request body`, "path"},
		{"wrong type", "PUT", "/routes/x", `{"service":"orders","paths":"/x"}`, http.StatusBadRequest, `field "paths" must be an array, not string`, "paths"},
		{"empty body", "PUT", "/services/x", ``, http.StatusBadRequest, "request body is empty: send a JSON object", ""},
		{"trailing data", "PUT", "/services/x", `{} {}`, http.StatusBadRequest, "request body has data after the JSON object", ""},
		{"bad JSON", "PUT", "/services/x", `{"targets":`, http.StatusBadRequest, "request body is not valid JSON", ""},
		{"delete service in use", "DELETE", "/services/orders", "", http.StatusBadRequest, "the configuration is invalid (1 problem)", "routes[0].service"},
		{"get missing service", "GET", "/services/nope", "", http.StatusNotFound, `service "nope" not found`, ""},
		{"delete missing service", "DELETE", "/services/nope", "", http.StatusNotFound, `service "nope" not found`, ""},
		{"get missing route", "GET", "/routes/nope", "", http.StatusNotFound, `route "nope" not found`, ""},
		{"delete missing route", "DELETE", "/routes/nope", "", http.StatusNotFound, `route "nope" not found`, ""},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			r := e.must(t, tt.wantStatus, tt.method, tt.path, tt.body)
			var eb errorBody
			r.decode(t, &eb)
			if !strings.Contains(eb.Error, tt.wantError) {
				t.Errorf("error = %q, want it to contain %q", eb.Error, tt.wantError)
			}
			if got := eb.paths(); got != tt.wantPaths {
				t.Errorf("detail paths = %q, want %q", got, tt.wantPaths)
			}
		})
	}
	var unchanged configResponse
	e.must(t, http.StatusOK, "GET", "/config", "").decode(t, &unchanged)
	if unchanged.Revision != rt.Revision {
		t.Errorf("revision after rejected changes = %d, want %d (nothing stored)", unchanged.Revision, rt.Revision)
	}

	var del struct{ Revision int64 }
	e.must(t, http.StatusOK, "DELETE", "/routes/orders", "").decode(t, &del)
	e.must(t, http.StatusOK, "DELETE", "/services/orders", "").decode(t, &del)
	if del.Revision <= rt.Revision {
		t.Errorf("DELETE revision = %d, want > %d", del.Revision, rt.Revision)
	}
	e.must(t, http.StatusNotFound, "GET", "/services/orders", "")
	e.must(t, http.StatusNotFound, "GET", "/routes/orders", "")
	e.must(t, http.StatusOK, "GET", "/services/users", "")
}

func TestUpdateConflict(t *testing.T) {
	e := newEnv(t, admin.Config{})
	// Another writer changes the configuration between every read and
	// write, so that the compare-and-swap never succeeds.
	e.cs.interfere = func(ctx context.Context) {
		if _, err := e.st.Put(ctx, configKey, []byte(`{}`), store.PutOptions{}); err != nil {
			t.Errorf("interfering Put() error = %v", err)
		}
	}
	r := e.must(t, http.StatusConflict, "PUT", "/services/orders", `{}`)
	var eb errorBody
	r.decode(t, &eb)
	if !strings.Contains(eb.Error, "retry") {
		t.Errorf("409 error = %q, want advice to retry", eb.Error)
	}
}
