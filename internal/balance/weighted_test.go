package balance

import (
	"strings"
	"testing"
)

func TestWeightedRoundRobinSequence(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		down  []string
		want  string
	}{
		// nginx's smooth weighted round robin, not a a a a a b c.
		{"smooth 5 1 1", []string{"a:5", "b:1", "c:1"}, nil, "a a b a c a a a a b a c a a"},
		{"1 3", []string{"a:1", "b:3"}, nil, "b a b b b a b b"},
		{"equal weights rotate", []string{"a:4", "b:4", "c:4"}, nil, "a b c a b c"},
		{"weight 0 counts as 1", []string{"a:0", "b:1"}, nil, "a b a b"},
		{"unavailable is walked past", []string{"a:5", "b:1", "c:1"}, []string{"a"}, "b b b c c b b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service("s", tt.specs...)
			h := newHealth(ids(svc)...)
			for _, id := range tt.down {
				h.down[id] = true
			}
			if got := sequence(NewWeightedRoundRobin(), svc, h, len(strings.Fields(tt.want))); got != tt.want {
				t.Errorf("Pick() sequence = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWeightedRoundRobinShares(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		picks int
		want  map[string]int
	}{
		{"1:3", []string{"a:1", "b:3"}, 10_000, map[string]int{"a": 2500, "b": 7500}},
		{"5:1:1", []string{"a:5", "b:1", "c:1"}, 7_000, map[string]int{"a": 5000, "b": 1000, "c": 1000}},
		{"gcd reduced", []string{"a:200", "b:300"}, 1_000, map[string]int{"a": 400, "b": 600}},
		// 30,001 exceeds the schedule cap: scaled to 9,999 + 3 over one cycle.
		{"scaled down", []string{"a:30000", "b:1"}, 10_000, map[string]int{"a": 9_999, "b": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service("s", tt.specs...)
			h := newHealth(ids(svc)...)
			p := NewWeightedRoundRobin()
			got := map[string]int{}
			for range tt.picks {
				got[idOf(p.Pick(svc, h, 0, nil))]++
			}
			for id, want := range tt.want {
				if got[id] != want {
					t.Errorf("picks of %s = %d, want %d (all: %v)", id, got[id], want, got)
				}
			}
		})
	}
}

func TestWeightedRoundRobinScheduleLength(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		want  int
	}{
		{"sum", []string{"a:5", "b:1", "c:1"}, 7},
		{"divided by gcd", []string{"a:2", "b:4"}, 3},
		{"divided by gcd before the cap", []string{"a:1000000", "b:3000000"}, 4},
		// 2,500.0006 and 7,499.99 after scaling, rounded down.
		{"capped", []string{"a:1000000", "b:2999999"}, 9_999},
		// 9,999.8 rounded down, and the other two kept at 1: the cap can
		// be exceeded by at most the number of replicas.
		{"capped, every replica kept", []string{"a:100000", "b:1", "c:1"}, 10_001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service("s", tt.specs...)
			s := buildSchedule(svc)
			if len(s.seq) != tt.want {
				t.Errorf("schedule length = %d, want %d", len(s.seq), tt.want)
			}
			seen := map[int32]bool{}
			for _, i := range s.seq {
				seen[i] = true
			}
			if len(seen) != len(svc.Replicas) {
				t.Errorf("schedule has %d distinct replicas, want %d", len(seen), len(svc.Replicas))
			}
		})
	}
}

func TestWeightedRoundRobinNewSnapshot(t *testing.T) {
	p := NewWeightedRoundRobin()
	h := newHealth("a", "b")
	old := service("s", "a:1", "b:1")
	for range 3 {
		p.Pick(old, h, 0, nil)
	}
	// A new *Service for the same name gets its own schedule, whatever the
	// position the counter has reached: 3:1 over any whole cycle.
	next := service("s", "a:3", "b:1")
	got := map[string]int{}
	for range 400 {
		got[idOf(p.Pick(next, h, 0, nil))]++
	}
	if got["a"] != 300 || got["b"] != 100 {
		t.Errorf("picks on the new snapshot = %v, want a:300 b:100", got)
	}
	// Requests still on the old snapshot keep the old schedule.
	got = map[string]int{}
	for range 100 {
		got[idOf(p.Pick(old, h, 0, nil))]++
	}
	if got["a"] != 50 || got["b"] != 50 {
		t.Errorf("picks on the old snapshot = %v, want a:50 b:50", got)
	}
}

// TestWeightedRoundRobinLowWeightFound checks that a replica appearing once
// in a long cycle is still found when it is the only available one.
func TestWeightedRoundRobinLowWeightFound(t *testing.T) {
	svc := service("s", "a:5000", "b:4999", "c:1")
	h := newHealth(ids(svc)...)
	h.down["a"], h.down["b"] = true, true
	p := NewWeightedRoundRobin()
	for i := range 100 {
		if got := idOf(p.Pick(svc, h, 0, nil)); got != "c" {
			t.Fatalf("Pick() #%d = %s, want c", i, got)
		}
	}
}
