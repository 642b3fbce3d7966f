package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"syscall"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// errorBody is every error response.
type errorBody struct {
	Error   string   `json:"error"`
	Details []detail `json:"details,omitempty"`
}

// detail is one problem with one field.
type detail struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// apiError is an error with the status and body to answer it with.
type apiError struct {
	status int
	body   errorBody
}

func (e *apiError) Error() string { return e.body.Error }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, body: errorBody{Error: fmt.Sprintf(format, args...)}}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, body: errorBody{Error: fmt.Sprintf(format, args...)}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own response types are marshalled; failing is a bug.
		panic(fmt.Sprintf("admin: encode response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError answers err with the status its kind calls for.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		api     *apiError
		cfgErrs config.Errors
		verr    *registry.ValidationError
		tooBig  *http.MaxBytesError
	)
	switch {
	case errors.As(err, &api):
		writeJSON(w, api.status, api.body)
	case errors.As(err, &cfgErrs):
		body := errorBody{Error: fmt.Sprintf("the configuration is invalid (%d %s); nothing was changed", len(cfgErrs), plural(len(cfgErrs), "problem", "problems"))}
		for _, fe := range cfgErrs {
			body.Details = append(body.Details, detail{Path: fe.Path, Message: fe.Message})
		}
		writeJSON(w, http.StatusBadRequest, body)
	case errors.As(err, &verr):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: verr.Message, Details: []detail{{Path: verr.Field, Message: verr.Message}}})
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body is larger than the limit of %d MiB", tooBig.Limit>>20)})
	case errors.Is(err, store.ErrConflict):
		writeJSON(w, http.StatusConflict, errorBody{Error: "the configuration was changed by someone else at the same time; retry the request"})
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not found"})
	case errors.Is(err, store.ErrNotReplicated):
		// The message names the key and the replica count, never a value.
		h.log.Warn("write not confirmed by the store's replicas", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the change reached the Redis primary but was not confirmed by its replicas in time, so a failover could lose it; check the replicas and retry: " + err.Error()})
	case isUnreachable(err) && r.Context().Err() == nil:
		h.log.Warn("admin request failed: the shared store did not answer", "method", r.Method, "path", r.URL.Path, "err", err)
		msg := "the shared store did not answer; retry when it is back"
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			msg = "the shared store did not answer, so the change may or may not have been applied; check with GET and retry when it is back"
		}
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msg})
	default:
		if r.Context().Err() != nil {
			// The client went away; nobody reads the answer.
			return
		}
		h.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error; the gateway log has the details"})
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// readBody reads the whole request body, up to maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, badRequest("read request body: %v", err)
	}
	return b, nil
}

// decodeBody reads a JSON object into v, rejecting unknown fields and
// trailing data. The Content-Type is not checked: clients that forget it
// are common and the body says what it is.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return badRequest("request body is empty: send a JSON object")
	}
	return decodeJSON(b, v)
}

func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("request body has data after the JSON object: send exactly one object")
	}
	return nil
}

// jsonError turns a decoding error into a 400 that names the field.
func jsonError(err error) *apiError {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return badRequest("request body is not valid JSON: %s (at byte %d)", strings.TrimPrefix(syntax.Error(), "json: "), syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body is not valid JSON: it ends before the object is complete")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest("request body must be a JSON object, not %s", typeErr.Value)
		}
		e := badRequest("field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
		e.body.Details = []detail{{Path: typeErr.Field, Message: e.body.Error}}
		return e
	}
	// encoding/json reports unknown fields only as text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field, _ := strconv.Unquote(name)
		e := badRequest("unknown field %s in request body", name)
		e.body.Details = []detail{{Path: field, Message: "unknown field"}}
		return e
	}
	return badRequest("invalid request body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names the JSON type that decodes into t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
}

// isUnreachable reports a store that could not be reached or did not
// answer in time (a network error or a deadline), as opposed to one that
// answered with an error.
func isUnreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED)
}
