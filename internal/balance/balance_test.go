package balance

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// testHealth is a hand-written Health. Health is implemented by the data
// plane (breakers, ejection cap, panic mode), which this package must not
// import; a map of flags and loads is all a picker can observe of it. Its
// maps are filled before any Pick and only read afterwards, so it is safe
// for concurrent Picks.
type testHealth struct {
	down  map[string]bool
	loads map[string]*Load
}

func newHealth(ids ...string) *testHealth {
	h := &testHealth{down: map[string]bool{}, loads: map[string]*Load{}}
	for _, id := range ids {
		h.loads[id] = new(Load)
	}
	return h
}

func (h *testHealth) Load(r *snapshot.Replica) *Load {
	l, ok := h.loads[r.ID]
	if !ok {
		panic("testHealth: no load for replica " + r.ID)
	}
	return l
}

func (h *testHealth) Available(r *snapshot.Replica) bool { return !h.down[r.ID] }

// service builds a service of replicas given as "id" or "id:weight".
func service(name string, specs ...string) *snapshot.Service {
	svc := &snapshot.Service{Name: name}
	for _, s := range specs {
		id, w := s, 1
		if i := strings.IndexByte(s, ':'); i >= 0 {
			id = s[:i]
			fmt.Sscan(s[i+1:], &w)
		}
		svc.Replicas = append(svc.Replicas, &snapshot.Replica{
			ID:     id,
			URL:    &url.URL{Scheme: "http", Host: id + ".test:80"},
			Weight: w,
		})
	}
	return svc
}

func ids(svc *snapshot.Service) []string {
	var out []string
	for _, r := range svc.Replicas {
		out = append(out, r.ID)
	}
	return out
}

func byID(svc *snapshot.Service, id string) *snapshot.Replica {
	for _, r := range svc.Replicas {
		if r.ID == id {
			return r
		}
	}
	panic("no replica " + id)
}

func idOf(r *snapshot.Replica) string {
	if r == nil {
		return "<nil>"
	}
	return r.ID
}

// policies returns a fresh picker of every policy.
func policies(t testing.TB) map[string]Picker {
	t.Helper()
	out := map[string]Picker{}
	for _, name := range PolicyNames() {
		p, err := New(name)
		if err != nil {
			t.Fatalf("New(%q) error = %v", name, err)
		}
		out[name] = p
	}
	return out
}

func TestNew(t *testing.T) {
	tests := []struct {
		policy string
		want   string // type name; "" for an error
	}{
		{"", "*balance.RoundRobin"},
		{"round_robin", "*balance.RoundRobin"},
		{"weighted_round_robin", "*balance.WeightedRoundRobin"},
		{"least_connections", "*balance.LeastConnections"},
		{"p2c_ewma", "*balance.P2CEWMA"},
		{"consistent_hash", "*balance.ConsistentHash"},
		{"random", ""},
		{"Round_Robin", ""},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			p, err := New(tt.policy)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("New(%q) = %T, want an error", tt.policy, p)
				}
				for _, name := range PolicyNames() {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("New(%q) error = %q, want it to list %q", tt.policy, err, name)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q) error = %v", tt.policy, err)
			}
			if got := fmt.Sprintf("%T", p); got != tt.want {
				t.Errorf("New(%q) = %s, want %s", tt.policy, got, tt.want)
			}
		})
	}
}

func TestPolicyNamesIsACopy(t *testing.T) {
	a := PolicyNames()
	a[0] = "changed"
	if got := PolicyNames()[0]; got != PolicyRoundRobin {
		t.Errorf("PolicyNames()[0] = %q after changing a copy, want %q", got, PolicyRoundRobin)
	}
}

// TestPickRules checks the rules every policy shares: unavailable and tried
// replicas are skipped, untried unavailable ones are the last resort, nil
// means nothing is left.
func TestPickRules(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		down  []string
		tried []string // IDs; "old:x" is a different *Replica with ID x
		want  []string // acceptable results; nil: Pick must return nil
	}{
		{name: "all available", specs: []string{"a", "b", "c"}, want: []string{"a", "b", "c"}},
		{name: "skips unavailable", specs: []string{"a", "b", "c"}, down: []string{"b", "c"}, want: []string{"a"}},
		{name: "skips tried", specs: []string{"a", "b", "c"}, tried: []string{"a", "b"}, want: []string{"c"}},
		{name: "tried from an older snapshot", specs: []string{"a", "b", "c"}, tried: []string{"old:a", "old:c"}, want: []string{"b"}},
		{name: "available untried before unavailable", specs: []string{"a", "b", "c"}, down: []string{"a"}, tried: []string{"b"}, want: []string{"c"}},
		{name: "falls back to untried unavailable", specs: []string{"a", "b", "c"}, down: []string{"a", "b", "c"}, tried: []string{"a"}, want: []string{"b", "c"}},
		{name: "falls back when only tried are available", specs: []string{"a", "b", "c"}, down: []string{"c"}, tried: []string{"a", "b"}, want: []string{"c"}},
		{name: "single replica down", specs: []string{"a"}, down: []string{"a"}, want: []string{"a"}},
		{name: "weighted skips unavailable", specs: []string{"a:5", "b:1", "c:1"}, down: []string{"a", "c"}, want: []string{"b"}},
		{name: "all tried", specs: []string{"a", "b", "c"}, tried: []string{"a", "b", "c"}},
		{name: "all tried and down", specs: []string{"a", "b"}, down: []string{"a", "b"}, tried: []string{"b", "a"}},
		{name: "no replicas"},
	}
	for _, tt := range tests {
		for name, p := range policies(t) {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				svc := service("s", tt.specs...)
				h := newHealth(ids(svc)...)
				for _, id := range tt.down {
					h.down[id] = true
				}
				var tried []*snapshot.Replica
				for _, id := range tt.tried {
					if old, ok := strings.CutPrefix(id, "old:"); ok {
						tried = append(tried, &snapshot.Replica{ID: old})
						continue
					}
					tried = append(tried, byID(svc, id))
				}
				// Many picks with varied keys: every start of a rotation
				// and many points of a ring.
				for i := range 200 {
					got := p.Pick(svc, h, HashKey(fmt.Sprint("key-", i)), tried)
					if tt.want == nil {
						if got != nil {
							t.Fatalf("Pick() = %s, want nil", got.ID)
						}
						continue
					}
					if got == nil || !slices.Contains(tt.want, got.ID) {
						t.Fatalf("Pick() = %s, want one of %v", idOf(got), tt.want)
					}
				}
			})
		}
	}
	for name, p := range policies(t) {
		if got := p.Pick(nil, newHealth(), 1, nil); got != nil {
			t.Errorf("%s: Pick(nil service) = %s, want nil", name, got.ID)
		}
	}
}

// TestPickDoesNotAllocate holds every policy to its allocation budget on
// the hot path: none once the service has been seen, even when skipping.
func TestPickDoesNotAllocate(t *testing.T) {
	svc := service("s", "r0", "r1:2", "r2", "r3:3", "r4", "r5", "r6", "r7", "r8", "r9")
	h := newHealth(ids(svc)...)
	h.down["r3"] = true
	h.loads["r1"].Begin()
	h.loads["r1"].End(3e6)
	tried := []*snapshot.Replica{svc.Replicas[0]}
	for name, p := range policies(t) {
		t.Run(name, func(t *testing.T) {
			var key uint64
			p.Pick(svc, h, key, tried) // first sight of svc builds its state
			allocs := testing.AllocsPerRun(1000, func() {
				key++
				if p.Pick(svc, h, key, tried) == nil {
					t.Fatal("Pick() = nil, want a replica")
				}
			})
			if allocs != 0 {
				t.Errorf("Pick() allocates %v times per call, want 0", allocs)
			}
		})
	}
}

// TestConcurrentPick picks from many goroutines while new snapshots replace
// the service and stale ones are pruned; -race checks the state, and each
// result must be a replica of the service it was picked from.
func TestConcurrentPick(t *testing.T) {
	all := []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"}
	h := newHealth(all...)
	h.down["r5"] = true
	generation := func(g int) *snapshot.Service {
		var specs []string
		for i, id := range all {
			if (i+g)%3 != 0 {
				specs = append(specs, fmt.Sprintf("%s:%d", id, 1+(i+g)%4))
			}
		}
		return service("s", specs...)
	}
	for name, p := range policies(t) {
		t.Run(name, func(t *testing.T) {
			var cur atomic.Pointer[snapshot.Service]
			cur.Store(generation(0))
			var stop atomic.Bool
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for w := range 8 {
				wg.Go(func() {
					for i := 0; !stop.Load() || i < 500; i++ {
						svc := cur.Load()
						var tried []*snapshot.Replica
						if i%3 == 0 {
							tried = svc.Replicas[:1]
						}
						r := p.Pick(svc, h, uint64(w*1_000_003+i), tried)
						if r == nil || !slices.Contains(svc.Replicas, r) || slices.Contains(tried, r) {
							errs <- fmt.Errorf("Pick() = %s, want an untried replica of %v", idOf(r), ids(svc))
							return
						}
						l := h.Load(r)
						l.Begin()
						l.End(1000)
					}
				})
			}
			for g := 1; g <= 100; g++ {
				svc := generation(g)
				cur.Store(svc)
				if pr, ok := p.(Pruner); ok {
					pr.Prune(&snapshot.Snapshot{Services: map[string]*snapshot.Service{"s": svc}})
					if g%10 == 0 {
						pr.Prune(&snapshot.Snapshot{})
					}
				}
			}
			stop.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			for _, id := range all {
				if got := h.loads[id].InFlight(); got != 0 {
					t.Errorf("%s InFlight() = %d after all ended, want 0", id, got)
				}
			}
		})
	}
}

func TestPrune(t *testing.T) {
	x, y := service("x", "a", "b"), service("y", "a", "b")
	h := newHealth("a", "b")
	type pruner interface {
		Picker
		Pruner
	}
	tests := []struct {
		name    string
		picker  pruner
		entries func(pruner) *sync.Map
	}{
		{"round_robin", NewRoundRobin(), func(p pruner) *sync.Map { return &p.(*RoundRobin).services.m }},
		{"weighted_round_robin", NewWeightedRoundRobin(), func(p pruner) *sync.Map { return &p.(*WeightedRoundRobin).services.m }},
		{"consistent_hash", NewConsistentHash(), func(p pruner) *sync.Map { return &p.(*ConsistentHash).services.m }},
	}
	names := func(m *sync.Map) []string {
		var out []string
		m.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
		slices.Sort(out)
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.picker
			p.Pick(x, h, 1, nil)
			p.Pick(y, h, 1, nil)
			if got, want := names(tt.entries(p)), []string{"x", "y"}; !slices.Equal(got, want) {
				t.Fatalf("state after picks = %v, want %v", got, want)
			}
			p.Prune(&snapshot.Snapshot{Services: map[string]*snapshot.Service{"y": y}})
			if got, want := names(tt.entries(p)), []string{"y"}; !slices.Equal(got, want) {
				t.Errorf("state after Prune(keep y) = %v, want %v", got, want)
			}
			p.Prune(nil)
			if got := names(tt.entries(p)); len(got) != 0 {
				t.Errorf("state after Prune(nil) = %v, want none", got)
			}
		})
	}
}

// benchHealth is a Health found by a linear scan of replica pointers:
// a few nanoseconds for 10 replicas, far cheaper than testHealth's string
// maps, so that benchmarks measure the pickers rather than the fake.
type benchHealth struct {
	reps  []*snapshot.Replica
	state []benchReplica
}

type benchReplica struct {
	load Load
	down bool
}

func newBenchHealth(svc *snapshot.Service) *benchHealth {
	h := &benchHealth{reps: svc.Replicas, state: make([]benchReplica, len(svc.Replicas))}
	for i := range h.state {
		l := &h.state[i].load
		for range i % 3 {
			l.Begin()
		}
		l.Begin()
		l.End(time.Duration(1+i%4) * time.Millisecond)
	}
	return h
}

func (h *benchHealth) find(r *snapshot.Replica) *benchReplica {
	for i, x := range h.reps {
		if x == r {
			return &h.state[i]
		}
	}
	panic("benchHealth: unknown replica " + r.ID)
}

func (h *benchHealth) Load(r *snapshot.Replica) *Load     { return &h.find(r).load }
func (h *benchHealth) Available(r *snapshot.Replica) bool { return !h.find(r).down }

func BenchmarkPick(b *testing.B) {
	svc := service("s", "r0", "r1:2", "r2", "r3:3", "r4", "r5", "r6", "r7", "r8", "r9")
	h := newBenchHealth(svc)
	for _, name := range PolicyNames() {
		p, _ := New(name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var key uint64
			for b.Loop() {
				key++
				p.Pick(svc, h, key, nil)
			}
		})
	}
	tried := svc.Replicas[:1]
	for _, name := range PolicyNames() {
		p, _ := New(name)
		b.Run(name+"/retry", func(b *testing.B) {
			b.ReportAllocs()
			var key uint64
			for b.Loop() {
				key++
				p.Pick(svc, h, key, tried)
			}
		})
	}
}

func BenchmarkPickParallel(b *testing.B) {
	svc := service("s", "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9")
	h := newBenchHealth(svc)
	for _, name := range PolicyNames() {
		p, _ := New(name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var key uint64
				for pb.Next() {
					key++
					p.Pick(svc, h, key, nil)
				}
			})
		})
	}
}
