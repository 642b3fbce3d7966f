package ratelimit

import (
	"errors"
	"fmt"
	"time"
)

// Period is the calendar window of a Quota, in UTC.
type Period string

// Periods.
const (
	// Day windows start at 00:00 UTC.
	Day Period = "day"
	// Month windows start at 00:00 UTC on the 1st of the month.
	Month Period = "month"
)

// window returns the start and end (exclusive) of the window of p that holds
// now, in UTC. p must be valid.
func (p Period) window(now time.Time) (start, end time.Time) {
	if p == Month {
		y, m, _ := now.UTC().Date()
		start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
	// Unix time has exactly 86400 s per UTC day (leap seconds are not
	// counted), so a day's start is arithmetic, cheaper than time.Date.
	const day = 24 * 60 * 60
	sec := now.Unix()
	sec -= ((sec % day) + day) % day
	start = time.Unix(sec, 0).UTC()
	return start, start.Add(day * time.Second)
}

// Quota is a long-window limit: Requests per calendar Period. Its zero value
// is invalid; see Validate.
type Quota struct {
	// Requests is how many requests are allowed per window. It must be
	// positive.
	Requests int64
	// Period is the window: Day or Month.
	Period Period
}

// Validate reports every invalid field of q, naming the field and the value.
func (q Quota) Validate() error {
	var errs []error
	if q.Requests <= 0 {
		errs = append(errs, fmt.Errorf("quota: requests %d must be positive, e.g. 10000", q.Requests))
	}
	if q.Period != Day && q.Period != Month {
		errs = append(errs, fmt.Errorf("quota: period %q is not %q or %q", q.Period, Day, Month))
	}
	return errors.Join(errs...)
}

// valid is Validate without building errors, for the hot path.
func (q Quota) valid() bool {
	return q.Requests > 0 && (q.Period == Day || q.Period == Month)
}

// QuotaDecision is the outcome of one Quotas.Use call.
type QuotaDecision struct {
	// Allowed says whether the request may proceed.
	Allowed bool
	// Limit is the quota's Requests.
	Limit int64
	// Used is the number of requests counted in the window, this one
	// included when allowed.
	Used int64
	// Remaining is Limit - Used, or 0 if that is negative.
	Remaining int64
	// Reset is the time until the window ends and the count restarts at 0.
	Reset time.Duration
}
