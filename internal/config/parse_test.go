package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	want := Config{
		Services: []Service{
			{Name: "users", Protocol: "h2c", Targets: []Target{{URL: "http://10.0.0.1:8080"}, {URL: "http://10.0.0.2:8080", Weight: 2}}},
			{Name: "billing"},
		},
		Routes: []Route{{
			Name: "users", Service: "users", Hosts: []string{"api.example.com"}, Paths: []string{"/users/{id}"},
			PathType: "exact", Methods: []string{"GET"}, Headers: map[string]string{"X-Tenant": "a"},
			Rewrite: "/u/{id}", PreserveHost: true,
			RequestHeaders:  HeaderOps{Set: map[string]string{"X-Via": "gh"}, Remove: []string{"Cookie"}},
			ResponseHeaders: HeaderOps{Add: map[string]string{"X-Served-By": "gh"}},
			Timeout:         Duration(90 * time.Second),
		}},
	}
	yamlDoc := `
services:
  - name: users
    protocol: h2c
    targets:
      - http://10.0.0.1:8080
      - url: http://10.0.0.2:8080
        weight: 2
  - name: billing
routes:
  - name: users
    service: users
    hosts: [api.example.com]
    paths: ["/users/{id}"]
    path_type: exact
    methods: [GET]
    headers: {X-Tenant: a}
    rewrite: "/u/{id}"
    preserve_host: true
    request_headers:
      set: {X-Via: gh}
      remove: [Cookie]
    response_headers:
      add: {X-Served-By: gh}
    timeout: 1m30s
`
	jsonDoc := `{"services":[{"name":"users","protocol":"h2c","targets":["http://10.0.0.1:8080",{"url":"http://10.0.0.2:8080","weight":2}]},{"name":"billing"}],
"routes":[{"name":"users","service":"users","hosts":["api.example.com"],"paths":["/users/{id}"],"path_type":"exact","methods":["GET"],
"headers":{"X-Tenant":"a"},"rewrite":"/u/{id}","preserve_host":true,"request_headers":{"set":{"X-Via":"gh"},"remove":["Cookie"]},
"response_headers":{"add":{"X-Served-By":"gh"}},"timeout":90}]}`
	tests := []struct {
		name string
		doc  string
		want Config
	}{
		{"yaml", yamlDoc, want},
		{"json", jsonDoc, want},
		{"empty", "", Config{}},
		{"comment only", "# nothing yet\n", Config{}},
		// sigs.k8s.io/yaml parses YAML 1.1, where an unquoted on/yes is a
		// boolean; guided by the string field it becomes "true".
		{"yaml 1.1 boolean", "services: [{name: yes}]", Config{Services: []Service{{Name: "true"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse() = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"unknown top-level field", "servics: []", `unknown field "servics"`},
		{"unknown route field", "routes: [{name: a, service: a, pathz: [/]}]", `unknown field "pathz"`},
		{"unknown target field", "services: [{name: a, targets: [{url: 'http://a', wieght: 2}]}]", `unknown field "wieght"`},
		{"duplicate key", "routes: []\nroutes: []", `"routes" already set`},
		{"yaml syntax with line", "services:\n  - name: a\n   bad: [", "line 2"},
		{"json syntax", `{"services": [}`, "did not find expected node content"},
		{"wrong type", "routes: {name: a}", "cannot unmarshal object"},
		{"bad duration", "routes: [{name: a, service: a, timeout: soon}]", `invalid duration "soon"`},
		{"negative duration", "routes: [{name: a, service: a, timeout: -1s}]", `invalid duration "-1s": must not be negative`},
		{"target bad type", "services: [{name: a, targets: [42]}]", "target must be a URL string or an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse(%q) error = nil, want one containing %q", tt.doc, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "parse config: ") {
				t.Errorf("Parse(%q) error = %q, want %q prefixed by \"parse config: \"", tt.doc, err, tt.want)
			}
		})
	}
}

func TestDurationUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{`"30s"`, 30 * time.Second, ""},
		{`"1m30s"`, 90 * time.Second, ""},
		{`"250ms"`, 250 * time.Millisecond, ""},
		{`"0s"`, 0, ""},
		{`30`, 30 * time.Second, ""},
		{`1.5`, 1500 * time.Millisecond, ""},
		{`0`, 0, ""},
		{`"-5s"`, 0, "must not be negative"},
		{`-1`, 0, "must not be negative"},
		{`"30"`, 0, `invalid duration "30"`},
		{`true`, 0, "invalid duration true"},
		{`1e300`, 0, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tt.in), &d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Unmarshal(%s) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s) error = %v", tt.in, err)
			}
			if got := d.Std(); got != tt.want {
				t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDurationNullKeepsValue(t *testing.T) {
	d := Duration(time.Second)
	if err := json.Unmarshal([]byte("null"), &d); err != nil {
		t.Fatalf("Unmarshal(null) error = %v", err)
	}
	if d != Duration(time.Second) {
		t.Errorf("after Unmarshal(null) d = %v, want 1s", d)
	}
}

func TestDurationMarshal(t *testing.T) {
	tests := []struct {
		d    Duration
		want string
	}{
		{Duration(90 * time.Second), `"1m30s"`},
		{Duration(250 * time.Millisecond), `"250ms"`},
		{0, `"0s"`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.d)
		if err != nil {
			t.Fatalf("Marshal(%v) error = %v", tt.d.Std(), err)
		}
		if string(got) != tt.want {
			t.Errorf("Marshal(%v) = %s, want %s", tt.d.Std(), got, tt.want)
		}
	}
}

func TestTargetForms(t *testing.T) {
	tests := []struct {
		in      string
		want    Target
		wantErr string
	}{
		{`"http://a:1"`, Target{URL: "http://a:1"}, ""},
		{`{"url":"http://a:1"}`, Target{URL: "http://a:1"}, ""},
		{`{"url":"http://a:1","weight":5}`, Target{URL: "http://a:1", Weight: 5}, ""},
		{` "http://a:1" `, Target{URL: "http://a:1"}, ""},
		{`{"url":"http://a:1","wieght":5}`, Target{}, `unknown field "wieght"`},
		{`["http://a:1"]`, Target{}, "target must be a URL string or an object"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got Target
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Unmarshal(%s) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s) error = %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Unmarshal(%s) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c := valid()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("Marshal() error = %v", err)
	}
	if want := `"targets":[{"url":"http://10.0.0.1:8080"},{"url":"https://users.internal/","weight":3}]`; !strings.Contains(string(data), want) {
		t.Errorf("Marshal() = %s, want it to contain %s", data, want)
	}
	if want := `"timeout":"5s"`; !strings.Contains(string(data), want) {
		t.Errorf("Marshal() = %s, want it to contain %s", data, want)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(Marshal()) error = %v", err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("Parse(Marshal(c)) = %+v, want %+v", got, c)
	}
}
