package balance

import (
	"testing"
	"time"
)

// setLoad makes l have n attempts in flight and, if ewma > 0, that latency.
func setLoad(l *Load, n int, ewma time.Duration) {
	if ewma > 0 {
		l.Begin()
		l.End(ewma)
	}
	for range n {
		l.Begin()
	}
}

func TestP2CEWMAShares(t *testing.T) {
	type load struct {
		inFlight int
		ewma     time.Duration
	}
	tests := []struct {
		name  string
		specs []string
		loads map[string]load
		min   map[string]float64 // lowest share of picks
		max   map[string]float64 // highest share of picks
	}{
		{"busy slow replica avoided", []string{"a", "b", "c"},
			map[string]load{"a": {10, 100 * time.Millisecond}, "b": {0, 10 * time.Millisecond}, "c": {0, 10 * time.Millisecond}},
			map[string]float64{"b": 0.35, "c": 0.35}, map[string]float64{"a": 0.15}},
		{"slow replica avoided", []string{"a", "b", "c"},
			map[string]load{"a": {1, 300 * time.Millisecond}, "b": {1, 10 * time.Millisecond}, "c": {1, 10 * time.Millisecond}},
			map[string]float64{"b": 0.35, "c": 0.35}, map[string]float64{"a": 0.15}},
		{"equal replicas share", []string{"a", "b", "c"}, nil,
			map[string]float64{"a": 0.28, "b": 0.28, "c": 0.28}, map[string]float64{"a": 0.38, "b": 0.38, "c": 0.38}},
		// The worst of n replicas is never picked; the best wins every draw
		// it is in: 2/n of them.
		{"best wins its draws", []string{"a", "b", "c", "d"},
			map[string]load{"a": {0, time.Millisecond}, "b": {1, time.Millisecond}, "c": {2, time.Millisecond}, "d": {3, time.Millisecond}},
			map[string]float64{"a": 0.45}, map[string]float64{"a": 0.55, "d": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service("s", tt.specs...)
			h := newHealth(ids(svc)...)
			for id, l := range tt.loads {
				setLoad(h.loads[id], l.inFlight, l.ewma)
			}
			p := NewP2CEWMA()
			const picks = 10_000
			got := map[string]int{}
			for range picks {
				got[idOf(p.Pick(svc, h, 0, nil))]++
			}
			for id, lo := range tt.min {
				if share := float64(got[id]) / picks; share < lo {
					t.Errorf("share of %s = %.3f, want at least %.2f (all: %v)", id, share, lo, got)
				}
			}
			for id, hi := range tt.max {
				if share := float64(got[id]) / picks; share > hi {
					t.Errorf("share of %s = %.3f, want at most %.2f (all: %v)", id, share, hi, got)
				}
			}
		})
	}
}

// TestP2CEWMAUnknownLatency checks that an unknown latency is neutral: with
// two replicas both are always drawn, and in-flight counts decide.
func TestP2CEWMAUnknownLatency(t *testing.T) {
	tests := []struct {
		name               string
		aInFlight, bFlight int
		aEWMA, bEWMA       time.Duration
		want               string
	}{
		{"new idle replica tried", 1, 0, 50 * time.Millisecond, 0, "b"},
		{"new busy replica not flooded", 0, 3, 50 * time.Millisecond, 0, "a"},
		{"both unknown", 2, 1, 0, 0, "b"},
		{"known latency decides", 0, 0, 5 * time.Millisecond, 50 * time.Millisecond, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service("s", "a", "b")
			h := newHealth("a", "b")
			setLoad(h.loads["a"], tt.aInFlight, tt.aEWMA)
			setLoad(h.loads["b"], tt.bFlight, tt.bEWMA)
			p := NewP2CEWMA()
			for range 50 {
				if got := idOf(p.Pick(svc, h, 0, nil)); got != tt.want {
					t.Fatalf("Pick() = %s, want %s", got, tt.want)
				}
			}
		})
	}
}

// TestP2CEWMALargeService checks that beyond the stack sample every
// replica can still be drawn.
func TestP2CEWMALargeService(t *testing.T) {
	var specs []string
	for i := range 3 * sampleSize {
		specs = append(specs, string(rune('A'+i/26))+string(rune('a'+i%26)))
	}
	svc := service("s", specs...)
	h := newHealth(ids(svc)...)
	p := NewP2CEWMA()
	got := map[string]int{}
	for range 100 * len(specs) {
		got[idOf(p.Pick(svc, h, 0, nil))]++
	}
	for _, id := range specs {
		if got[id] < 30 {
			t.Errorf("picks of %s = %d of %d, want about 100", id, got[id], 100*len(specs))
		}
	}
}
