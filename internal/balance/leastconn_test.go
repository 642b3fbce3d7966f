package balance

import (
	"testing"
)

func TestLeastConnections(t *testing.T) {
	tests := []struct {
		name     string
		specs    []string
		inFlight map[string]int
		down     []string
		picks    int
		want     map[string]int // picks per replica
	}{
		{"least loaded", []string{"a", "b", "c"}, map[string]int{"a": 3, "b": 1, "c": 2}, nil, 10,
			map[string]int{"b": 10}},
		{"ties rotate", []string{"a", "b", "c"}, map[string]int{"a": 1, "b": 1, "c": 5}, nil, 10,
			map[string]int{"a": 5, "b": 5}},
		{"all idle share", []string{"a", "b", "c", "d"}, nil, nil, 8,
			map[string]int{"a": 2, "b": 2, "c": 2, "d": 2}},
		{"unavailable skipped however idle", []string{"a", "b", "c"}, map[string]int{"a": 4, "c": 9}, []string{"b"}, 5,
			map[string]int{"a": 5}},
		// 2 in flight at weight 3 is less loaded than 1 at weight 1.
		{"relative to weight", []string{"a:3", "b:1"}, map[string]int{"a": 2, "b": 1}, nil, 5,
			map[string]int{"a": 5}},
		{"fallback is least loaded too", []string{"a", "b", "c"}, map[string]int{"a": 5, "b": 1, "c": 3}, []string{"a", "b", "c"}, 5,
			map[string]int{"b": 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service("s", tt.specs...)
			h := newHealth(ids(svc)...)
			for id, n := range tt.inFlight {
				for range n {
					h.loads[id].Begin()
				}
			}
			for _, id := range tt.down {
				h.down[id] = true
			}
			p := NewLeastConnections()
			got := map[string]int{}
			for range tt.picks {
				got[idOf(p.Pick(svc, h, 0, nil))]++
			}
			if len(got) != len(tt.want) {
				t.Errorf("picks = %v, want %v", got, tt.want)
			}
			for id, want := range tt.want {
				if got[id] != want {
					t.Errorf("picks of %s = %d, want %d (all: %v)", id, got[id], want, got)
				}
			}
		})
	}
}

func TestLeastConnectionsFollowsLoad(t *testing.T) {
	svc := service("s", "a", "b", "c")
	h := newHealth(ids(svc)...)
	p := NewLeastConnections()
	// Requests that never end spread evenly: each pick raises the load of
	// the replica picked.
	got := map[string]int{}
	for range 30 {
		r := p.Pick(svc, h, 0, nil)
		h.Load(r).Begin()
		got[r.ID]++
	}
	for _, id := range []string{"a", "b", "c"} {
		if got[id] != 10 {
			t.Errorf("picks of %s = %d, want 10 (all: %v)", id, got[id], got)
		}
	}
}
