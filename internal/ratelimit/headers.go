package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// Header names, in canonical form (http.CanonicalHeaderKey) so that they can
// be assigned to an http.Header directly and read back with Get. Field names
// are case-insensitive on the wire (RFC 9110, section 5.1).
const (
	headerLimit      = "Ratelimit-Limit"
	headerRemaining  = "Ratelimit-Remaining"
	headerReset      = "Ratelimit-Reset"
	headerPolicy     = "Ratelimit-Policy"
	headerRetryAfter = "Retry-After"
)

// Headers writes d into h as the rate-limit fields of
// draft-ietf-httpapi-ratelimit-headers-06, the last revision with separate
// fields and the form most clients and gateways understand (revisions 07 and
// later merge them into structured RateLimit and RateLimit-Policy fields):
//
//	RateLimit-Limit: <Limit>
//	RateLimit-Remaining: <Remaining>
//	RateLimit-Reset: <Reset in seconds, rounded up>
//	RateLimit-Policy: <Requests>;w=<Per in seconds, rounded up>[;burst=<Burst>]
//	Retry-After: <RetryAfter in seconds, rounded up, at least 1>   (denied only)
//
// The burst parameter appears only when the effective burst differs from
// Requests; RateLimit-Policy is omitted when d.Policy is zero. Existing
// values of these fields are replaced; no other field is touched.
//
// Cost: two allocations (one string holding every value, one slice backing
// the field values), whatever the number of fields.
func (d Decision) Headers(h http.Header) {
	// Every value is appended to one stack buffer and cut out of a single
	// string, so that five fields cost one string allocation, not five.
	var buf [192]byte
	var ends [5]int
	var names [5]string
	n := 0
	b := buf[:0]
	field := func(name string) {
		names[n], ends[n] = name, len(b)
		n++
	}
	b = strconv.AppendInt(b, int64(d.Limit), 10)
	field(headerLimit)
	b = strconv.AppendInt(b, int64(max(d.Remaining, 0)), 10)
	field(headerRemaining)
	b = strconv.AppendInt(b, ceilSeconds(d.Reset), 10)
	field(headerReset)
	if p := d.Policy; p.Requests > 0 && p.Per > 0 {
		b = strconv.AppendInt(b, int64(p.Requests), 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, ceilSeconds(p.Per), 10)
		if p.Burst != 0 && p.Burst != p.Requests {
			b = append(b, ";burst="...)
			b = strconv.AppendInt(b, int64(p.Burst), 10)
		}
		field(headerPolicy)
	}
	if !d.Allowed {
		b = strconv.AppendInt(b, max(ceilSeconds(d.RetryAfter), 1), 10)
		field(headerRetryAfter)
	}
	s := string(b)
	vals := make([]string, n)
	start := 0
	for i := range n {
		vals[i] = s[start:ends[i]]
		start = ends[i]
		h[names[i]] = vals[i : i+1 : i+1]
	}
}

// ceilSeconds is d in whole seconds, rounded up; 0 for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}
