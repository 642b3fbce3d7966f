package main

import (
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/breaker"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/proxy"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

func TestAccessLogSetting(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		args    []string
		want    bool
		wantErr []string // substrings of the error; nil for none
	}{
		{name: "default on", want: true},
		{name: "env false", env: []string{"GATEHOUSE_ACCESS_LOG=false"}, want: false},
		{name: "env 0", env: []string{"GATEHOUSE_ACCESS_LOG=0"}, want: false},
		{name: "bare flag", env: []string{"GATEHOUSE_ACCESS_LOG=false"}, args: []string{"--access-log"}, want: true},
		{name: "flag false", args: []string{"--access-log=false"}, want: false},
		{name: "flag wins over env", env: []string{"GATEHOUSE_ACCESS_LOG=true"}, args: []string{"--access-log=false"}, want: false},
		{name: "bad env", env: []string{"GATEHOUSE_ACCESS_LOG=sometimes"}, wantErr: []string{"--access-log", "GATEHOUSE_ACCESS_LOG", `"sometimes"`}},
		{name: "bad flag", args: []string{"--access-log=yes please"}, wantErr: []string{"--access-log", `"yes please"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSettings(tt.args, tt.env, io.Discard)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("parseSettings() = nil error, want one naming %v", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("parseSettings() error = %q, want it to contain %s", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSettings() error = %v", err)
			}
			if s.accessLog != tt.want {
				t.Errorf("accessLog = %v, want %v", s.accessLog, tt.want)
			}
		})
	}
}

func TestTracingSetting(t *testing.T) {
	tests := []struct {
		name         string
		env          []string
		wantEndpoint string
		wantErr      []string
	}{
		{name: "off by default"},
		{name: "base endpoint", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318"}, wantEndpoint: "http://127.0.0.1:4318/v1/traces"},
		{name: "traces endpoint", env: []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/x"}, wantEndpoint: "http://127.0.0.1:4318/x"},
		{name: "sdk disabled", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", "OTEL_SDK_DISABLED=true"}},
		{name: "bad endpoint", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318"}, wantErr: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"}},
		{name: "grpc protocol", env: []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}, wantErr: []string{"OTEL_EXPORTER_OTLP_PROTOCOL", `"grpc"`}},
		{name: "bad sampler arg", env: []string{"OTEL_TRACES_SAMPLER_ARG=2"}, wantErr: []string{"OTEL_TRACES_SAMPLER_ARG"}},
		{
			// Reported together with the other settings' problems.
			name:    "with another problem",
			env:     []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "GATEHOUSE_DRAIN_TIMEOUT=soon"},
			wantErr: []string{"cannot start", "OTEL_EXPORTER_OTLP_PROTOCOL", "GATEHOUSE_DRAIN_TIMEOUT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSettings(nil, tt.env, io.Discard)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("parseSettings() = nil error, want one naming %v", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("parseSettings() error = %q, want it to contain %s", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSettings() error = %v", err)
			}
			if s.tracing.Endpoint != tt.wantEndpoint {
				t.Errorf("tracing endpoint = %q, want %q", s.tracing.Endpoint, tt.wantEndpoint)
			}
		})
	}
}

// scrape returns the metrics exposition of m.
func scrape(t *testing.T, m *telemetry.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestMetricsOnPublish(t *testing.T) {
	compile := func(rev int64, c config.Config) *snapshot.Snapshot {
		t.Helper()
		s, err := snapshot.Compile(c, nil, rev)
		if err != nil {
			t.Fatalf("Compile() error = %v", err)
		}
		return s
	}
	svc := func(name string, targets ...string) config.Service {
		s := config.Service{Name: name}
		for _, u := range targets {
			s.Targets = append(s.Targets, config.Target{URL: u})
		}
		return s
	}
	m := telemetry.NewMetrics()
	publish := (&metricsFollower{m: m}).publish
	publish(compile(3, config.Config{
		Services: []config.Service{svc("a", "http://127.0.0.1:1", "http://127.0.0.1:2"), svc("b", "http://127.0.0.1:3")},
		Routes:   []config.Route{{Name: "ra", Service: "a"}, {Name: "rb", Service: "b", Paths: []string{"/b"}}},
	}))
	m.ObserveRequest("ra", "a", 200, 0)
	m.ObserveRequest("rb", "b", 200, 0)
	m.ReplicaState("a", "static:http://127.0.0.1:1", telemetry.ReplicaHealthy)
	m.ReplicaState("a", "static:http://127.0.0.1:2", telemetry.ReplicaEjected)
	if got := scrape(t, m); !strings.Contains(got, "gatehouse_config_revision 3") {
		t.Fatalf("after publishing revision 3, scrape lacks gatehouse_config_revision 3:\n%s", got)
	}

	// Revision 4 drops route rb, service b and one replica of a.
	publish(compile(4, config.Config{
		Services: []config.Service{svc("a", "http://127.0.0.1:1")},
		Routes:   []config.Route{{Name: "ra", Service: "a"}},
	}))
	got := scrape(t, m)
	for _, want := range []string{
		"gatehouse_config_revision 4",
		`gatehouse_requests_total{code_class="2xx",route="ra",service="a"} 1`,
		`gatehouse_replica_state{replica="static:http://127.0.0.1:1",service="a"} 0`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("scrape lacks %s:\n%s", want, got)
		}
	}
	for _, gone := range []string{`route="rb"`, `service="b"`, `replica="static:http://127.0.0.1:2"`} {
		if strings.Contains(got, gone) {
			t.Errorf("scrape still has a series with %s after it left the configuration:\n%s", gone, got)
		}
	}
}

func TestCountingStore(t *testing.T) {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "gatehouse.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := telemetry.NewMetrics()
	st := countingStore{Store: bolt, m: m}
	// Not found is an answer, not a failure.
	if _, err := st.Get(t.Context(), "missing"); err == nil {
		t.Fatal("Get(missing) error = nil")
	}
	if got := scrape(t, m); strings.Contains(got, "gatehouse_store_errors_total{") {
		t.Errorf("a not-found Get was counted as a store error:\n%s", got)
	}
	// A closed store fails every call.
	bolt.Close()
	if _, err := st.Incr(t.Context(), "n", 1, 0); err == nil {
		t.Fatal("Incr on a closed store: error = nil")
	}
	if _, err := st.Get(t.Context(), "n"); err == nil {
		t.Fatal("Get on a closed store: error = nil")
	}
	got := scrape(t, m)
	for _, want := range []string{`gatehouse_store_errors_total{op="incr"} 1`, `gatehouse_store_errors_total{op="get"} 1`} {
		if !strings.Contains(got, want) {
			t.Errorf("scrape lacks %s:\n%s", want, got)
		}
	}
}

func TestReplicaStateRefresh(t *testing.T) {
	snap, err := snapshot.Compile(config.Config{
		Services: []config.Service{{Name: "a", Targets: []config.Target{{URL: "http://127.0.0.1:1"}, {URL: "http://127.0.0.1:2"}, {URL: "http://127.0.0.1:3"}}}},
		Routes:   []config.Route{{Name: "ra", Service: "a"}},
	}, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	var src atomic.Pointer[snapshot.Snapshot]
	src.Store(snap)
	now := time.Now()
	breakers := breaker.New(proxy.BreakerConfig, nil)
	breakers.Sync(snap, now)
	g := breakers.For("a")
	if err := g.Eject("static:http://127.0.0.1:1", time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if err := g.SetHealthy("static:http://127.0.0.1:2", false); err != nil {
		t.Fatal(err)
	}
	m := telemetry.NewMetrics()
	(&metricsFollower{m: m, src: &src, breakers: breakers}).refresh(now)
	got := scrape(t, m)
	for _, want := range []string{
		`gatehouse_replica_state{replica="static:http://127.0.0.1:1",service="a"} 1`,
		`gatehouse_replica_state{replica="static:http://127.0.0.1:2",service="a"} 3`,
		`gatehouse_replica_state{replica="static:http://127.0.0.1:3",service="a"} 0`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("scrape lacks %s:\n%s", want, got)
		}
	}
}
