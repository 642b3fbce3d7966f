package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAccessLogFields(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	e := Entry{
		Time:      time.Date(2025, 1, 2, 4, 4, 5, 123456789, berlin),
		Method:    "POST",
		Host:      "api.example.com",
		Path:      "/v1/users?api_key=gh_secretvalue&x=1",
		Route:     "users",
		Service:   "users-svc",
		Replica:   "users-svc/10.0.0.7:8080",
		Status:    201,
		Bytes:     1234,
		Duration:  12345678 * time.Nanosecond,
		Attempts:  2,
		ClientIP:  "192.0.2.1",
		KeyID:     "key_abc123",
		TraceID:   "4bf92f3577b34da6a3ce929d0e0e4736",
		UserAgent: "curl/8.5.0",
	}
	var buf bytes.Buffer
	NewAccessLog(&buf, true).Log(e)
	line := buf.String()

	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Fatalf("Log wrote %q, want one line ending in a newline", line)
	}
	if strings.Contains(line, "api_key") || strings.Contains(line, "gh_secretvalue") {
		t.Errorf("Log wrote %q, want no query string", line)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("Log wrote %q: not JSON: %v", line, err)
	}
	want := map[string]any{
		"time":        "2025-01-02T03:04:05.123456789Z",
		"method":      "POST",
		"host":        "api.example.com",
		"path":        "/v1/users",
		"route":       "users",
		"service":     "users-svc",
		"replica":     "users-svc/10.0.0.7:8080",
		"status":      201.0,
		"bytes":       1234.0,
		"duration_ms": 12.346,
		"attempts":    2.0,
		"client_ip":   "192.0.2.1",
		"key_id":      "key_abc123",
		"trace_id":    "4bf92f3577b34da6a3ce929d0e0e4736",
		"user_agent":  "curl/8.5.0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Log fields =\n%v\nwant\n%v", got, want)
	}
}

func TestAccessLogZeroEntry(t *testing.T) {
	var buf bytes.Buffer
	before := time.Now()
	NewAccessLog(&buf, true).Log(Entry{})
	var got struct {
		Time   time.Time `json:"time"`
		Path   *string   `json:"path"`
		Status *int      `json:"status"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("Log(Entry{}) wrote %q: %v", buf.String(), err)
	}
	if got.Time.Before(before.Add(-time.Second)) || got.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("time = %v, want about %v (zero Time means now)", got.Time, before)
	}
	if got.Path == nil || *got.Path != "" || got.Status == nil || *got.Status != 0 {
		t.Errorf("Log(Entry{}) = %q, want every field present, empty or zero", buf.String())
	}
}

func TestAccessLogEscaping(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the decoded value
	}{
		{"plain", "/v1/users/42", "/v1/users/42"},
		{"quotes and backslashes", `/a"b\c`, `/a"b\c`},
		{"newline injection", "/a\n{\"forged\":true}\r\n", "/a\n{\"forged\":true}\r\n"},
		{"tab and control chars", "/a\tb\x00c\x1fd\x7f", "/a\tb\x00c\x1fd\x7f"},
		{"invalid UTF-8", "/a\xffb\xc3", "/a\uFFFDb\uFFFD"},
		{"truncated rune", "/\xe2\x82", "/\uFFFD\uFFFD"},
		{"JavaScript line separators", "/a\u2028b\u2029", "/a\u2028b\u2029"},
		{"multibyte", "/café/日本/🚀", "/café/日本/🚀"},
		{"HTML left alone", "/<a>&", "/<a>&"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			NewAccessLog(&buf, true).Log(Entry{Path: tt.in, UserAgent: tt.in, Method: tt.in})
			line := buf.Bytes()
			if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
				t.Fatalf("Log wrote %q, want exactly one line", line)
			}
			var got struct {
				Path      string `json:"path"`
				UserAgent string `json:"user_agent"`
				Method    string `json:"method"`
			}
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("Log wrote %q: not JSON: %v", line, err)
			}
			for _, v := range []string{got.Path, got.UserAgent, got.Method} {
				if v != tt.want {
					t.Errorf("decoded field = %q, want %q", v, tt.want)
				}
			}
		})
	}
}

// FuzzAppendJSONString checks that any string encodes to valid JSON that
// decodes to what encoding/json makes of the same string.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "\x00\n\t", "\xff", "\u2028", "日本", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		if !json.Valid(b) {
			t.Fatalf("appendJSONString(%q) = %s, not valid JSON", s, b)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: %v", s, b, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ref, &want)
		if got != want {
			t.Errorf("appendJSONString(%q) decodes to %q, want %q", s, got, want)
		}
	})
}

// lineWriter records each Write call. It has no lock on purpose: AccessLog
// must serialize writes, and the race detector reports it if it does not.
type lineWriter struct {
	writes [][]byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func TestAccessLogConcurrent(t *testing.T) {
	const goroutines, perGoroutine = 8, 200
	var w lineWriter
	l := NewAccessLog(&w, true)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				l.Log(Entry{
					Method:    "GET",
					Path:      fmt.Sprintf("/g%d/%d", g, i),
					UserAgent: strings.Repeat("x", 100*g), // lines of different sizes
					Status:    200,
				})
			}
		})
	}
	wg.Wait()

	if got, want := len(w.writes), goroutines*perGoroutine; got != want {
		t.Fatalf("Write calls = %d, want %d (one per line)", got, want)
	}
	seen := make(map[string]bool)
	for _, p := range w.writes {
		if bytes.Count(p, []byte("\n")) != 1 || !bytes.HasSuffix(p, []byte("\n")) {
			t.Fatalf("Write(%q), want exactly one whole line", p)
		}
		var e struct {
			Path string `json:"path"`
		}
		if err := json.Unmarshal(p, &e); err != nil {
			t.Fatalf("line %q: %v", p, err)
		}
		seen[e.Path] = true
	}
	for g := range goroutines {
		for i := range perGoroutine {
			if p := "/g" + strconv.Itoa(g) + "/" + strconv.Itoa(i); !seen[p] {
				t.Errorf("line for %s missing", p)
			}
		}
	}
}

func TestAccessLogDisabled(t *testing.T) {
	tests := []struct {
		name string
		l    *AccessLog
		w    *bytes.Buffer
	}{
		{"disabled", nil, &bytes.Buffer{}},
		{"nil writer", NewAccessLog(nil, true), nil},
		{"nil log", nil, nil},
	}
	tests[0].l = NewAccessLog(tests[0].w, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.l.Enabled() {
				t.Errorf("Enabled() = true, want false")
			}
			e := Entry{Path: "/x", Status: 200}
			allocs := testing.AllocsPerRun(100, func() { tt.l.Log(e) })
			if allocs != 0 {
				t.Errorf("disabled Log allocs = %v, want 0", allocs)
			}
			if tt.w != nil && tt.w.Len() != 0 {
				t.Errorf("disabled Log wrote %q, want nothing", tt.w.String())
			}
		})
	}
}

func TestAccessLogAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation budget not checked under the race detector")
	}
	l := NewAccessLog(io.Discard, true)
	e := benchEntry()
	if got := testing.AllocsPerRun(200, func() { l.Log(e) }); got != 0 {
		t.Errorf("Log allocs = %v, want 0", got)
	}
}

func benchEntry() Entry {
	return Entry{
		Time:      time.Now(),
		Method:    "GET",
		Host:      "api.example.com",
		Path:      "/v1/users/42",
		Route:     "users",
		Service:   "users-svc",
		Replica:   "users-svc/10.0.0.7:8080",
		Status:    200,
		Bytes:     5120,
		Duration:  3 * time.Millisecond,
		Attempts:  1,
		ClientIP:  "192.0.2.1",
		KeyID:     "key_abc123",
		TraceID:   "4bf92f3577b34da6a3ce929d0e0e4736",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
	}
}

func BenchmarkAccessLog(b *testing.B) {
	l := NewAccessLog(io.Discard, true)
	e := benchEntry()
	b.ReportAllocs()
	for b.Loop() {
		l.Log(e)
	}
}

func BenchmarkAccessLogDisabled(b *testing.B) {
	l := NewAccessLog(io.Discard, false)
	e := benchEntry()
	b.ReportAllocs()
	for b.Loop() {
		l.Log(e)
	}
}
