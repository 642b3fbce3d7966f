package apikey

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string // "" for valid
	}{
		{name: "zero", spec: Spec{}},
		{name: "full", spec: Spec{
			Name:            "mobile app",
			ExpiresAt:       t0.AddDate(1, 0, 0),
			AllowedRoutes:   []string{"orders"},
			AllowedServices: []string{"orders-svc"},
			RateLimit:       &Limit{Requests: 100, Per: config.Duration(time.Minute)},
			Quota:           &Quota{Requests: 10000, Period: PeriodMonth},
			Metadata:        map[string]string{"team": "mobile"},
		}},
		{name: "quota period", spec: Spec{Quota: &Quota{Requests: 5, Period: "week"}},
			want: `quota.period: "week" is not "day" or "month"`},
		{name: "quota requests", spec: Spec{Quota: &Quota{Requests: 0, Period: PeriodDay}},
			want: `quota.requests: must be positive, got 0; leave quota out for no quota`},
		{name: "rate limit", spec: Spec{RateLimit: &Limit{Requests: -1, Burst: -2}},
			want: "rate_limit.requests: must be positive, got -1; leave rate_limit out for no per-key limit\n" +
				`rate_limit.per: must be positive, got 0s; use e.g. "1s" or "1m"` + "\n" +
				"rate_limit.burst: must not be negative, got -2; 0 means the same as requests"},
		{name: "routes", spec: Spec{AllowedRoutes: []string{"a", "", "a"}},
			want: "allowed_routes[1]: is empty; give a route name or remove the entry\n" +
				`allowed_routes[2]: "a" is listed twice`},
		{name: "too many services", spec: Spec{AllowedServices: make([]string, MaxAllowed+1)},
			want: "allowed_services: lists 101 services; at most 100 are allowed"},
		{name: "name control character", spec: Spec{Name: "a\x00b"},
			want: "name: contains a control character; use printable text"},
		{name: "name too long", spec: Spec{Name: strings.Repeat("n", MaxNameLen+1)},
			want: "name: is 201 bytes long; at most 200 are allowed"},
		{name: "expiry out of range", spec: Spec{ExpiresAt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)},
			want: "expires_at: 3000-01-01T00:00:00Z is outside the years 2000 to 2200; leave it out for a key that never expires"},
		{name: "metadata", spec: Spec{Metadata: map[string]string{"": "x", "big": strings.Repeat("v", MaxMetadataValueLen+1)}},
			want: "metadata: has an empty key; every entry needs a name\nmetadata.big: is 1025 bytes long; at most 1024 are allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && !isValidation(err):
				t.Errorf("Validate() = %v, want a ValidationError", err)
			case tt.want != "" && err.Error() != tt.want:
				t.Errorf("Validate() =\n%v\nwant\n%s", err, tt.want)
			}
		})
	}
}

func TestSpecJSON(t *testing.T) {
	var s Spec
	in := `{"name":"ci","rate_limit":{"requests":5,"per":"1m"},"quota":{"requests":100,"period":"day"},"allowed_routes":["r"]}`
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatalf("Unmarshal() error = %v", err)
	}
	if s.RateLimit == nil || s.RateLimit.Per.Std() != time.Minute || s.Quota.Period != PeriodDay || s.Validate() != nil {
		t.Errorf("Unmarshal(%s) = %+v (limit %+v), want a valid spec limited to 5 per minute", in, s, s.RateLimit)
	}
	var secs Limit
	if err := json.Unmarshal([]byte(`{"requests":1,"per":30}`), &secs); err != nil || secs.Per.Std() != 30*time.Second {
		t.Errorf("Unmarshal(per as seconds) = %v, %v; want 30s", secs.Per, err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "zero", cfg: Config{}},
		{name: "secret", cfg: Config{Secret: make([]byte, MinSecretLen)}},
		{name: "short secret", cfg: Config{Secret: make([]byte, MinSecretLen-1)}, wantErr: true},
		{name: "negative retry", cfg: Config{RetryMin: -1}, wantErr: true},
		{name: "min above default max", cfg: Config{RetryMin: time.Hour}, wantErr: true},
		{name: "min below max", cfg: Config{RetryMin: time.Second, RetryMax: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %t", err, tt.wantErr)
			}
			if _, nerr := NewIndex(nil, tt.cfg, nil); fmt.Sprint(nerr) != fmt.Sprint(err) {
				t.Errorf("NewIndex() error = %v, want %v", nerr, err)
			}
		})
	}
}
