package proxy

import (
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

// TestSnapshotSwapMidFlight swaps the snapshot while a request routed on the
// old one is in flight: that request completes on its upstream, and the next
// one routes by the new snapshot.
func TestSnapshotSwapMidFlight(t *testing.T) {
	arrived := make(chan struct{})
	hold := newGate(t)
	slowA := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		hold.wait(r.Context())
		_, _ = io.WriteString(w, "from A")
	})
	b := echoUpstream(t, "b")
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", slowA.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	})

	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := g.client.Get(g.url + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- result{string(body), err}
	}()
	<-arrived

	g.swap(t, config.Config{
		Services: []config.Service{service("s", b.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	}, 2)
	if got := decodeSeen(t, g.get(t, "/next")).Name; got != "b" {
		t.Errorf("request after the swap answered by %q, want b", got)
	}
	hold.open()
	if r := <-done; r.err != nil || r.body != "from A" {
		t.Errorf("in-flight request = %q, %v; want %q from the old snapshot's upstream", r.body, r.err, "from A")
	}
	if _, ok := g.proxy.ReplicaStats("static:" + b.URL); !ok {
		t.Errorf("ReplicaStats(new replica) not found")
	}
}

// TestReplicaStateSurvivesSwap checks that round-robin position and replica
// counters carry over a snapshot swap that keeps the replicas, and that the
// state of a replica that left is dropped.
func TestReplicaStateSurvivesSwap(t *testing.T) {
	ups := []string{echoUpstream(t, "r0").URL, echoUpstream(t, "r1").URL, echoUpstream(t, "r2").URL}
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", ups...)},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	var got []string
	for range 2 {
		got = append(got, decodeSeen(t, g.get(t, "/")).Name)
	}
	// Same replicas, a new route: a different snapshot and revision.
	g.swap(t, config.Config{
		Services: []config.Service{service("s", ups...)},
		Routes:   []config.Route{route("s", "s", "/"), route("other", "s", "/other")},
	}, 2)
	for range 2 {
		got = append(got, decodeSeen(t, g.get(t, "/")).Name)
	}
	if want := []string{"r0", "r1", "r2", "r0"}; !slices.Equal(got, want) {
		t.Errorf("replicas across the swap = %v, want %v", got, want)
	}
	st, _ := g.proxy.ReplicaStats("static:" + ups[0])
	if st.Successes != 2 {
		t.Errorf("ReplicaStats(r0).Successes = %d, want 2 (counted on both snapshots)", st.Successes)
	}

	// r2 leaves; the rotation goes on over the two left.
	g.swap(t, config.Config{
		Services: []config.Service{service("s", ups[:2]...)},
		Routes:   []config.Route{route("s", "s", "/")},
	}, 3)
	_ = decodeSeen(t, g.get(t, "/"))
	if _, ok := g.proxy.ReplicaStats("static:" + ups[2]); ok {
		t.Errorf("ReplicaStats(removed replica) still present after the swap")
	}
	if st, ok := g.proxy.ReplicaStats("static:" + ups[0]); !ok || st.Successes < 2 {
		t.Errorf("ReplicaStats(r0) = %+v, %v after the swap; want its counts kept", st, ok)
	}
}
