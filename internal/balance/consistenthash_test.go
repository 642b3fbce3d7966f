package balance

import (
	"fmt"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// owners returns the replica each of n keys goes to on svc.
func owners(p Picker, svc *snapshot.Service, h Health, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = idOf(p.Pick(svc, h, HashKey(fmt.Sprint("client-", i)), nil))
	}
	return out
}

func replicaNames(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprint("replica-", i))
	}
	return out
}

func TestConsistentHashSticky(t *testing.T) {
	svc := service("s", replicaNames(5)...)
	h := newHealth(ids(svc)...)
	a, b := NewConsistentHash(), NewConsistentHash()
	first := owners(a, svc, h, 1000)
	// Same key, same replica: again, on another picker (another gateway
	// instance) and on another *Service built from the same replicas.
	for name, got := range map[string][]string{
		"again":           owners(a, svc, h, 1000),
		"another picker":  owners(b, svc, h, 1000),
		"another Service": owners(a, service("s", replicaNames(5)...), h, 1000),
	} {
		for i := range got {
			if got[i] != first[i] {
				t.Errorf("%s: key %d went to %s, want %s", name, i, got[i], first[i])
			}
		}
	}
}

// TestConsistentHashGolden pins the ring so that gateway instances of
// different versions, mixed during a rollout, agree on where keys go.
func TestConsistentHashGolden(t *testing.T) {
	svc := service("s", "a", "b", "c")
	h := newHealth("a", "b", "c")
	tests := []struct{ key, want string }{
		{"client-1", "a"},
		{"client-2", "b"},
		{"client-3", "a"},
		{"10.0.0.7", "a"},
		{"10.0.0.8", "a"},
		{"user-42", "a"},
		{"session-abc", "a"},
		{"", "c"},
		{"x", "b"},
		{"y", "a"},
	}
	p := NewConsistentHash()
	for _, tt := range tests {
		if got := idOf(p.Pick(svc, h, HashKey(tt.key), nil)); got != tt.want {
			t.Errorf("Pick(HashKey(%q)) = %s, want %s", tt.key, got, tt.want)
		}
	}
}

func TestConsistentHashSpread(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		want  map[string]float64 // share of keys, ± 0.07
	}{
		{"even", []string{"a", "b", "c", "d"}, map[string]float64{"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}},
		{"weighted", []string{"a:3", "b:1"}, map[string]float64{"a": 0.75, "b": 0.25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service("s", tt.specs...)
			const keys = 10_000
			got := map[string]int{}
			for _, id := range owners(NewConsistentHash(), svc, newHealth(ids(svc)...), keys) {
				got[id]++
			}
			for id, want := range tt.want {
				if share := float64(got[id]) / keys; share < want-0.07 || share > want+0.07 {
					t.Errorf("share of %s = %.3f, want %.2f ± 0.07 (all: %v)", id, share, want, got)
				}
			}
		})
	}
}

func TestConsistentHashMinimalRemapping(t *testing.T) {
	const keys = 10_000
	ten := replicaNames(10)
	nine := append(append([]string{}, ten[:3]...), ten[4:]...) // replica-3 removed
	eleven := append(append([]string{}, ten...), "replica-new")
	h := newHealth(eleven...)
	tests := []struct {
		name          string
		before, after []string
		// movedFrom/movedTo: the only replica keys may leave / go to; ""
		// means any.
		movedFrom, movedTo string
	}{
		{"remove one of ten", ten, nine, "replica-3", ""},
		{"add one to ten", ten, eleven, "", "replica-new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewConsistentHash()
			before := owners(p, service("s", tt.before...), h, keys)
			after := owners(p, service("s", tt.after...), h, keys)
			moved := 0
			for i := range before {
				if before[i] == after[i] {
					continue
				}
				moved++
				if tt.movedFrom != "" && before[i] != tt.movedFrom {
					t.Fatalf("key %d moved from %s to %s, want only keys of %s to move", i, before[i], after[i], tt.movedFrom)
				}
				if tt.movedTo != "" && after[i] != tt.movedTo {
					t.Fatalf("key %d moved from %s to %s, want keys to move only to %s", i, before[i], after[i], tt.movedTo)
				}
			}
			if share := float64(moved) / keys; share > 0.15 || moved == 0 {
				t.Errorf("moved %d of %d keys (%.3f), want some and at most 15%%", moved, keys, share)
			}
		})
	}
}

// TestConsistentHashSecondChoice checks that when a key's replica is
// unavailable or tried, the key goes where it would go if that replica were
// removed: the next distinct replica clockwise, the same on every instance.
func TestConsistentHashSecondChoice(t *testing.T) {
	const keys = 2_000
	all := replicaNames(6)
	without := append(append([]string{}, all[:2]...), all[3:]...) // replica-2 removed
	want := owners(NewConsistentHash(), service("s", without...), newHealth(without...), keys)

	svc := service("s", all...)
	down := newHealth(all...)
	down.down["replica-2"] = true
	gotDown := owners(NewConsistentHash(), svc, down, keys)

	p, up := NewConsistentHash(), newHealth(all...)
	tried := []*snapshot.Replica{byID(svc, "replica-2")}
	for i := range keys {
		if gotDown[i] != want[i] {
			t.Fatalf("key %d with replica-2 unavailable went to %s, want %s", i, gotDown[i], want[i])
		}
		if got := idOf(p.Pick(svc, up, HashKey(fmt.Sprint("client-", i)), tried)); got != want[i] {
			t.Fatalf("key %d with replica-2 tried went to %s, want %s", i, got, want[i])
		}
	}
}

func TestConsistentHashRingSize(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		want  int
	}{
		{"160 per weight", []string{"a:1", "b:2"}, 480},
		// 200 × 160 × 10 points exceeds the cap: scaled down to fit.
		{"capped", []string{"a:10", "b:10", "c:10", "d:10", "e:10", "f:10", "g:10", "h:10", "i:10", "j:10",
			"k:200", "l:200", "m:200", "n:200", "o:200", "p:200", "q:200", "r:200", "s:200", "t:200"}, maxRingPoints},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := buildRing(service("s", tt.specs...))
			if got := len(rg.points); got > tt.want || got < tt.want-len(tt.specs) {
				t.Errorf("ring has %d points, want %d (less at most one per replica for rounding)", got, tt.want)
			}
			for i := 1; i < len(rg.points); i++ {
				if rg.points[i-1] > rg.points[i] {
					t.Fatalf("ring points not sorted at %d", i)
				}
			}
		})
	}
}
