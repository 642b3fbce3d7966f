package health

import (
	"testing"
	"time"
)

func TestStateObserve(t *testing.T) {
	chk := Check{HealthyThreshold: 2, UnhealthyThreshold: 3}
	tests := []struct {
		name     string
		outcomes string // s: success, f: failure
		want     string // per probe: - no change, U became unhealthy, H became healthy
	}{
		{"all good", "ssss", "----"},
		{"unhealthy after three failures", "ffff", "--U-"},
		{"failures not consecutive", "ffsffsff", "--------"},
		{"healthy after two successes", "fffss", "--U-H"},
		{"success streak broken", "fffsfss", "--U---H"},
		{"flapping", "fffssfff", "--U-H--U"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newState()
			got := make([]byte, 0, len(tt.outcomes))
			for _, o := range tt.outcomes {
				switch changed := st.observe(o == 's', chk); {
				case !changed:
					got = append(got, '-')
				case st.healthy:
					got = append(got, 'H')
				default:
					got = append(got, 'U')
				}
			}
			if string(got) != tt.want {
				t.Errorf("observe(%s) transitions = %s, want %s", tt.outcomes, got, tt.want)
			}
		})
	}
}

func TestCheckDefaults(t *testing.T) {
	got := Check{}.withDefaults()
	want := Check{Path: "/", Interval: 10 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 3}
	if !got.equal(want) {
		t.Errorf("Check{}.withDefaults() = %+v, want %+v", got, want)
	}
	for _, tt := range []struct {
		statuses []int
		status   int
		want     bool
	}{
		{nil, 200, true}, {nil, 204, true}, {nil, 302, true}, {nil, 399, true},
		{nil, 199, false}, {nil, 404, false}, {nil, 500, false},
		{[]int{204}, 204, true}, {[]int{204}, 200, false}, {[]int{200, 503}, 503, true},
	} {
		if got := (Check{ExpectedStatuses: tt.statuses}).expects(tt.status); got != tt.want {
			t.Errorf("Check{ExpectedStatuses: %v}.expects(%d) = %v, want %v", tt.statuses, tt.status, got, tt.want)
		}
	}
}

func TestCheckValidate(t *testing.T) {
	tests := []struct {
		name    string
		c       Check
		wantErr bool
	}{
		{"zero", Check{}, false},
		{"full", Check{Path: "/healthz?deep=1", Interval: time.Second, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1, ExpectedStatuses: []int{200}, Host: "api.internal:8080"}, false},
		{"relative path", Check{Path: "healthz"}, true},
		{"bad path", Check{Path: "/%zz"}, true},
		{"negative interval", Check{Interval: -1}, true},
		{"negative timeout", Check{Timeout: -1}, true},
		{"negative healthy threshold", Check{HealthyThreshold: -1}, true},
		{"negative unhealthy threshold", Check{UnhealthyThreshold: -1}, true},
		{"bad status", Check{ExpectedStatuses: []int{2000}}, true},
		{"bad host", Check{Host: "a b"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}
