package redislimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-gw/gatehouse/internal/ratelimit"
)

// allowScript is the GCRA step of ratelimit.Local, run atomically in Redis
// on one key, at Redis's time.
//
//	KEYS[1]  the key's TAT: decimal Unix nanoseconds, or absent when the
//	         allowance is full
//	ARGV[1]  t, the emission interval (Per/Requests), in nanoseconds
//	ARGV[2]  tau = Burst × t, how far ahead of now the TAT may be
//
// It returns ahead > 0 when allowed (the TAT, advanced by t, is now ahead
// of now by that many nanoseconds) and -(ahead - tau) < 0, minus the wait,
// when denied; a denied request changes nothing.
//
// Lua numbers are doubles, exact to 2^53 only: Unix nanoseconds (about
// 2^60) are not, so times are kept as whole seconds plus nanoseconds and
// only differences from now, which fit, are formed. Redis's TIME is in
// microseconds, a whole number of nanoseconds. math.fmod is exact, where
// x % m computes x - floor(x/m)*m with a rounded division.
//
// TIME makes the script non-deterministic: it must be replicated by its
// effects (the SET), which redis.replicate_commands asks for on Redis 5 and
// 6 and is always the case from Redis 7, where the call does nothing.
var allowScript = redis.NewScript(`
redis.replicate_commands()
local t, tau = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = redis.call('TIME')
local s, ns = tonumber(now[1]), tonumber(now[2]) * 1000
local ahead = t
local tat = redis.call('GET', KEYS[1])
if tat then
  local ts, tns = tonumber(string.sub(tat, 1, -10)), tonumber(string.sub(tat, -9))
  if ts and tns then
    local d = (ts - s) * 1e9 + (tns - ns)
    if d > 0 then
      ahead = d + t
    end
  end
end
if ahead > tau then
  return tau - ahead
end
local x = ns + ahead
local xns = math.fmod(x, 1e9)
-- The key expires when the allowance is full again (its TAT), when it no
-- longer changes any decision.
redis.call('SET', KEYS[1], string.format('%d%09d', s + (x - xns) / 1e9, xns),
  'PX', string.format('%d', math.ceil(ahead / 1e6)))
return ahead
`)

// errZero is a script reply that is neither allowed nor denied.
var errZero = errors.New("rate limit script returned 0")

// redisAllow runs the script for key under limit, which must be valid, and
// builds the Decision as ratelimit.Local does.
func (l *Limiter) redisAllow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	burst := limit.Burst
	if burst == 0 {
		burst = limit.Requests
	}
	t := int64(limit.Per) / int64(limit.Requests)
	tau := int64(burst) * t
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	r, err := allowScript.Run(ctx, l.client, []string{l.prefix + key}, t, tau).Int64()
	switch {
	case err != nil:
		return ratelimit.Decision{}, fmt.Errorf("redis: %w", err)
	case r > 0:
		return ratelimit.Decision{
			Allowed:   true,
			Limit:     burst,
			Remaining: int((tau - r) / t),
			Reset:     time.Duration(r),
			Policy:    limit,
		}, nil
	case r < 0:
		return ratelimit.Decision{Limit: burst, Reset: time.Duration(-r), RetryAfter: time.Duration(-r), Policy: limit}, nil
	default:
		return ratelimit.Decision{}, fmt.Errorf("redis: %w", errZero)
	}
}
