package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/registry"
	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// registerRequest is the body of POST /register.
type registerRequest struct {
	Service  string            `json:"service"`
	Address  string            `json:"address"`
	TTL      json.RawMessage   `json:"ttl"` // registry.Seconds, decoded apart to name the field in errors
	Weight   int               `json:"weight"`
	Metadata map[string]string `json:"metadata"`
}

type instancesBody struct {
	Revision  int64               `json:"revision"`
	Instances []registry.Instance `json:"instances"`
}

// listInstances answers the live registered instances, optionally only
// those of ?service=name.
func (h *Handler) listInstances(w http.ResponseWriter, r *http.Request) error {
	list, rev, err := h.deps.Registry.List(r.Context())
	if err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	if svc := r.URL.Query().Get("service"); svc != "" {
		kept := make([]registry.Instance, 0, len(list))
		for _, inst := range list {
			if inst.Service == svc {
				kept = append(kept, inst)
			}
		}
		list = kept
	}
	writeJSON(w, http.StatusOK, instancesBody{Revision: rev, Instances: nonNil(list)})
	return nil
}

// register records (or renews) a replica. It answers 201 even when the
// replica was already registered: registration is idempotent and the
// replica only needs its ID.
func (h *Handler) register(w http.ResponseWriter, r *http.Request) error {
	var req registerRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	var ttl registry.Seconds
	if len(req.TTL) > 0 {
		if err := ttl.UnmarshalJSON(req.TTL); err != nil {
			e := badRequest("field \"ttl\": %v", err)
			e.body.Details = []detail{{Path: "ttl", Message: err.Error()}}
			return e
		}
	}
	inst, err := h.deps.Registry.Register(r.Context(), registry.Registration{
		Service:  req.Service,
		Address:  req.Address,
		TTL:      time.Duration(ttl),
		Weight:   req.Weight,
		Metadata: req.Metadata,
	})
	if err != nil {
		return err
	}
	h.log.Info("instance registered", "id", inst.ID, "service", inst.Service, "address", inst.Address, "ttl", time.Duration(inst.TTL))
	w.Header().Set("Location", "/register/"+inst.ID)
	writeJSON(w, http.StatusCreated, inst)
	return nil
}

// heartbeat renews a registration. It takes no body; a body other than {}
// is refused rather than ignored, since a client sending one expects a
// change that a heartbeat does not make.
func (h *Handler) heartbeat(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) > 0 && decodeJSON(b, &struct{}{}) != nil {
		return badRequest("a heartbeat takes no body (or {}); to change ttl, weight or metadata, POST /register again with the same service and address")
	}
	id := r.PathValue("id")
	inst, err := h.deps.Registry.Heartbeat(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("instance %q is not registered (its lease may have expired): register again with POST /register", id)
	}
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", id, err)
	}
	writeJSON(w, http.StatusOK, inst)
	return nil
}

func (h *Handler) deregister(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	err := h.deps.Registry.Deregister(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("instance %q is not registered (it may have been deregistered already, or its lease expired)", id)
	}
	if err != nil {
		return fmt.Errorf("deregister %s: %w", id, err)
	}
	h.log.Info("instance deregistered", "id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
