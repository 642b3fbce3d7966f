// Package artifact stores the files attached to APIs (OpenAPI documents,
// static response bodies), addressed by the SHA-256 of their content.
//
// Three Store implementations: Dir keeps artifacts in a local directory
// (single-instance mode), S3 keeps them in a bucket that every gateway
// instance shares, and Cached puts a local Dir in front of a remote store so
// that each instance fetches an artifact once, verifies it, and keeps serving
// it when the remote store is down. Handler serves a Store over the admin API.
package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Info describes a stored artifact.
type Info struct {
	// Digest is the lowercase hex SHA-256 of the content, 64 characters.
	Digest string
	// Size is the content's length in bytes.
	Size int64
	// ContentType is the media type given at Put, or
	// "application/octet-stream" if none was given.
	ContentType string
}

// Store is content-addressed blob storage. Implementations are safe for
// concurrent use.
type Store interface {
	// Put reads r to the end (at most MaxSize bytes: more is an error
	// wrapping ErrTooLarge), stores it under its digest and returns its
	// Info. Putting the same content twice is a no-op returning the same
	// Info, content type included.
	Put(ctx context.Context, r io.Reader, contentType string) (Info, error)
	// Open returns the content and its Info, or an error wrapping
	// ErrNotFound. The caller closes the content.
	Open(ctx context.Context, digest string) (io.ReadCloser, Info, error)
	// Stat returns Info or an error wrapping ErrNotFound.
	Stat(ctx context.Context, digest string) (Info, error)
	// List returns every artifact's Info, sorted by digest. It returns at
	// most MaxList of them: when there are more, it returns the first
	// MaxList with an error wrapping ErrTruncated.
	List(ctx context.Context) ([]Info, error)
}

var (
	// ErrNotFound is wrapped by the errors of Open and Stat when no
	// artifact has the digest.
	ErrNotFound = errors.New("artifact: not found")
	// ErrTooLarge is wrapped by the error of Put when the content is longer
	// than MaxSize.
	ErrTooLarge = errors.New("artifact: content too large")
	// ErrDigestMismatch is wrapped by the error of Cached.Open when the
	// remote store returns content whose SHA-256 is not the digest asked
	// for: the object in the bucket is corrupted, and nothing is cached.
	ErrDigestMismatch = errors.New("artifact: digest mismatch")
	// ErrTruncated is wrapped by the error of List when there are more than
	// MaxList artifacts; the first MaxList are returned with it.
	ErrTruncated = errors.New("artifact: list truncated")
)

const (
	// MaxSize is the largest artifact, in bytes: 64 MiB.
	MaxSize = 64 << 20
	// MaxList is the most artifacts List returns.
	MaxList = 10000
	// DefaultContentType is the content type of an artifact put without
	// one.
	DefaultContentType = "application/octet-stream"
)

// digestLen is the length of a hex SHA-256.
const digestLen = 64

// ValidDigest reports whether s is a digest: 64 lowercase hex characters.
// The error quotes s, shortened if long.
func ValidDigest(s string) error {
	if len(s) != digestLen {
		return fmt.Errorf("artifact: invalid digest %q: %d characters, want %d lowercase hex characters (a SHA-256)", clip(s), len(s), digestLen)
	}
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("artifact: invalid digest %q: character %q at offset %d, want lowercase hex (0-9, a-f)", clip(s), c, i)
		}
	}
	return nil
}

// clip shortens a value quoted in an error: a digest arrives in URL paths,
// which can be long.
func clip(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// normalizeContentType returns ct, or DefaultContentType when ct is empty. A
// content type with characters an HTTP header cannot carry is an error: the
// S3 backend and Handler send it as a header.
func normalizeContentType(ct string) (string, error) {
	if ct == "" {
		return DefaultContentType, nil
	}
	const limit = 256
	if len(ct) > limit {
		return "", fmt.Errorf("artifact: content type %q is longer than %d bytes", clip(ct), limit)
	}
	for i := range len(ct) {
		if c := ct[i]; c < 0x20 && c != '\t' || c >= 0x7f {
			return "", fmt.Errorf("artifact: content type %q: byte %#x at offset %d, want printable ASCII", clip(ct), c, i)
		}
	}
	return ct, nil
}
