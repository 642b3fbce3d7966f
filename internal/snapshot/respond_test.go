package snapshot

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

func TestCompileRespond(t *testing.T) {
	const digest = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	cfg := config.Config{
		Services: []config.Service{{Name: "a", Auth: &config.Auth{APIKey: true}}},
		Routes: []config.Route{
			{Name: "mock", Paths: []string{"/mock"}, Respond: &config.Respond{
				Status: 503, Artifact: digest, ContentType: "text/html",
				Headers: map[string]string{"cache-control": "no-store", "X-Mock": "1"},
			}, RateLimit: &config.RateLimit{Requests: 5, Per: config.Duration(time.Second)},
				ResponseHeaders: config.HeaderOps{Remove: []string{"server"}}},
			{Name: "openapi", Paths: []string{"/openapi.json"}, Respond: &config.Respond{Artifact: digest},
				Auth: &config.Auth{APIKey: true, Header: "x-api-key"}},
			{Name: "fwd", Service: "a", Paths: []string{"/a"}},
		},
	}
	s, err := Compile(cfg, nil, 1)
	if err != nil {
		t.Fatalf("Compile() error = %v", err)
	}
	mock, openapi, fwd := s.Routes[0], s.Routes[1], s.Routes[2]
	want := &Respond{
		Status: 503, Digest: digest, ETag: `"` + digest + `"`, ContentType: "text/html",
		Headers: http.Header{"Cache-Control": {"no-store"}, "X-Mock": {"1"}},
	}
	if !reflect.DeepEqual(mock.Respond, want) {
		t.Errorf("mock Respond = %+v, want %+v", mock.Respond, want)
	}
	wantDefaults := &Respond{Status: 200, Digest: digest, ETag: `"` + digest + `"`}
	if !reflect.DeepEqual(openapi.Respond, wantDefaults) {
		t.Errorf("openapi Respond = %+v, want %+v", openapi.Respond, wantDefaults)
	}
	if mock.Service != nil || openapi.Service != nil {
		t.Errorf("Service = %v, %v; want nil for routes that respond", mock.Service, openapi.Service)
	}
	if fwd.Respond != nil || fwd.Service != s.Service("a") {
		t.Errorf("fwd: Respond = %v, Service = %p; want nil, %p", fwd.Respond, fwd.Service, s.Service("a"))
	}
	// The policies that apply to every route are compiled as usual; a
	// route with no service inherits no service auth.
	if mock.Auth != nil || mock.RateLimit == nil || mock.RateLimit.Burst != 5 || !reflect.DeepEqual(mock.ResponseHeaders.Remove, []string{"Server"}) {
		t.Errorf("mock Auth %v, RateLimit %+v, ResponseHeaders %+v; want nil, 5/s burst 5, remove Server", mock.Auth, mock.RateLimit, mock.ResponseHeaders)
	}
	if openapi.Auth == nil || openapi.Auth.Header != "X-Api-Key" {
		t.Errorf("openapi Auth = %+v, want header X-Api-Key", openapi.Auth)
	}
	m, ok := s.Match(Request{Method: "GET", Path: "/openapi.json"})
	if !ok || m.Route != openapi {
		t.Errorf("Match(/openapi.json) = %v, %v; want route openapi", m.Route, ok)
	}
	// Header values can be put in a response and appended to there without
	// writing into the snapshot.
	for k, vv := range mock.Respond.Headers {
		if cap(vv) != len(vv) {
			t.Errorf("Headers[%s] has capacity %d > length %d", k, cap(vv), len(vv))
		}
	}
	// The snapshot does not share the configuration's map.
	cfg.Routes[0].Respond.Headers["X-Mock"] = "changed"
	if got := mock.Respond.Headers.Get("X-Mock"); got != "1" {
		t.Errorf("Headers changed with the configuration: X-Mock = %q", got)
	}
}
