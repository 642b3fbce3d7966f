package balance

import (
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// TestServiceStateGenerations checks that requests on the old and on the
// new snapshot, picking in turn after a swap, do not rebuild every time.
func TestServiceStateGenerations(t *testing.T) {
	builds := 0
	build := func(*snapshot.Service) *int {
		builds++
		v := builds
		return &v
	}
	var s services[int]
	st := s.state("s")
	old, next, third := service("s", "a"), service("s", "a"), service("s", "a")
	tests := []struct {
		svc        *snapshot.Service
		wantValue  int
		wantBuilds int
	}{
		{old, 1, 1},
		{old, 1, 1},
		{next, 2, 2},
		{old, 1, 2},
		{next, 2, 2},
		{third, 3, 3},
		{next, 2, 3},
		{old, 4, 4}, // two generations kept: the oldest was dropped
	}
	for i, tt := range tests {
		got := *st.value(tt.svc, build)
		if got != tt.wantValue || builds != tt.wantBuilds {
			t.Errorf("step %d: value() = %d after %d builds, want %d after %d", i, got, builds, tt.wantValue, tt.wantBuilds)
		}
	}
	if s.state("s") != st {
		t.Errorf("state() returned a new state for a known name")
	}
}
