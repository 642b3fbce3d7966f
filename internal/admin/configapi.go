package admin

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

// revisionBody answers a configuration change.
type revisionBody struct {
	Revision int64 `json:"revision"`
}

type configBody struct {
	Revision int64         `json:"revision"`
	Config   config.Config `json:"config"`
}

type servicesBody struct {
	Revision int64            `json:"revision"`
	Services []config.Service `json:"services"`
}

type serviceBody struct {
	Revision int64          `json:"revision"`
	Service  config.Service `json:"service"`
}

type routesBody struct {
	Revision int64          `json:"revision"`
	Routes   []config.Route `json:"routes"`
}

type routeBody struct {
	Revision int64        `json:"revision"`
	Route    config.Route `json:"route"`
}

func (h *Handler) getConfig(w http.ResponseWriter, r *http.Request) error {
	cfg, rev, err := h.deps.Config.Config(r.Context())
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	writeJSON(w, http.StatusOK, configBody{Revision: rev, Config: cfg})
	return nil
}

// putConfig replaces the whole configuration with the body, in JSON or
// YAML.
func (h *Handler) putConfig(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	// An empty body would parse as the empty configuration and delete
	// every route; make that explicit.
	if len(bytes.TrimSpace(b)) == 0 {
		return badRequest("request body is empty: send the whole configuration as JSON or YAML (an empty configuration is {})")
	}
	cfg, err := config.Parse(b)
	if err != nil {
		return badRequest("%v", err)
	}
	rev, err := h.deps.Config.Update(r.Context(), func(c *config.Config) error {
		*c = cfg
		return nil
	})
	if err != nil {
		return err
	}
	h.log.Info("config replaced", "revision", rev, "services", len(cfg.Services), "routes", len(cfg.Routes), "remote_addr", r.RemoteAddr)
	writeJSON(w, http.StatusOK, revisionBody{Revision: rev})
	return nil
}

func (h *Handler) listServices(w http.ResponseWriter, r *http.Request) error {
	cfg, rev, err := h.deps.Config.Config(r.Context())
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	writeJSON(w, http.StatusOK, servicesBody{Revision: rev, Services: nonNil(cfg.Services)})
	return nil
}

func (h *Handler) getService(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	cfg, rev, err := h.deps.Config.Config(r.Context())
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	s, ok := cfg.Service(name)
	if !ok {
		return notFound("service %q not found", name)
	}
	writeJSON(w, http.StatusOK, serviceBody{Revision: rev, Service: s})
	return nil
}

// putService creates or replaces one service; the name in the URL wins.
func (h *Handler) putService(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var s config.Service
	if err := decodeBody(w, r, &s); err != nil {
		return err
	}
	if s.Name != "" && s.Name != name {
		return nameMismatch("service", s.Name, name)
	}
	s.Name = name
	rev, err := h.deps.Config.Update(r.Context(), func(c *config.Config) error {
		c.SetService(s)
		return nil
	})
	if err != nil {
		return err
	}
	h.log.Info("service saved", "service", name, "revision", rev, "remote_addr", r.RemoteAddr)
	writeJSON(w, http.StatusOK, serviceBody{Revision: rev, Service: s})
	return nil
}

// deleteService removes one service. Routes still using it make the result
// invalid, which Update reports with their paths.
func (h *Handler) deleteService(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	rev, err := h.deps.Config.Update(r.Context(), func(c *config.Config) error {
		if !c.DeleteService(name) {
			return notFound("service %q not found", name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.log.Info("service deleted", "service", name, "revision", rev, "remote_addr", r.RemoteAddr)
	writeJSON(w, http.StatusOK, revisionBody{Revision: rev})
	return nil
}

func (h *Handler) listRoutes(w http.ResponseWriter, r *http.Request) error {
	cfg, rev, err := h.deps.Config.Config(r.Context())
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	writeJSON(w, http.StatusOK, routesBody{Revision: rev, Routes: nonNil(cfg.Routes)})
	return nil
}

func (h *Handler) getRoute(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	cfg, rev, err := h.deps.Config.Config(r.Context())
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	rt, ok := cfg.Route(name)
	if !ok {
		return notFound("route %q not found", name)
	}
	writeJSON(w, http.StatusOK, routeBody{Revision: rev, Route: rt})
	return nil
}

// putRoute creates or replaces one route; the name in the URL wins. A new
// route is appended, a replaced one keeps its position.
func (h *Handler) putRoute(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var rt config.Route
	if err := decodeBody(w, r, &rt); err != nil {
		return err
	}
	if rt.Name != "" && rt.Name != name {
		return nameMismatch("route", rt.Name, name)
	}
	rt.Name = name
	rev, err := h.deps.Config.Update(r.Context(), func(c *config.Config) error {
		c.SetRoute(rt)
		return nil
	})
	if err != nil {
		return err
	}
	h.log.Info("route saved", "route", name, "revision", rev, "remote_addr", r.RemoteAddr)
	writeJSON(w, http.StatusOK, routeBody{Revision: rev, Route: rt})
	return nil
}

func (h *Handler) deleteRoute(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	rev, err := h.deps.Config.Update(r.Context(), func(c *config.Config) error {
		if !c.DeleteRoute(name) {
			return notFound("route %q not found", name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.log.Info("route deleted", "route", name, "revision", rev, "remote_addr", r.RemoteAddr)
	writeJSON(w, http.StatusOK, revisionBody{Revision: rev})
	return nil
}

func nameMismatch(kind, body, url string) *apiError {
	e := badRequest("the body names %s %q but the URL names %q: renaming is not supported; omit the name or make them equal", kind, body, url)
	e.body.Details = []detail{{Path: "name", Message: e.body.Error}}
	return e
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
