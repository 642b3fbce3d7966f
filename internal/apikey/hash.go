package apikey

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"sync"
)

// GeneratedPrefix starts every generated key, so that secret scanners and
// people can recognise a Gatehouse key.
const GeneratedPrefix = "gh_"

// keyBytes is the entropy of a generated key: 256 bits.
const keyBytes = 32

// idBytes is the length of a key ID before hex encoding (12 characters):
// 48 random bits, ample for the number of keys of one gateway, and a clash
// is caught by the conditional create and retried.
const idBytes = 6

// MinSecretLen is the shortest Config.Secret accepted.
const MinSecretLen = 16

// generate returns a new clear key: GeneratedPrefix and 32 random bytes in
// unpadded base64url, 46 characters in all.
func generate() string {
	var b [keyBytes]byte
	rand.Read(b[:]) // never fails: crypto/rand.Read crashes the program instead
	return GeneratedPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// newID returns a random key ID.
func newID() string {
	var b [idBytes]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID reports whether id has the shape of a key ID, so that an ID taken
// from a URL cannot address anything outside Prefix.
func validID(id string) bool {
	if len(id) != 2*idBytes {
		return false
	}
	for i := range len(id) {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// displayPrefix returns the part of a clear key kept in Key.Prefix.
func displayPrefix(key string, alg HashAlg) string {
	switch {
	case alg == HashSHA256 && len(key) > len(GeneratedPrefix)+4:
		return key[:len(GeneratedPrefix)+4]
	}
	return ""
}

// digestSHA256 hashes a generated key. Keys up to MaxKeyLen are copied to
// a stack buffer first: a plain []byte(key) conversion is heap-allocated
// for strings over 32 bytes (measured with go1.26), and a 46-byte generated
// key is over.
func digestSHA256(key string) [sha256.Size]byte {
	if len(key) > MaxKeyLen {
		return sha256.Sum256([]byte(key))
	}
	var buf [MaxKeyLen]byte
	return sha256.Sum256(buf[:copy(buf[:], key)])
}

// macPool reuses HMAC-SHA256 states keyed with one secret, so that checking
// an imported key allocates nothing: crypto/hmac keeps the keyed state
// marshalled after the first use, which makes Reset cheap. A sync.Pool has
// per-P caches, so concurrent checks do not contend on a lock.
type macPool struct{ pool sync.Pool }

// macState is one pooled HMAC with scratch space for its input and output,
// so that passing them through the hash.Hash interface does not allocate.
type macState struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

func newMACPool(secret []byte) *macPool {
	secret = append([]byte(nil), secret...)
	mp := &macPool{}
	mp.pool.New = func() any {
		return &macState{h: hmac.New(sha256.New, secret), in: make([]byte, 0, MaxKeyLen)}
	}
	return mp
}

// digest returns HMAC-SHA256(secret, key).
func (mp *macPool) digest(key string) [sha256.Size]byte {
	m := mp.pool.Get().(*macState)
	m.h.Reset()
	m.in = append(m.in[:0], key...)
	m.h.Write(m.in)
	m.h.Sum(m.sum[:0])
	out := m.sum
	mp.pool.Put(m)
	return out
}
