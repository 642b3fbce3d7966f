// Package health runs active health checks against service replicas: one
// probe loop per replica sends GET requests at an interval and reports a
// replica unhealthy after consecutive failures, healthy again after
// consecutive successes. It complements the passive circuit breaker.
package health

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults applied to zero fields of Check.
const (
	// DefaultPath is the path probed.
	DefaultPath = "/"
	// DefaultInterval is the time between probes of one replica.
	DefaultInterval = 10 * time.Second
	// DefaultTimeout bounds one probe.
	DefaultTimeout = 2 * time.Second
	// DefaultHealthyThreshold is the consecutive successes that restore an
	// unhealthy replica.
	DefaultHealthyThreshold = 2
	// DefaultUnhealthyThreshold is the consecutive failures that mark a
	// healthy replica unhealthy.
	DefaultUnhealthyThreshold = 3
)

// Check describes the active health check of a service's replicas. The zero
// value is useful: GET / every 10s with a 2s timeout, any 2xx or 3xx is a
// success, 3 failures in a row make a replica unhealthy and 2 successes in a
// row healthy again.
type Check struct {
	// Path is the path, and optional query, requested on each replica. Empty
	// means DefaultPath.
	Path string
	// Interval is the time between the end of one probe and the start of the
	// next. Zero means DefaultInterval.
	Interval time.Duration
	// Timeout bounds one probe, response body included. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// HealthyThreshold is the number of consecutive successes that make an
	// unhealthy replica healthy. Zero means DefaultHealthyThreshold.
	HealthyThreshold int
	// UnhealthyThreshold is the number of consecutive failures that make a
	// healthy replica unhealthy. Zero means DefaultUnhealthyThreshold.
	UnhealthyThreshold int
	// ExpectedStatuses are the statuses that count as success. Empty means
	// any 2xx or 3xx; redirects are never followed.
	ExpectedStatuses []int
	// Host, if set, is sent as the Host header instead of the replica's
	// address.
	Host string
}

// Validate reports every invalid field of c, naming the field and value.
func (c Check) Validate() error {
	var errs []error
	if c.Path != "" {
		if !strings.HasPrefix(c.Path, "/") {
			errs = append(errs, fmt.Errorf("path %q: must start with /", c.Path))
		} else if _, err := url.Parse(c.Path); err != nil {
			errs = append(errs, fmt.Errorf("path %q: %w", c.Path, err))
		}
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval %s: must not be negative (0 means %s)", c.Interval, DefaultInterval))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must not be negative (0 means %s)", c.Timeout, DefaultTimeout))
	}
	if c.HealthyThreshold < 0 {
		errs = append(errs, fmt.Errorf("healthy_threshold %d: must not be negative (0 means %d)", c.HealthyThreshold, DefaultHealthyThreshold))
	}
	if c.UnhealthyThreshold < 0 {
		errs = append(errs, fmt.Errorf("unhealthy_threshold %d: must not be negative (0 means %d)", c.UnhealthyThreshold, DefaultUnhealthyThreshold))
	}
	for _, s := range c.ExpectedStatuses {
		if s < 100 || s > 599 {
			errs = append(errs, fmt.Errorf("expected_statuses: %d is not an HTTP status (100-599)", s))
		}
	}
	if strings.ContainsAny(c.Host, " \t\r\n/") {
		errs = append(errs, fmt.Errorf("host %q: must be a host name with an optional port", c.Host))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with defaults in place of zero fields.
func (c Check) withDefaults() Check {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.HealthyThreshold <= 0 {
		c.HealthyThreshold = DefaultHealthyThreshold
	}
	if c.UnhealthyThreshold <= 0 {
		c.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	return c
}

// equal reports whether c and o describe the same check.
func (c Check) equal(o Check) bool {
	return c.Path == o.Path && c.Interval == o.Interval && c.Timeout == o.Timeout &&
		c.HealthyThreshold == o.HealthyThreshold && c.UnhealthyThreshold == o.UnhealthyThreshold &&
		c.Host == o.Host && slices.Equal(c.ExpectedStatuses, o.ExpectedStatuses)
}

// expects reports whether status counts as a success.
func (c Check) expects(status int) bool {
	if len(c.ExpectedStatuses) == 0 {
		return status >= 200 && status < 400
	}
	return slices.Contains(c.ExpectedStatuses, status)
}

// state is the health of one replica as its probes see it. The zero value is
// not used: a replica starts healthy (see newState), so that it is not
// ejected before it has failed.
type state struct {
	healthy   bool
	successes int // consecutive
	failures  int // consecutive
}

func newState() state { return state{healthy: true} }

// observe records the outcome of one probe under check c (with defaults)
// and reports whether the replica's health changed.
func (s *state) observe(ok bool, c Check) (changed bool) {
	if ok {
		s.successes++
		s.failures = 0
		if !s.healthy && s.successes >= c.HealthyThreshold {
			s.healthy = true
			return true
		}
		return false
	}
	s.failures++
	s.successes = 0
	if s.healthy && s.failures >= c.UnhealthyThreshold {
		s.healthy = false
		return true
	}
	return false
}
