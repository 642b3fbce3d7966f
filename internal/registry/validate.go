package registry

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Limits on a registration's weight and metadata.
const (
	// MaxWeight is the largest accepted Registration.Weight.
	MaxWeight = 10000
	// MaxMetadataEntries is the largest number of metadata entries.
	MaxMetadataEntries = 32
	// MaxMetadataLen is the longest metadata key or value, in bytes.
	MaxMetadataLen = 256
)

// serviceName is the shape of a service name, shared with the config's
// service names so that a registration can name a configured service.
var serviceName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// ValidationError says what is wrong with one field of a Registration. Its
// message is meant for the replica's operator: it names the field, quotes the
// value and says what to do.
type ValidationError struct {
	// Field is the JSON name of the offending field: "service", "address",
	// "ttl", "weight" or "metadata".
	Field string
	// Message is the full explanation, including the field name.
	Message string
}

// Error returns the message.
func (e *ValidationError) Error() string { return e.Message }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// validate checks r against the limits in cfg and returns the registration
// with its address normalised and its TTL defaulted, or the first problem as
// a *ValidationError (fields are checked in the order service, address, ttl,
// weight, metadata).
func (c Config) validate(r Registration) (Registration, error) {
	switch {
	case r.Service == "":
		return r, invalid("service", `service is required, e.g. "service": "orders"`)
	case !serviceName.MatchString(r.Service):
		return r, invalid("service", "service %q is not a valid name: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", r.Service)
	}
	addr, err := NormalizeAddress(r.Address)
	if err != nil {
		return r, err
	}
	r.Address = addr
	if r.TTL == 0 {
		r.TTL = c.DefaultTTL
	}
	if r.TTL < c.MinTTL || r.TTL > c.MaxTTL {
		return r, invalid("ttl", "ttl %s is outside the allowed range %s to %s", seconds(r.TTL), seconds(c.MinTTL), seconds(c.MaxTTL))
	}
	if r.Weight < 0 || r.Weight > MaxWeight {
		return r, invalid("weight", "weight %d is outside the allowed range 0 to %d (0 means the default weight)", r.Weight, MaxWeight)
	}
	if len(r.Metadata) > MaxMetadataEntries {
		return r, invalid("metadata", "metadata has %d entries; at most %d are allowed", len(r.Metadata), MaxMetadataEntries)
	}
	for k, v := range r.Metadata {
		switch {
		case k == "":
			return r, invalid("metadata", "metadata has an empty key; every key needs a name")
		case len(k) > MaxMetadataLen:
			return r, invalid("metadata", "metadata key %q is %d bytes long; at most %d are allowed", clip(k), len(k), MaxMetadataLen)
		case len(v) > MaxMetadataLen:
			return r, invalid("metadata", "metadata value of key %q is %d bytes long; at most %d are allowed", clip(k), len(v), MaxMetadataLen)
		}
	}
	return r, nil
}

// seconds formats d the way the API accepts it: a number of seconds.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// clip shortens a long value for quoting in a message.
func clip(s string) string {
	const n = 32
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// NormalizeAddress checks that addr is an absolute http or https URL naming
// only a host and optional port, and returns it in canonical form: lower-case
// scheme and host, no default port, no trailing slash
// ("HTTP://Example.com:80/" becomes "http://example.com"). A problem is
// reported as a *ValidationError for the field "address".
func NormalizeAddress(addr string) (string, error) {
	if addr == "" {
		return "", invalid("address", `address is required, e.g. "address": "http://10.0.0.7:8080"`)
	}
	if !strings.Contains(addr, "://") {
		return "", invalid("address", "address %q is not an http(s) URL: add a scheme, e.g. %q", addr, "http://"+strings.TrimPrefix(addr, "//"))
	}
	u, err := url.Parse(addr)
	if err != nil {
		// url.Error repeats the address; keep only the reason.
		reason := err.Error()
		if ue, ok := err.(*url.Error); ok {
			reason = ue.Err.Error()
		}
		return "", invalid("address", "address %q is not a valid URL: %s", addr, reason)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", invalid("address", "address %q has scheme %q: use http or https", addr, u.Scheme)
	case u.User != nil:
		return "", invalid("address", "address %q contains user information: remove it, credentials do not belong in the registry", addr)
	case u.Hostname() == "":
		return "", invalid("address", "address %q has no host, e.g. \"http://10.0.0.7:8080\"", addr)
	case u.RawQuery != "" || u.ForceQuery:
		return "", invalid("address", "address %q has a query: remove everything from '?'", addr)
	case u.Fragment != "" || strings.Contains(addr, "#"):
		return "", invalid("address", "address %q has a fragment: remove everything from '#'", addr)
	case u.Path != "" && u.Path != "/":
		return "", invalid("address", "address %q has path %q: a registered address names only a host and port, e.g. %q", addr, u.Path, scheme+"://"+u.Host)
	}
	host := strings.ToLower(u.Hostname())
	// An IPv6 zone ("fe80::1%eth0") must stay escaped in URL form (RFC 6874).
	host = strings.ReplaceAll(host, "%", "%25")
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", invalid("address", "address %q has port %q: use a port from 1 to 65535", addr, port)
		}
		port = strconv.Itoa(n) // drops leading zeros
		if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
			port = ""
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", invalid("address", "address %q has an empty port: write the port after ':' or remove the ':'", addr)
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") { // IPv6 literal
		return scheme + "://[" + host + "]", nil
	}
	return scheme + "://" + host, nil
}
