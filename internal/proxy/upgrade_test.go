package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

func TestWebSocketEcho(t *testing.T) {
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	})
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("ws", up.URL)},
		Routes:   []config.Route{route("ws", "ws", "/ws")},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+g.addr+"/ws", nil)
	if err != nil {
		t.Fatalf("websocket.Dial() through the proxy: %v", err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("handshake status = %d, want 101", resp.StatusCode)
	}
	st, _ := g.proxy.ReplicaStats("static:" + up.URL)
	if st.InFlight != 1 {
		t.Errorf("InFlight during the WebSocket = %d, want 1", st.InFlight)
	}
	for _, msg := range []string{"hello", "world", strings.Repeat("big", 6000)} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("Write(%.10q): %v", msg, err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %.10q: %v", msg, err)
		}
		if typ != websocket.MessageText || string(got) != "echo: "+msg {
			t.Errorf("Read() = %v %.20q, want text %.20q", typ, got, "echo: "+msg)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("Close(): %v", err)
	}
	eventually(t, "the spliced connection to end", func() bool {
		st, _ := g.proxy.ReplicaStats("static:" + up.URL)
		return st.InFlight == 0
	})
}

func TestNonWebSocketUpgradeStripped(t *testing.T) {
	up := echoUpstream(t, "up")
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	tests := []struct {
		name    string
		upgrade string
	}{
		{name: "h2c", upgrade: "h2c"},
		{name: "tls", upgrade: "TLS/1.2"},
		{name: "unknown", upgrade: "foo/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := g.get(t, "/", "Connection", "Upgrade", "Upgrade", tt.upgrade)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200 (a plain request)", resp.StatusCode)
			}
			s := decodeSeen(t, resp)
			if v, ok := s.Header["Upgrade"]; ok {
				t.Errorf("upstream got Upgrade = %q, want none", v)
			}
			if v, ok := s.Header["Connection"]; ok {
				t.Errorf("upstream got Connection = %q, want none", v)
			}
		})
	}
}
