// Package apikey creates, stores and checks API keys. A key is shown in
// clear exactly once, when it is created; the store keeps only its hash. The
// Manager is the write side (create, import, revoke, update, delete); the
// Index is the data plane's in-memory view, which checks a presented key in
// O(1) without a store round trip and is kept current by watching the store.
package apikey

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

// Prefix is the store key prefix under which every key record lives, as
// Prefix + ID. The Index watches it.
const Prefix = "apikeys/"

// storeKey returns the store key of the record with the given ID.
func storeKey(id string) string { return Prefix + id }

// HashAlg names how a key's Hash was computed from the clear key.
type HashAlg string

// Hash algorithms. Generated keys carry 256 bits of entropy, so a plain
// SHA-256 is as strong as the key itself. Imported keys are chosen by people
// and may be guessable, so their hash is keyed with the server secret: a
// leaked store alone does not allow an offline dictionary attack.
const (
	HashSHA256     HashAlg = "sha256"
	HashHMACSHA256 HashAlg = "hmac-sha256"
)

// Key is the stored record of one API key, kept as JSON at Prefix + ID. It
// never holds the clear key. The zero value is not a usable key.
type Key struct {
	// ID is the public identifier of the key (12 hex characters), used by the
	// admin API, logs and metrics.
	ID string `json:"id"`
	// Name is an optional label for people.
	Name string `json:"name,omitempty"`
	// Hash is the hex-encoded digest of the clear key, computed with HashAlg.
	Hash string `json:"hash"`
	// HashAlg says how Hash was computed.
	HashAlg HashAlg `json:"hash_alg"`
	// Prefix is the start of the clear key, so that people can tell keys
	// apart: "gh_" and 4 of its 43 random characters for a generated key;
	// empty for imported keys, which may be low-entropy values chosen by a
	// person, where any part shown would weaken them.
	Prefix string `json:"prefix,omitempty"`
	// CreatedAt is when the key was created or imported.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the key stops being valid; zero means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Revoked marks a key that must no longer be accepted. The record is
	// kept for audit until it is deleted.
	Revoked bool `json:"revoked,omitempty"`
	// RevokedAt is when the key was revoked; zero when it is not.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
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

	// Revision is the store revision of this version of the record, filled
	// in when it is read or written; it is not part of the stored JSON. The
	// Index uses it to ignore a version older than the one it holds.
	Revision int64 `json:"-"`
}

// Limit is a per-key request rate: Requests per Per, with bursts of up to
// Burst requests. Per is written as a duration string ("1m") or a number of
// seconds (60).
type Limit struct {
	// Requests is how many requests are allowed per Per; it must be positive.
	Requests int `json:"requests"`
	// Per is the window the rate is expressed over; it must be positive.
	Per config.Duration `json:"per"`
	// Burst is how many requests may be made at once; zero means Requests.
	Burst int `json:"burst,omitempty"`
}

// Period is the calendar period of a Quota.
type Period string

// Quota periods.
const (
	PeriodDay   Period = "day"
	PeriodMonth Period = "month"
)

// Quota caps how many requests a key may make per calendar period (UTC).
type Quota struct {
	// Requests is the cap per period; it must be positive.
	Requests int64 `json:"requests"`
	// Period is PeriodDay or PeriodMonth.
	Period Period `json:"period"`
}

// encode returns the stored form of k.
func encode(k Key) ([]byte, error) {
	b, err := json.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("encode key %s: %w", k.ID, err)
	}
	return b, nil
}

// decode reads a stored record; id and rev come from the store key and
// revision, which are authoritative over the record's own id field.
func decode(id string, value []byte, rev int64) (Key, error) {
	var k Key
	if err := json.Unmarshal(value, &k); err != nil {
		return Key{}, fmt.Errorf("decode key %s at revision %d: %w", id, rev, err)
	}
	k.ID = id
	k.Revision = rev
	return k, nil
}
