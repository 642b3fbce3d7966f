package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
)

func TestRegisterHeartbeatDeregister(t *testing.T) {
	e := newEnv(t, admin.Config{})

	r := e.must(t, http.StatusCreated, "POST", "/register", `{"service":"orders","address":"http://10.0.0.7:8080","ttl":15,"weight":2,"metadata":{"zone":"a"}}`)
	var inst registry.Instance
	r.decode(t, &inst)
	if want := registry.InstanceID("orders", "http://10.0.0.7:8080"); inst.ID != want {
		t.Errorf("POST /register id = %q, want %q", inst.ID, want)
	}
	if !strings.Contains(r.body, `"ttl":15,`) {
		t.Errorf("POST /register body = %s, want ttl as a number of seconds (15)", r.body)
	}
	if inst.Weight != 2 || inst.Metadata["zone"] != "a" || inst.RegisteredAt.IsZero() {
		t.Errorf("POST /register = %+v, want weight 2, zone a and a registration time", inst)
	}
	if got, want := r.header.Get("Location"), "/register/"+inst.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	// Registering again is idempotent.
	var again registry.Instance
	e.must(t, http.StatusCreated, "POST", "/register", `{"service":"orders","address":"http://10.0.0.7:8080/","ttl":15,"weight":5}`).decode(t, &again)
	if again.ID != inst.ID || !again.RegisteredAt.Equal(inst.RegisteredAt) || again.Weight != 5 || again.Metadata != nil {
		t.Errorf("POST /register again = %+v, want id %s, the original registration time, weight 5 and no metadata", again, inst.ID)
	}
	var other registry.Instance
	e.must(t, http.StatusCreated, "POST", "/register", `{"service":"users","address":"http://10.0.0.8:8080"}`).decode(t, &other)

	var list struct {
		Revision  int64
		Instances []registry.Instance
	}
	e.must(t, http.StatusOK, "GET", "/instances", "").decode(t, &list)
	if len(list.Instances) != 2 || list.Revision <= 0 {
		t.Errorf("GET /instances = %+v, want 2 instances and a revision", list)
	}
	e.must(t, http.StatusOK, "GET", "/instances?service=users", "").decode(t, &list)
	if len(list.Instances) != 1 || list.Instances[0].ID != other.ID {
		t.Errorf("GET /instances?service=users = %+v, want only %s", list.Instances, other.ID)
	}
	if got, want := e.must(t, http.StatusOK, "GET", "/instances?service=nope", "").body, `"instances":[]`; !strings.Contains(got, want) {
		t.Errorf("GET /instances?service=nope = %s, want it to contain %s", got, want)
	}

	for _, hb := range []struct{ method, path, body string }{
		{"POST", "/register/" + inst.ID + "/heartbeat", ""},
		{"PUT", "/register/" + inst.ID, ""},
		{"PUT", "/register/" + inst.ID, "{}"},
	} {
		var got registry.Instance
		e.must(t, http.StatusOK, hb.method, hb.path, hb.body).decode(t, &got)
		if got.ID != inst.ID || got.RenewedAt.Before(again.RenewedAt) || got.Weight != 5 {
			t.Errorf("%s %s = %+v, want instance %s renewed, weight kept", hb.method, hb.path, got, inst.ID)
		}
	}

	r = e.must(t, http.StatusNoContent, "DELETE", "/register/"+inst.ID, "")
	if r.body != "" {
		t.Errorf("DELETE /register body = %q, want none", r.body)
	}
	e.must(t, http.StatusOK, "GET", "/instances", "").decode(t, &list)
	if len(list.Instances) != 1 {
		t.Errorf("GET /instances after DELETE = %+v, want one instance", list.Instances)
	}
}

func TestRegisterErrors(t *testing.T) {
	e := newEnv(t, admin.Config{})
	known := registry.InstanceID("orders", "http://10.0.0.7:8080")
	e.must(t, http.StatusCreated, "POST", "/register", `{"service":"orders","address":"http://10.0.0.7:8080"}`)

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantError  string
		wantPaths  string
	}{
		{"address without scheme", "POST", "/register", `{"service":"orders","address":"10.0.0.7:8080"}`, http.StatusBadRequest, `address "10.0.0.7:8080" is not an http(s) URL: add a scheme, e.g. "http://10.0.0.7:8080"`, "address"},
		{"no service", "POST", "/register", `{"address":"http://10.0.0.7:8080"}`, http.StatusBadRequest, `service is required`, "service"},
		{"ttl out of range", "POST", "/register", `{"service":"orders","address":"http://10.0.0.7:8080","ttl":0.25}`, http.StatusBadRequest, `ttl 0.25s is outside the allowed range 1s to 3600s`, "ttl"},
		{"ttl not a number", "POST", "/register", `{"service":"orders","address":"http://10.0.0.7:8080","ttl":"soon"}`, http.StatusBadRequest, `field "ttl": "soon" is not a number of seconds (e.g. 30) or a duration (e.g. "30s")`, "ttl"},
		{"ttl as a duration", "POST", "/register", `{"service":"orders","address":"http://10.0.0.7:8080","ttl":"2h"}`, http.StatusBadRequest, `ttl 7200s is outside the allowed range 1s to 3600s`, "ttl"},
		{"unknown field", "POST", "/register", `{"service":"orders","adress":"http://10.0.0.7:8080"}`, http.StatusBadRequest, `unknown field "adress" in request body`, "adress"},
		{"wrong type", "POST", "/register", `{"service":"orders","address":"http://10.0.0.7:8080","weight":"2"}`, http.StatusBadRequest, `field "weight" must be a number, not string`, "weight"},
		{"not an object", "POST", "/register", `["orders"]`, http.StatusBadRequest, `request body must be a JSON object, not array`, ""},
		{"heartbeat unknown", "POST", "/register/0123456789abcdef/heartbeat", "", http.StatusNotFound, `instance "0123456789abcdef" is not registered (its lease may have expired): register again with POST /register`, ""},
		{"put heartbeat unknown", "PUT", "/register/nope", "", http.StatusNotFound, `register again with POST /register`, ""},
		{"heartbeat with a body", "PUT", "/register/" + known, `{"weight":3}`, http.StatusBadRequest, "a heartbeat takes no body", ""},
		{"deregister unknown", "DELETE", "/register/0123456789abcdef", "", http.StatusNotFound, `instance "0123456789abcdef" is not registered`, ""},
	}
	for _, tt := range tests {
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
	var list struct{ Instances []registry.Instance }
	e.must(t, http.StatusOK, "GET", "/instances", "").decode(t, &list)
	if len(list.Instances) != 1 || list.Instances[0].Weight != 0 {
		t.Errorf("GET /instances after rejected requests = %+v, want the one instance unchanged", list.Instances)
	}
}
