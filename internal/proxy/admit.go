package proxy

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/apikey"
	"github.com/gatehouse-gw/gatehouse/internal/ratelimit"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

// KeyChecker checks the API keys presented on routes that require one.
// *apikey.Index implements it.
type KeyChecker interface {
	// Check looks up a presented key; see apikey.Index.Check.
	Check(presented string, now time.Time) (*apikey.Entry, apikey.Result)
	// Ready reports whether the keys have been loaded at least once.
	Ready() bool
	// Degraded reports whether the keys may be out of date because their
	// store is unreachable: an unknown key then answers 503, not 401.
	Degraded() bool
}

// QuotaCounter counts requests against the keys' quotas. *ratelimit.Quotas
// implements it.
type QuotaCounter interface {
	Use(ctx context.Context, key string, quota ratelimit.Quota, now time.Time) (ratelimit.QuotaDecision, error)
}

var (
	_ KeyChecker   = (*apikey.Index)(nil)
	_ QuotaCounter = (*ratelimit.Quotas)(nil)
)

// keySource says where a request's API key was found, so that the engine
// strips it from the upstream request.
type keySource uint8

const (
	keyNone          keySource = iota
	keyHeader                  // the route's Auth.Header
	keyQuery                   // the route's Auth.Query parameter
	keyAuthorization           // Authorization: Bearer KEY, or Authorization: KEY
)

// Challenges sent with 401s (RFC 6750 section 3).
const (
	challengeMissing = `Bearer realm="gatehouse"`
	challengeInvalid = `Bearer realm="gatehouse", error="invalid_token"`
)

// admitRequest is what admission looks at: no engine types, so that any
// HTTP engine can fill it.
type admitRequest struct {
	// Header gives the request's header values.
	Header snapshot.HeaderGetter
	// RawQuery is the request's query string, still escaped.
	RawQuery string
}

// admission is the outcome of the admission step for one request. The zero
// value admits without a key or a limit.
type admission struct {
	// status is 0 when the request may proceed; otherwise the engine
	// answers status with reason.
	status int
	reason string
	// challenge is the WWW-Authenticate value of a 401, retryAfter the
	// Retry-After value of a 503; "" for none.
	challenge, retryAfter string
	// authFailure is the telemetry.Auth* reason of a 401 or 403 and
	// limitScope the telemetry.Limit* scope of a 429; "" otherwise.
	authFailure, limitScope string
	// entry is the key presented, when it is known (even if refused).
	entry *apikey.Entry
	// from is where the key was found; keyNone when the route needs none.
	from keySource
	// limit is, when limited, the decision whose RateLimit-* headers go
	// with the response: the refusing one, or the tightest of those that
	// allowed the request.
	limit   ratelimit.Decision
	limited bool
}

// admitter runs the admission step: the API key on routes that require
// one, then the route's rate limit, the key's rate limit and the key's
// quota, in that order, each counting only what the previous ones let
// through. A nil member disables its feature, except keys: a route that
// requires a key is refused (503) without a KeyChecker rather than served
// unauthenticated. It does no I/O other than the limiter's and the quota's
// (whose first use of a key in a window reads the store).
type admitter struct {
	keys    KeyChecker
	limiter ratelimit.Limiter
	quotas  QuotaCounter
	log     *slog.Logger
}

// admit decides whether req, routed to route, may proceed at now.
func (a *admitter) admit(ctx context.Context, route *snapshot.Route, req admitRequest, now time.Time) admission {
	var ad admission
	if route.Auth != nil {
		if !a.authenticate(&ad, route, req, now) {
			return ad
		}
	}
	if rl := route.RateLimit; rl != nil && a.limiter != nil {
		lim := ratelimit.Limit{Requests: rl.Requests, Per: rl.Per, Burst: rl.Burst}
		if !a.allow(ctx, &ad, "route:"+route.Name, lim, now, telemetry.LimitRoute, "route rate limit exceeded") {
			return ad
		}
	}
	e := ad.entry
	if e == nil {
		return ad
	}
	if rl := e.RateLimit; rl != nil && a.limiter != nil {
		lim := ratelimit.Limit{Requests: rl.Requests, Per: time.Duration(rl.Per), Burst: rl.Burst}
		if !a.allow(ctx, &ad, "key:"+e.ID, lim, now, telemetry.LimitKey, "API key rate limit exceeded") {
			return ad
		}
	}
	if q := e.Quota; q != nil && a.quotas != nil {
		a.useQuota(ctx, &ad, e, ratelimit.Quota{Requests: q.Requests, Period: ratelimit.Period(q.Period)}, now)
	}
	return ad
}

// authenticate finds and checks the key, filling ad; it reports whether the
// request may proceed.
func (a *admitter) authenticate(ad *admission, route *snapshot.Route, req admitRequest, now time.Time) bool {
	switch {
	case a.keys == nil:
		// Never let a route that asks for a key through unauthenticated.
		ad.status, ad.reason = http.StatusServiceUnavailable, "API keys are not enabled on this gateway"
		return false
	case !a.keys.Ready():
		// Not loaded yet is not "unknown": a 401 here would tell a valid
		// client its key is bad.
		ad.status, ad.reason, ad.retryAfter = http.StatusServiceUnavailable, "API keys not loaded yet", "1"
		return false
	}
	key, from := extractKey(route.Auth, req.Header, req.RawQuery)
	ad.from = from
	if from == keyNone {
		ad.status, ad.reason, ad.challenge, ad.authFailure = http.StatusUnauthorized, "missing API key", challengeMissing, telemetry.AuthMissing
		return false
	}
	e, res := a.keys.Check(key, now)
	ad.entry = e
	switch res {
	case apikey.Valid:
	case apikey.Revoked:
		ad.status, ad.reason, ad.challenge, ad.authFailure = http.StatusUnauthorized, "revoked API key", challengeInvalid, telemetry.AuthRevoked
		return false
	case apikey.Expired:
		ad.status, ad.reason, ad.challenge, ad.authFailure = http.StatusUnauthorized, "expired API key", challengeInvalid, telemetry.AuthExpired
		return false
	case apikey.Unknown:
		if a.keys.Degraded() {
			// The key may have been created on another instance while
			// this one cannot read the store: a 401 would tell a valid
			// client its key is bad.
			ad.status, ad.reason, ad.retryAfter, ad.authFailure = http.StatusServiceUnavailable, "API key store unreachable; unknown key cannot be checked now", "1", telemetry.AuthUnknown
			return false
		}
		fallthrough
	default:
		ad.status, ad.reason, ad.challenge, ad.authFailure = http.StatusUnauthorized, "unknown API key", challengeInvalid, telemetry.AuthUnknown
		return false
	}
	switch svc := route.Service; {
	case !e.Routes.Allows(route.Name):
		ad.status, ad.reason, ad.authFailure = http.StatusForbidden, "API key not allowed on route "+route.Name, telemetry.AuthForbidden
		return false
	case svc != nil && !e.Services.Allows(svc.Name):
		ad.status, ad.reason, ad.authFailure = http.StatusForbidden, "API key not allowed on service "+svc.Name, telemetry.AuthForbidden
		return false
	}
	return true
}

// allow applies one rate limit, filling ad; it reports whether the request
// may proceed. A limiter that cannot decide lets the request through: an
// outage of its backend must not refuse traffic (see ratelimit.Limiter).
func (a *admitter) allow(ctx context.Context, ad *admission, key string, lim ratelimit.Limit, now time.Time, scope, reason string) bool {
	d, err := a.limiter.Allow(ctx, key, lim, now)
	if err != nil {
		a.log.Debug("rate limiter failed; request allowed", "scope", scope, "error", err)
		return true
	}
	return a.apply(ad, d, scope, reason)
}

// useQuota applies the key's quota, filling ad. A quota that cannot be read
// from the store lets the request through, as allow does.
func (a *admitter) useQuota(ctx context.Context, ad *admission, e *apikey.Entry, q ratelimit.Quota, now time.Time) {
	qd, err := a.quotas.Use(ctx, "key:"+e.ID+":"+string(q.Period), q, now)
	if err != nil {
		a.log.Debug("quota unavailable; request allowed", "key_id", e.ID, "error", err)
		return
	}
	d := ratelimit.Decision{
		Allowed:   qd.Allowed,
		Limit:     clampInt(qd.Limit),
		Remaining: clampInt(qd.Remaining),
		Reset:     qd.Reset,
	}
	if !qd.Allowed {
		d.RetryAfter = qd.Reset
	}
	a.apply(ad, d, telemetry.LimitQuota, "API key quota exceeded")
}

// apply records a limit's decision in ad: a refusal replaces any earlier
// decision, an allowance is kept if it is the tightest so far (fewest
// remaining).
func (a *admitter) apply(ad *admission, d ratelimit.Decision, scope, reason string) bool {
	if !d.Allowed {
		ad.status, ad.reason, ad.limitScope = http.StatusTooManyRequests, reason, scope
		ad.limit, ad.limited = d, true
		return false
	}
	if !ad.limited || d.Remaining < ad.limit.Remaining {
		ad.limit, ad.limited = d, true
	}
	return true
}

// clampInt converts a quota count to an int for a Decision, saturating.
func clampInt(n int64) int {
	return int(min(n, math.MaxInt))
}

// extractKey returns the API key of a request and where it was found: the
// route's header, else its query parameter, else Authorization as "Bearer
// KEY" (scheme case-insensitive, RFC 9110 section 11.1) or a bare KEY. An
// Authorization with another scheme ("Basic ...") carries no key. It does
// not allocate unless the query value is percent-encoded.
func extractKey(a *snapshot.Auth, h snapshot.HeaderGetter, rawQuery string) (string, keySource) {
	if a.Header != "" {
		if v := strings.TrimSpace(h.Get(a.Header)); v != "" {
			return v, keyHeader
		}
	}
	if a.Query != "" {
		if v := queryValue(rawQuery, a.Query); v != "" {
			return v, keyQuery
		}
	}
	v := strings.TrimSpace(h.Get("Authorization"))
	if v == "" {
		return "", keyNone
	}
	scheme, token, ok := strings.Cut(v, " ")
	if !ok {
		if strings.EqualFold(v, "Bearer") {
			return "", keyNone // "Bearer" and no token
		}
		return v, keyAuthorization
	}
	if strings.EqualFold(scheme, "Bearer") {
		if token = strings.TrimSpace(token); token != "" {
			return token, keyAuthorization
		}
	}
	return "", keyNone
}

// queryValue returns the first non-empty value of the parameter name in
// the escaped query string raw, unescaped, or "".
func queryValue(raw, name string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if v == "" || !queryKeyIs(k, name) {
			continue
		}
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		if v != "" {
			return v
		}
	}
	return ""
}

// queryKeyIs reports whether the escaped parameter name k is name.
func queryKeyIs(k, name string) bool {
	if k == name {
		return true
	}
	if !strings.ContainsAny(k, "%+") {
		return false
	}
	u, err := url.QueryUnescape(k)
	return err == nil && u == name
}

// stripQuery returns raw without any parameter called name, keeping every
// other byte as it was (order and escaping); raw itself if there is none.
func stripQuery(raw, name string) string {
	found := false
	for rest := raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		k, _, _ := strings.Cut(pair, "=")
		if queryKeyIs(k, name) {
			found = true
			break
		}
	}
	if !found {
		return raw
	}
	var b strings.Builder
	b.Grow(len(raw))
	for rest := raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		k, _, _ := strings.Cut(pair, "=")
		if queryKeyIs(k, name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	return b.String()
}

// rateLimitHeaders are the RateLimit-* fields Decision.Headers writes. An
// upstream's own are removed so that the client sees one consistent set;
// its Retry-After (say on a 503) is kept, since an admitted request's
// decision writes none.
var rateLimitHeaders = [...]string{"Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset", "Ratelimit-Policy"}

// writeLimitHeaders replaces h's rate-limit fields with ad's, if limited.
func writeLimitHeaders(h http.Header, ad *admission) {
	if !ad.limited {
		return
	}
	for _, k := range rateLimitHeaders {
		delete(h, k)
	}
	ad.limit.Headers(h)
}
