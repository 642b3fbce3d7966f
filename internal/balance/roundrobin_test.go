package balance

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// sequence returns the IDs of n successive picks from svc, joined.
func sequence(p Picker, svc *snapshot.Service, h Health, n int) string {
	var out []string
	for range n {
		out = append(out, idOf(p.Pick(svc, h, 0, nil)))
	}
	return strings.Join(out, " ")
}

func TestRoundRobin(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		down  []string
		want  string
	}{
		{"rotation", []string{"a", "b", "c"}, nil, "a b c a b c a"},
		{"ignores weights", []string{"a:5", "b"}, nil, "a b a b"},
		{"next takes the share of an unavailable one", []string{"a", "b", "c"}, []string{"b"}, "a c c a c c a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service("s", tt.specs...)
			h := newHealth(ids(svc)...)
			for _, id := range tt.down {
				h.down[id] = true
			}
			if got := sequence(NewRoundRobin(), svc, h, len(strings.Fields(tt.want))); got != tt.want {
				t.Errorf("Pick() sequence = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRoundRobinAcrossSnapshots(t *testing.T) {
	p := NewRoundRobin()
	old := service("s", "a", "b", "c")
	h := newHealth("a", "b", "c", "d")
	p.Pick(old, h, 0, nil)
	// The counter is per service name: a new snapshot continues the turn.
	next := service("s", "a", "b", "c", "d")
	if got, want := sequence(p, next, h, 4), "b c d a"; got != want {
		t.Errorf("Pick() sequence on the new snapshot = %q, want %q", got, want)
	}
	// Services do not share a turn.
	if got := idOf(p.Pick(service("other", "x", "y"), newHealth("x", "y"), 0, nil)); got != "x" {
		t.Errorf("first Pick() on another service = %s, want x", got)
	}
	p.Prune(&snapshot.Snapshot{})
	if got := idOf(p.Pick(next, h, 0, nil)); got != "a" {
		t.Errorf("Pick() after Prune = %s, want a (turn restarted)", got)
	}
}

func TestRoundRobinRetryMovesOn(t *testing.T) {
	p := NewRoundRobin()
	svc := service("s", "a", "b", "c")
	h := newHealth(ids(svc)...)
	var tried []*snapshot.Replica
	for range 3 {
		r := p.Pick(svc, h, 0, tried)
		if r == nil || slices.Contains(tried, r) {
			t.Fatalf("Pick(tried %d) = %s, want an untried replica", len(tried), idOf(r))
		}
		tried = append(tried, r)
	}
	if r := p.Pick(svc, h, 0, tried); r != nil {
		t.Errorf("Pick(all tried) = %s, want nil", r.ID)
	}
}
