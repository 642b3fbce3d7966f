package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// digest is a well-formed artifact digest (the SHA-256 of "hello\n").
const digest = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

// withRespond is valid() plus a route that answers with an artifact.
func withRespond() Config {
	c := valid()
	c.Routes = append(c.Routes, Route{
		Name: "openapi", Paths: []string{"/openapi.json"}, PathType: "exact",
		Respond: &Respond{Status: 200, Artifact: digest, ContentType: "application/json",
			Headers: map[string]string{"Cache-Control": "max-age=60"}},
		Auth:            &Auth{APIKey: true},
		RateLimit:       &RateLimit{Requests: 10, Per: Duration(time.Second)},
		ResponseHeaders: HeaderOps{Set: map[string]string{"X-Mock": "1"}},
	})
	return c
}

func TestValidateRespondValid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *Respond)
	}{
		{"full", func(*Respond) {}},
		{"defaults", func(r *Respond) { *r = Respond{Artifact: digest} }},
		{"status 404", func(r *Respond) { r.Status = 404 }},
		{"status 599", func(r *Respond) { r.Status = 599 }},
		{"content type with parameters", func(r *Respond) { r.ContentType = "text/html; charset=utf-8" }},
		{"content encoding header", func(r *Respond) { r.Headers = map[string]string{"Content-Encoding": "gzip"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withRespond()
			tt.mutate(c.Routes[3].Respond)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateRespondInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *Route)
		// want are the whole error lines, in order.
		want []string
	}{
		{"service and respond", func(r *Route) { r.Service = "users" },
			[]string{`routes[3].respond: route has both service "users" and respond: a route forwards to a service or responds itself, remove one`}},
		{"service and respond, unknown service", func(r *Route) { r.Service = "nope" },
			[]string{`routes[3].respond: route has both service "nope" and respond: a route forwards to a service or responds itself, remove one`,
				`routes[3].service: unknown service "nope"`}},
		{"neither service nor respond", func(r *Route) { r.Respond = nil },
			[]string{`routes[3].service: must name a service (or set respond to answer with an artifact)`}},
		{"missing artifact", func(r *Route) { r.Respond.Artifact = "" },
			[]string{`routes[3].respond.artifact: artifact must name the stored artifact by its SHA-256 digest (64 lowercase hex characters)`}},
		{"short digest", func(r *Route) { r.Respond.Artifact = digest[:63] },
			[]string{`routes[3].respond.artifact: invalid artifact "` + digest[:63] + `": want a SHA-256 digest, 64 lowercase hex characters`}},
		{"upper-case digest", func(r *Route) { r.Respond.Artifact = strings.ToUpper(digest) },
			[]string{`routes[3].respond.artifact: invalid artifact "` + strings.ToUpper(digest) + `": want a SHA-256 digest, 64 lowercase hex characters`}},
		{"prefixed digest", func(r *Route) { r.Respond.Artifact = "sha256:" + digest[:57] },
			[]string{`routes[3].respond.artifact: invalid artifact "sha256:` + digest[:57] + `": want a SHA-256 digest, 64 lowercase hex characters`}},
		{"status 1xx", func(r *Route) { r.Respond.Status = 101 },
			[]string{`routes[3].respond.status: status 101 must be a final HTTP status code (200-599)`}},
		{"status 600", func(r *Route) { r.Respond.Status = 600 },
			[]string{`routes[3].respond.status: status 600 must be a final HTTP status code (200-599)`}},
		{"negative status", func(r *Route) { r.Respond.Status = -200 },
			[]string{`routes[3].respond.status: status -200 must be a final HTTP status code (200-599)`}},
		{"status 204", func(r *Route) { r.Respond.Status = 204 },
			[]string{`routes[3].respond.status: status 204 has no content but respond always sends the artifact: use a status that carries content`}},
		{"status 205", func(r *Route) { r.Respond.Status = 205 },
			[]string{`routes[3].respond.status: status 205 has no content but respond always sends the artifact: use a status that carries content`}},
		{"status 304", func(r *Route) { r.Respond.Status = 304 },
			[]string{`routes[3].respond.status: status 304 has no content but respond always sends the artifact: use a status that carries content`}},
		{"bad content type", func(r *Route) { r.Respond.ContentType = "json" },
			[]string{`routes[3].respond.content_type: invalid content_type "json": use a media type such as "application/json"`}},
		{"content type with control character", func(r *Route) { r.Respond.ContentType = "text/plain; a=\"\x01\"" },
			[]string{`routes[3].respond.content_type: invalid content_type "text/plain; a=\"\x01\"": use a media type such as "application/json"`}},
		{"bad header name", func(r *Route) { r.Respond.Headers["Cache Control"] = "x" },
			[]string{`routes[3].respond.headers[Cache Control]: invalid header name "Cache Control"`}},
		{"bad header value", func(r *Route) { r.Respond.Headers["Cache-Control"] = "a\nb" },
			[]string{`routes[3].respond.headers[Cache-Control]: invalid header value "a\nb": control characters are not allowed`}},
		{"content type header", func(r *Route) { r.Respond.Headers["content-type"] = "text/plain" },
			[]string{`routes[3].respond.headers[content-type]: header "content-type" cannot be set here: use content_type`}},
		{"etag header", func(r *Route) { r.Respond.Headers["ETag"] = `"x"` },
			[]string{`routes[3].respond.headers[ETag]: header "ETag" cannot be set here: the gateway sets it from the artifact`}},
		{"content length header", func(r *Route) { r.Respond.Headers["Content-Length"] = "3" },
			[]string{`routes[3].respond.headers[Content-Length]: header "Content-Length" cannot be set here: the gateway sets it from the artifact`}},
		{"hop-by-hop header", func(r *Route) { r.Respond.Headers["Transfer-Encoding"] = "chunked" },
			[]string{`routes[3].respond.headers[Transfer-Encoding]: header "Transfer-Encoding" cannot be set here: it is a hop-by-hop header`}},
		{"strip_prefix", func(r *Route) { r.StripPrefix = true },
			[]string{`routes[3].strip_prefix: strip_prefix true has no effect on a route with respond, which contacts no service: remove it`}},
		{"rewrite", func(r *Route) { r.Rewrite = "/x" },
			[]string{`routes[3].rewrite: rewrite "/x" has no effect on a route with respond, which contacts no service: remove it`}},
		{"preserve_host", func(r *Route) { r.PreserveHost = true },
			[]string{`routes[3].preserve_host: preserve_host true has no effect on a route with respond, which contacts no service: remove it`}},
		{"request_headers", func(r *Route) { r.RequestHeaders.Remove = []string{"Cookie"} },
			[]string{`routes[3].request_headers: request_headers has no effect on a route with respond, which contacts no service: remove it`}},
		{"timeout", func(r *Route) { r.Timeout = Duration(5 * time.Second) },
			[]string{`routes[3].timeout: timeout "5s" has no effect on a route with respond, which contacts no service: remove it`}},
		{"retry", func(r *Route) { r.Retry.Attempts = 1 },
			[]string{`routes[3].retry: retry has no effect on a route with respond, which contacts no service: remove it`}},
		{"every problem reported", func(r *Route) {
			r.Respond.Status, r.Respond.Artifact, r.Timeout = 304, "x", Duration(time.Second)
		}, []string{
			`routes[3].respond.status: status 304 has no content but respond always sends the artifact: use a status that carries content`,
			`routes[3].respond.artifact: invalid artifact "x": want a SHA-256 digest, 64 lowercase hex characters`,
			`routes[3].timeout: timeout "1s" has no effect on a route with respond, which contacts no service: remove it`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withRespond()
			tt.mutate(&c.Routes[3])
			err := c.Validate()
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Validate() = %v, want Errors %q", err, tt.want)
			}
			if got := strings.Split(errs.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseRespond(t *testing.T) {
	doc := `
routes:
  - name: openapi
    paths: ["/openapi.json"]
    respond:
      status: 203
      artifact: "` + digest + `"
      content_type: application/json
      headers: {Cache-Control: max-age=60}
`
	cfg, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	want := Config{Routes: []Route{{Name: "openapi", Paths: []string{"/openapi.json"}, Respond: &Respond{
		Status: 203, Artifact: digest, ContentType: "application/json", Headers: map[string]string{"Cache-Control": "max-age=60"},
	}}}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Parse() = %+v, want %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	// A route that responds has no service, and writes none.
	out, err := json.Marshal(cfg.Routes[0])
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"name":"openapi","respond":{"status":203,"artifact":"` + digest + `","content_type":"application/json","headers":{"Cache-Control":"max-age=60"}},"paths":["/openapi.json"]}`
	if string(out) != wantJSON {
		t.Errorf("json.Marshal() = %s, want %s", out, wantJSON)
	}
	if _, err := Parse([]byte("routes: [{name: r, respond: {artifact: x, body: hi}}]")); err == nil || !strings.Contains(err.Error(), `unknown field "body"`) {
		t.Errorf("Parse() with an unknown respond field: error = %v, want unknown field \"body\"", err)
	}
}
