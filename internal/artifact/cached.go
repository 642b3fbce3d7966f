package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sync/singleflight"
)

var _ Store = (*Cached)(nil)

// fillAttempts bounds how many times Open retries a shared fetch that ended
// because the caller that started it went away.
const fillAttempts = 3

// Cached is a Store that keeps a local copy (a Dir) of the artifacts of a
// remote store, typically an S3 shared by every gateway instance.
//
// Open serves the local copy when there is a complete one; otherwise it
// fetches the artifact from the remote store once, however many callers
// ask at the same time, checks that its SHA-256 is the digest, stores it
// locally, and serves that. An artifact in the local copy is therefore
// served without the remote store, which may be down. Put writes to the
// remote store first, then to the local copy. Stat and List ask the remote
// store, which knows about artifacts other instances put; Stat falls back to
// the local copy when the remote store fails.
//
// Cached is safe for concurrent use. An Open of a cached artifact costs
// what Dir.Open costs.
type Cached struct {
	remote  Store
	local   *Dir
	fetches singleflight.Group // keyed by digest
}

// NewCached returns a Cached in front of remote, keeping its copy under dir
// (see NewDir).
func NewCached(remote Store, dir string) (*Cached, error) {
	if remote == nil {
		return nil, errors.New("artifact: cached store needs a remote store")
	}
	local, err := NewDir(dir)
	if err != nil {
		return nil, err
	}
	return &Cached{remote: remote, local: local}, nil
}

// Put stores the content of r in the remote store, then in the local copy.
// See Store.
func (c *Cached) Put(ctx context.Context, r io.Reader, contentType string) (Info, error) {
	ct, err := normalizeContentType(contentType)
	if err != nil {
		return Info{}, err
	}
	// Spool next to the local copy: r can be read once, and both stores
	// need the content.
	sp, err := spool(ctx, c.local.root, r, c.local.limit)
	if err != nil {
		return Info{}, err
	}
	defer sp.discard()
	info, err := c.remote.Put(ctx, sp.reader(), ct)
	if err != nil {
		return Info{}, err
	}
	if info.Digest != sp.digest {
		return Info{}, fmt.Errorf("%w: remote store stored %s as %s", ErrDigestMismatch, sp.digest, info.Digest)
	}
	// The remote Info wins: the remote store may already have had the
	// artifact, with another content type.
	if _, err := c.local.commit(sp, info.ContentType); err != nil {
		return Info{}, err
	}
	return info, nil
}

// Open returns the local copy of an artifact, fetching it first if there
// is none. See Store.
func (c *Cached) Open(ctx context.Context, digest string) (io.ReadCloser, Info, error) {
	if err := ValidDigest(digest); err != nil {
		return nil, Info{}, err
	}
	// Any local failure, a half-written copy included, is a miss: the
	// fetch replaces the copy.
	if rc, info, err := c.local.Open(ctx, digest); err == nil {
		return rc, info, nil
	}
	if err := c.fill(ctx, digest); err != nil {
		return nil, Info{}, err
	}
	return c.local.Open(ctx, digest)
}

// fill fetches an artifact into the local copy, sharing the fetch with the
// concurrent callers that ask for the same digest.
func (c *Cached) fill(ctx context.Context, digest string) error {
	for attempt := 1; ; attempt++ {
		ch := c.fetches.DoChan(digest, func() (any, error) {
			return nil, c.fetch(ctx, digest)
		})
		select {
		case <-ctx.Done():
			return fmt.Errorf("artifact: fetch %s: %w", digest, ctx.Err())
		case res := <-ch:
			// The fetch ran under the context of the caller that started
			// it; if that one went away, try again under ours.
			stale := errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded)
			if stale && ctx.Err() == nil && attempt < fillAttempts {
				continue
			}
			return res.Err
		}
	}
}

// fetch copies an artifact from the remote store into the local copy if
// its content has the digest.
func (c *Cached) fetch(ctx context.Context, digest string) error {
	// A caller that missed just before the previous fetch committed starts
	// a fetch of its own: it needs none.
	if _, err := c.local.stat(digest); err == nil {
		return nil
	}
	rc, info, err := c.remote.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	sp, err := spool(ctx, c.local.root, rc, c.local.limit)
	if err != nil {
		return fmt.Errorf("artifact: fetch %s: %w", digest, err)
	}
	defer sp.discard()
	if sp.digest != digest {
		return fmt.Errorf("%w: the remote store's artifact %s has content of digest %s (%d bytes): it is damaged; not cached", ErrDigestMismatch, digest, sp.digest, sp.size)
	}
	_, err = c.local.commit(sp, info.ContentType)
	return err
}

// Stat returns the Info of an artifact from the remote store, or from the
// local copy if the remote store fails. See Store.
func (c *Cached) Stat(ctx context.Context, digest string) (Info, error) {
	if err := ValidDigest(digest); err != nil {
		return Info{}, err
	}
	info, err := c.remote.Stat(ctx, digest)
	if err == nil || errors.Is(err, ErrNotFound) {
		return info, err
	}
	if local, lerr := c.local.Stat(ctx, digest); lerr == nil {
		return local, nil
	}
	return Info{}, err
}

// List lists the artifacts of the remote store. See Store.
func (c *Cached) List(ctx context.Context) ([]Info, error) {
	return c.remote.List(ctx)
}
