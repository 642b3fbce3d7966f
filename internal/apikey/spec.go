package apikey

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

// Limits on what a Spec may hold, so that one record stays small and the
// Index's per-key memory stays bounded.
const (
	MaxNameLen          = 200
	MaxAllowed          = 100 // entries in AllowedRoutes or AllowedServices
	MaxAllowedLen       = 200 // bytes per route or service name
	MaxMetadataEntries  = 64
	MaxMetadataKeyLen   = 128
	MaxMetadataValueLen = 1024
)

// Spec is what a caller chooses when creating or importing a key: the
// creatable subset of Key. The zero value is valid: an unnamed key that
// never expires and may call anything without a per-key limit.
type Spec struct {
	// Name is an optional label for people.
	Name string `json:"name,omitempty"`
	// ExpiresAt is when the key stops being valid; zero means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// AllowedRoutes lists the route names the key may call; empty means any.
	AllowedRoutes []string `json:"allowed_routes,omitempty"`
	// AllowedServices lists the service names the key may reach; empty means
	// any.
	AllowedServices []string `json:"allowed_services,omitempty"`
	// RateLimit limits the key's request rate; nil means no per-key limit.
	RateLimit *Limit `json:"rate_limit,omitempty"`
	// Quota caps the key's requests per calendar period; nil means none.
	Quota *Quota `json:"quota,omitempty"`
	// Metadata is free-form data passed along with the key's requests.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ValidationError lists every problem found in a Spec (or an imported key
// value), in field order, as config's field errors (Path is the JSON path,
// e.g. "quota.period" or "allowed_routes[2]"). Its message has one problem
// per line. Nothing is stored when it is returned.
type ValidationError = config.Errors

// problems accumulates FieldErrors.
type problems []config.FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, config.FieldError{Path: field, Message: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return ValidationError(p)
}

// Validate reports every problem with s as a ValidationError, or nil. It
// does not compare ExpiresAt with the current time: Manager.Create does.
func (s Spec) Validate() error {
	var p problems
	s.validate(&p)
	return p.err()
}

func (s Spec) validate(p *problems) {
	switch {
	case len(s.Name) > MaxNameLen:
		p.add("name", "is %d bytes long; at most %d are allowed", len(s.Name), MaxNameLen)
	case strings.IndexFunc(s.Name, unicode.IsControl) >= 0:
		p.add("name", "contains a control character; use printable text")
	}
	if !s.ExpiresAt.IsZero() && (s.ExpiresAt.Year() < 2000 || s.ExpiresAt.Year() > 2200) {
		p.add("expires_at", "%s is outside the years 2000 to 2200; leave it out for a key that never expires", s.ExpiresAt.Format(time.RFC3339))
	}
	validateNames(p, "allowed_routes", "route", s.AllowedRoutes)
	validateNames(p, "allowed_services", "service", s.AllowedServices)
	if l := s.RateLimit; l != nil {
		if l.Requests <= 0 {
			p.add("rate_limit.requests", "must be positive, got %d; leave rate_limit out for no per-key limit", l.Requests)
		}
		if l.Per <= 0 {
			p.add("rate_limit.per", `must be positive, got %s; use e.g. "1s" or "1m"`, l.Per)
		}
		if l.Burst < 0 {
			p.add("rate_limit.burst", "must not be negative, got %d; 0 means the same as requests", l.Burst)
		}
	}
	if q := s.Quota; q != nil {
		if q.Requests <= 0 {
			p.add("quota.requests", "must be positive, got %d; leave quota out for no quota", q.Requests)
		}
		if q.Period != PeriodDay && q.Period != PeriodMonth {
			p.add("quota.period", "%q is not %q or %q", q.Period, PeriodDay, PeriodMonth)
		}
	}
	if len(s.Metadata) > MaxMetadataEntries {
		p.add("metadata", "has %d entries; at most %d are allowed", len(s.Metadata), MaxMetadataEntries)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Metadata)) {
		v := s.Metadata[k]
		switch {
		case k == "":
			p.add("metadata", "has an empty key; every entry needs a name")
		case len(k) > MaxMetadataKeyLen:
			p.add("metadata", "key %.20q... is %d bytes long; at most %d are allowed", k, len(k), MaxMetadataKeyLen)
		case len(v) > MaxMetadataValueLen:
			p.add(fmt.Sprintf("metadata.%s", k), "is %d bytes long; at most %d are allowed", len(v), MaxMetadataValueLen)
		}
	}
}

// validateNames checks a list of allowed route or service names.
func validateNames(p *problems, field, what string, names []string) {
	if len(names) > MaxAllowed {
		p.add(field, "lists %d %ss; at most %d are allowed", len(names), what, MaxAllowed)
		return
	}
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		path := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case n == "":
			p.add(path, "is empty; give a %s name or remove the entry", what)
		case len(n) > MaxAllowedLen:
			p.add(path, "is %d bytes long; at most %d are allowed", len(n), MaxAllowedLen)
		case seen[n]:
			p.add(path, "%q is listed twice", n)
		}
		seen[n] = true
	}
}

// Value rules for imported keys, which travel in HTTP headers.
const (
	MinImportLen = 6
	// MaxKeyLen bounds any key, imported or presented; a longer presented
	// key is Unknown without being hashed.
	MaxKeyLen = 256
)

// validateValue checks the value of an imported key. Its messages never
// contain the value, which is a secret.
func validateValue(p *problems, value string) {
	switch {
	case len(value) < MinImportLen:
		p.add("key", "is %d characters long; at least %d are required", len(value), MinImportLen)
	case len(value) > MaxKeyLen:
		p.add("key", "is %d characters long; at most %d are allowed", len(value), MaxKeyLen)
	}
	for i := range len(value) {
		if c := value[i]; c <= ' ' || c > '~' {
			p.add("key", "has a space, control or non-ASCII character at byte %d; use visible ASCII characters only", i)
			break
		}
	}
}
