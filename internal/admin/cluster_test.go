package admin_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/cluster"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/store"
)

func TestClusterEndpoint(t *testing.T) {
	e := newEnv(t, admin.Config{})
	e.must(t, http.StatusNotImplemented, "GET", "/cluster", "")

	members, err := cluster.New(e.st, cluster.Member{ID: "gw1", Mode: "single-instance"},
		func() (int64, string) { return 9, "ready" }, cluster.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- members.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h, err := admin.New(admin.Deps{Config: e.cs, Registry: e.reg, Status: e.status, Cluster: members}, admin.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	var body struct {
		Members []cluster.Member `json:"members"`
		Error   string           `json:"error"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(body.Members) == 0 && time.Now().Before(deadline) {
		r := (&env{srv: srv}).must(t, http.StatusOK, "GET", "/cluster", "")
		r.decode(t, &body)
		time.Sleep(10 * time.Millisecond)
	}
	if len(body.Members) != 1 || body.Members[0].ID != "gw1" || body.Members[0].AppliedRevision != 9 || body.Error != "" {
		t.Fatalf("GET /cluster = %+v, want gw1 at revision 9", body)
	}

	// The store gone: this instance alone, with the reason, still 200.
	e.st.Close()
	r := (&env{srv: srv}).must(t, http.StatusOK, "GET", "/cluster", "")
	body.Members, body.Error = nil, ""
	r.decode(t, &body)
	if len(body.Members) != 1 || body.Members[0].ID != "gw1" || !strings.Contains(body.Error, "closed") {
		t.Fatalf("GET /cluster with the store closed = %+v, want gw1 alone and the error", body)
	}
}

// notReplicated is a ConfigStore whose writes reach the primary but not
// its replicas.
type notReplicated struct{ *storeConfig }

func (n notReplicated) Update(context.Context, func(*config.Config) error) (int64, error) {
	return 0, errors.Join(errors.New(`put "config/current" at revision 12`), store.ErrNotReplicated)
}

func TestUnreplicatedWriteAnswers503(t *testing.T) {
	e := newEnv(t, admin.Config{})
	h, err := admin.New(admin.Deps{Config: notReplicated{e.cs}, Registry: e.reg, Status: e.status}, admin.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r := (&env{srv: srv}).must(t, http.StatusServiceUnavailable, "PUT", "/config", "services: []\n")
	if !strings.Contains(r.body, "not confirmed by its replicas") || !strings.Contains(r.body, "revision 12") {
		t.Errorf("PUT /config unreplicated = %s, want the reason", r.body)
	}
}
