package proxy

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// statusClientClosed is the status recorded (never sent) when the client
// went away before the response was complete, as nginx logs it.
const statusClientClosed = 499

// errUpstreamTimeout is the cancellation cause when a route's timeout
// expires before the upstream's response headers arrive.
var errUpstreamTimeout = errors.New("upstream timeout")

// writeError answers with a small JSON body {"error": msg, "status": status}.
func writeError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}{msg, status})
	body = append(body, '\n')
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
