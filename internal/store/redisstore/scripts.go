package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts below are the only code that changes a store's keys. Each
// runs atomically in Redis, so that a mutation, its revision and its event
// are one step that no other instance can interleave with.
//
// Every script takes the same KEYS and first two ARGV:
//
//	KEYS[1] <prefix>rev     the store revision (INCR counter)
//	KEYS[2] <prefix>events  the change stream, one entry "<rev>-0" per revision
//	KEYS[3] <prefix>index   sorted set of live keys, all score 0 (lexical order)
//	KEYS[4] <prefix>leases  sorted set of keys with an expiry, score = expiry ms
//	ARGV[1] <prefix>kv:     the prefix of the value records
//	ARGV[2] history         the stream length kept (XADD MAXLEN)
//
// A value record <prefix>kv:<key> is a hash: v (value), r (revision of the
// last modification) and, for a lease, x (expiry, Unix milliseconds of
// Redis TIME). Time is always Redis's: instances with skewed clocks agree on
// when a lease ends.
//
// Revisions are Lua numbers (doubles): exact up to 2^53, which no store
// reaches. Counter values never go through Lua arithmetic (HINCRBY does it in
// C with int64 overflow checks), so the full int64 range works.
//
// Records are addressed by keys the scripts compute rather than pass in
// KEYS: fine on standalone Redis and Sentinel, not for Redis Cluster.
const scriptPrelude = `
local kREV, kEVENTS, kINDEX, kLEASES = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local kvp, history = ARGV[1], ARGV[2]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- remove deletes key's record and announces it; returns the new revision.
local function remove(key)
  redis.call('DEL', kvp .. key)
  redis.call('ZREM', kINDEX, key)
  redis.call('ZREM', kLEASES, key)
  local rev = redis.call('INCR', kREV)
  redis.call('XADD', kEVENTS, 'MAXLEN', history, string.format('%d-0', rev), 't', 'd', 'k', key)
  return rev
end

-- write gives key's record a new revision, sets or clears its expiry and
-- announces it. value nil means the record's v field is already in place.
local function write(key, value, expiry)
  local k = kvp .. key
  local rev = redis.call('INCR', kREV)
  local srev = string.format('%d', rev)
  if value then
    redis.call('HSET', k, 'v', value, 'r', srev)
  else
    redis.call('HSET', k, 'r', srev)
    value = redis.call('HGET', k, 'v')
  end
  if expiry then
    redis.call('HSET', k, 'x', string.format('%d', expiry))
    redis.call('ZADD', kLEASES, expiry, key)
  else
    redis.call('HDEL', k, 'x')
    redis.call('ZREM', kLEASES, key)
  end
  redis.call('ZADD', kINDEX, 0, key)
  redis.call('XADD', kEVENTS, 'MAXLEN', history, srev .. '-0', 't', 'p', 'k', key, 'v', value)
  return rev, value
end

-- live returns key's revision and expiry (or false) if it exists and has
-- not expired at now. An expired record is removed here, with its delete
-- event, so that watchers see the lease end before whatever comes next.
local function live(key, now)
  local rec = redis.call('HMGET', kvp .. key, 'r', 'x')
  if not rec[1] then
    return nil
  end
  local expiry = rec[2] and tonumber(rec[2])
  if expiry and expiry <= now then
    remove(key)
    return nil
  end
  return tonumber(rec[1]), expiry
end
`

// putScript: ARGV[3] key, ARGV[4] value, ARGV[5] IfRevision, ARGV[6] TTL in
// ms (0: none). Returns the new revision, or -1 if the condition failed.
var putScript = redis.NewScript(scriptPrelude + `
local key, value = ARGV[3], ARGV[4]
local ifrev, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
local cur = live(key, now)
if (ifrev == -1 and cur) or (ifrev > 0 and cur ~= ifrev) then
  return -1
end
local expiry = nil
if ttl > 0 then
  expiry = now + ttl
end
return (write(key, value, expiry))
`)

// deleteScript: ARGV[3] key, ARGV[4] ifRevision. Returns the revision of the
// deletion, 0 if the key is missing, -1 if the condition failed.
var deleteScript = redis.NewScript(scriptPrelude + `
local key, ifrev = ARGV[3], tonumber(ARGV[4])
local cur = live(key, now_ms())
if not cur then
  return 0
end
if ifrev > 0 and cur ~= ifrev then
  return -1
end
return remove(key)
`)

// incrScript: ARGV[3] key, ARGV[4] delta, ARGV[5] TTL in ms (0: keep the
// current expiry). Returns {revision, new value as decimal text}, or the
// HINCRBY error (not an integer, overflow) having changed nothing but an
// expired record's removal.
var incrScript = redis.NewScript(scriptPrelude + `
local key, ttl = ARGV[3], tonumber(ARGV[5])
local now = now_ms()
local _, expiry = live(key, now)
local res = redis.pcall('HINCRBY', kvp .. key, 'v', ARGV[4])
if type(res) == 'table' and res.err then
  return res
end
if ttl > 0 then
  expiry = now + ttl
end
local rev, value = write(key, nil, expiry or nil)
return {rev, value}
`)

// getScript: ARGV[3] key. Returns {value, revision}, or nil if the key is
// missing or expired. It writes nothing: an expired key is left to the
// reaper.
var getScript = redis.NewScript(scriptPrelude + `
local rec = redis.call('HMGET', kvp .. ARGV[3], 'v', 'r', 'x')
if not rec[2] or (rec[3] and tonumber(rec[3]) <= now_ms()) then
  return nil
end
return {rec[1], rec[2]}
`)

// listScript: ARGV[3], ARGV[4] the ZRANGEBYLEX bounds, ARGV[5] the most keys
// allowed. Returns {store revision, key, value, revision, key, ...} for the
// live keys in range, or an error reply if there are more than allowed.
var listScript = redis.NewScript(scriptPrelude + `
local limit = tonumber(ARGV[5])
local keys = redis.call('ZRANGEBYLEX', kINDEX, ARGV[3], ARGV[4], 'LIMIT', 0, limit + 1)
if #keys > limit then
  return redis.error_reply('TOOMANY more than ' .. ARGV[5] .. ' keys')
end
local now = now_ms()
local out = {redis.call('GET', kREV) or '0'}
for _, key in ipairs(keys) do
  local rec = redis.call('HMGET', kvp .. key, 'v', 'r', 'x')
  if rec[2] and not (rec[3] and tonumber(rec[3]) <= now) then
    out[#out + 1] = key
    out[#out + 1] = rec[1]
    out[#out + 1] = rec[2]
  end
end
return out
`)

// reapScript: ARGV[3] the most leases to remove. Removes due leases, each
// with a delete event, and returns how many. Running it twice, or from two
// instances at once, removes each lease once: a removed key leaves the
// leases set in the same atomic step.
var reapScript = redis.NewScript(scriptPrelude + `
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', kLEASES, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, key in ipairs(due) do
  local x = redis.call('HGET', kvp .. key, 'x')
  if not x then
    -- An index entry without its lease; writes keep the two in step, so
    -- this is only tidying up.
    redis.call('ZREM', kLEASES, key)
  elseif tonumber(x) <= now then
    remove(key)
    n = n + 1
  else
    redis.call('ZADD', kLEASES, x, key)
  end
end
return n
`)

// scripts lists every script, for loading them at Open.
var scripts = []*redis.Script{putScript, deleteScript, incrScript, getScript, listScript, reapScript}
