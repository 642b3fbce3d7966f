package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/apikey"
	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// Keys manages API key records; *apikey.Manager implements it. It is the
// Manager's whole write side rather than a few methods because /keys exposes
// every one of them.
type Keys interface {
	// Create stores a generated key and returns its record and the clear
	// key, which exists nowhere else.
	Create(ctx context.Context, spec apikey.Spec) (apikey.Key, string, error)
	// Import stores a key whose value the caller chose.
	Import(ctx context.Context, spec apikey.Spec, value string) (apikey.Key, error)
	// Get returns one record; an unknown ID wraps store.ErrNotFound.
	Get(ctx context.Context, id string) (apikey.Key, error)
	// List returns every record.
	List(ctx context.Context) ([]apikey.Key, error)
	// Update changes one record through fn.
	Update(ctx context.Context, id string, fn func(*apikey.Key) error) (apikey.Key, error)
	// Revoke marks one record revoked.
	Revoke(ctx context.Context, id string) (apikey.Key, error)
	// Delete removes one record.
	Delete(ctx context.Context, id string) error
}

var _ Keys = (*apikey.Manager)(nil)

// keyView is a key record as the admin API shows it: everything but the
// hash, which is useless to an operator and would let anyone who reads a
// response run a dictionary attack on imported keys.
type keyView struct {
	ID              string            `json:"id"`
	Name            string            `json:"name,omitempty"`
	HashAlg         apikey.HashAlg    `json:"hash_alg"`
	Prefix          string            `json:"prefix,omitempty"`
	CreatedAt       time.Time         `json:"created_at"`
	ExpiresAt       time.Time         `json:"expires_at,omitzero"`
	Revoked         bool              `json:"revoked"`
	RevokedAt       time.Time         `json:"revoked_at,omitzero"`
	AllowedRoutes   []string          `json:"allowed_routes,omitempty"`
	AllowedServices []string          `json:"allowed_services,omitempty"`
	RateLimit       *apikey.Limit     `json:"rate_limit,omitempty"`
	Quota           *apikey.Quota     `json:"quota,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
}

func viewOf(k apikey.Key) keyView {
	return keyView{
		ID:              k.ID,
		Name:            k.Name,
		HashAlg:         k.HashAlg,
		Prefix:          k.Prefix,
		CreatedAt:       k.CreatedAt,
		ExpiresAt:       k.ExpiresAt,
		Revoked:         k.Revoked,
		RevokedAt:       k.RevokedAt,
		AllowedRoutes:   k.AllowedRoutes,
		AllowedServices: k.AllowedServices,
		RateLimit:       k.RateLimit,
		Quota:           k.Quota,
		Metadata:        k.Metadata,
	}
}

// createKeyRequest is the body of POST /keys: a Spec, plus the value of a
// key to import instead of generating one.
type createKeyRequest struct {
	apikey.Spec
	// Key is the value to import; nil generates a key. It is a secret: it
	// is never logged or echoed.
	Key *string `json:"key"`
}

// createdKeyBody answers POST /keys. APIKey is the clear generated key,
// shown this once; it is empty for an imported key, whose value the caller
// already has.
type createdKeyBody struct {
	Key    keyView `json:"key"`
	APIKey string  `json:"api_key,omitempty"`
}

type keysBody struct {
	Keys []keyView `json:"keys"`
}

// keyPatch is the body of PATCH /keys/{id}: the fields to change, each
// replaced as a whole. A field set to null is cleared (no name, never
// expires, any route or service, no limit, no quota, no metadata).
type keyPatch struct {
	Name            *string            `json:"name"`
	ExpiresAt       *time.Time         `json:"expires_at"`
	AllowedRoutes   *[]string          `json:"allowed_routes"`
	AllowedServices *[]string          `json:"allowed_services"`
	RateLimit       *apikey.Limit      `json:"rate_limit"`
	Quota           *apikey.Quota      `json:"quota"`
	Metadata        *map[string]string `json:"metadata"`
}

// keyRoutes registers the /keys endpoints. They are admin only: a key
// record says what a key may reach, and creating one grants access.
func (h *Handler) keyRoutes() {
	h.handle("GET /keys", adminOnly, h.withKeys(h.listKeys))
	h.handle("POST /keys", adminOnly, h.withKeys(h.createKey))
	h.handle("GET /keys/{id}", adminOnly, h.withKeys(h.getKey))
	h.handle("PATCH /keys/{id}", adminOnly, h.withKeys(h.patchKey))
	h.handle("POST /keys/{id}/revoke", adminOnly, h.withKeys(h.revokeKey))
	h.handle("DELETE /keys/{id}", adminOnly, h.withKeys(h.deleteKey))
}

// withKeys answers 501 when the gateway runs without API keys, and maps the
// Manager's errors to statuses.
func (h *Handler) withKeys(fn func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if h.deps.Keys == nil {
			return &apiError{status: http.StatusNotImplemented, body: errorBody{Error: "API keys are not enabled on this gateway"}}
		}
		return keyError(fn(w, r))
	}
}

// keyError turns the Manager's errors into answers. Their messages never
// contain a clear key or an imported value; an ID from the URL is not echoed
// either, since a confused caller may have put the key itself there.
func keyError(err error) error {
	var (
		verr apikey.ValidationError
		api  *apiError
	)
	switch {
	case err == nil, errors.As(err, &api):
		return err
	case errors.As(err, &verr):
		e := badRequest("the api key is invalid (%d %s); nothing was changed", len(verr), plural(len(verr), "problem", "problems"))
		for _, fe := range verr {
			e.body.Details = append(e.body.Details, detail{Path: fe.Path, Message: fe.Message})
		}
		return e
	case errors.Is(err, apikey.ErrDuplicate):
		return &apiError{status: http.StatusConflict, body: errorBody{
			Error:   "another api key already has this value; delete it first to import the value again, or import a different value",
			Details: []detail{{Path: "key", Message: "already in use"}},
		}}
	case errors.Is(err, apikey.ErrNoSecret):
		e := badRequest("importing a key needs a server secret, and this gateway has none: set GATEHOUSE_KEY_SECRET (at least %d bytes) and restart, or leave out \"key\" to generate one", apikey.MinSecretLen)
		e.body.Details = []detail{{Path: "key", Message: "no server secret"}}
		return e
	case errors.Is(err, apikey.ErrImmutable):
		return badRequest("id, hash, hash_alg, prefix and created_at of an api key cannot be changed")
	case errors.Is(err, store.ErrNotFound):
		return notFound("api key not found: the id is wrong or the key was deleted (ids are 12 hex characters; see GET /keys)")
	case errors.Is(err, store.ErrConflict):
		return &apiError{status: http.StatusConflict, body: errorBody{Error: "the api key was changed by someone else at the same time; retry the request"}}
	}
	return err
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := h.deps.Keys.List(r.Context())
	if err != nil {
		return fmt.Errorf("list api keys: %w", err)
	}
	views := make([]keyView, len(keys))
	for i, k := range keys {
		views[i] = viewOf(k)
	}
	writeJSON(w, http.StatusOK, keysBody{Keys: views})
	return nil
}

// createKey generates a key, or imports the value in "key". An empty body
// generates an unrestricted key.
func (h *Handler) createKey(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	var req createKeyRequest
	if len(bytes.TrimSpace(b)) > 0 {
		if err := decodeJSON(b, &req); err != nil {
			return err
		}
	}
	var (
		k     apikey.Key
		clear string
	)
	if req.Key != nil {
		k, err = h.deps.Keys.Import(r.Context(), req.Spec, *req.Key)
	} else {
		k, clear, err = h.deps.Keys.Create(r.Context(), req.Spec)
	}
	if err != nil {
		return err
	}
	h.log.Info("api key created by admin API", "key_id", k.ID, "imported", req.Key != nil, "remote_addr", r.RemoteAddr)
	w.Header().Set("Location", "/keys/"+k.ID)
	writeJSON(w, http.StatusCreated, createdKeyBody{Key: viewOf(k), APIKey: clear})
	return nil
}

func (h *Handler) getKey(w http.ResponseWriter, r *http.Request) error {
	k, err := h.deps.Keys.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewOf(k))
	return nil
}

// patchKey changes the policy fields present in the body.
func (h *Handler) patchKey(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return badRequest("request body is empty: send a JSON object with the fields to change, e.g. {\"name\":\"ci\"}")
	}
	var p keyPatch
	if err := decodeJSON(b, &p); err != nil {
		return err
	}
	// A second pass tells a field set to null (clear it) from one left out
	// (keep it); the first pass has already rejected unknown fields.
	var present map[string]json.RawMessage
	if err := json.Unmarshal(b, &present); err != nil {
		return jsonError(err)
	}
	id := r.PathValue("id")
	k, err := h.deps.Keys.Update(r.Context(), id, func(k *apikey.Key) error {
		if _, ok := present["name"]; ok {
			k.Name = deref(p.Name)
		}
		if _, ok := present["expires_at"]; ok {
			k.ExpiresAt = time.Time{}
			if p.ExpiresAt != nil {
				k.ExpiresAt = p.ExpiresAt.UTC()
			}
		}
		if _, ok := present["allowed_routes"]; ok {
			k.AllowedRoutes = deref(p.AllowedRoutes)
		}
		if _, ok := present["allowed_services"]; ok {
			k.AllowedServices = deref(p.AllowedServices)
		}
		if _, ok := present["rate_limit"]; ok {
			k.RateLimit = p.RateLimit
		}
		if _, ok := present["quota"]; ok {
			k.Quota = p.Quota
		}
		if _, ok := present["metadata"]; ok {
			k.Metadata = deref(p.Metadata)
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.log.Info("api key updated by admin API", "key_id", k.ID, "remote_addr", r.RemoteAddr)
	writeJSON(w, http.StatusOK, viewOf(k))
	return nil
}

// revokeKey marks the key revoked; the gateway refuses it from the next
// request on. Revoking a revoked key answers it unchanged.
func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) > 0 && decodeJSON(b, &struct{}{}) != nil {
		return badRequest("revoking takes no body (or {})")
	}
	k, err := h.deps.Keys.Revoke(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	h.log.Info("api key revoked by admin API", "key_id", k.ID, "remote_addr", r.RemoteAddr)
	writeJSON(w, http.StatusOK, viewOf(k))
	return nil
}

func (h *Handler) deleteKey(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := h.deps.Keys.Delete(r.Context(), id); err != nil {
		return err
	}
	h.log.Info("api key deleted by admin API", "key_id", id, "remote_addr", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deref returns *p, or the zero value for nil.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
