package artifact

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/artifact/miniotest"
)

func newCached(t *testing.T, remote Store, limit int64) *Cached {
	t.Helper()
	c, err := NewCached(remote, t.TempDir())
	if err != nil {
		t.Fatalf("NewCached() error = %v", err)
	}
	if limit > 0 {
		c.local.limit = limit
	}
	return c
}

func TestCachedS3(t *testing.T) {
	testStore(t, func(t *testing.T, limit int64) Store {
		s, _ := newS3(t, miniotest.Shared(t), limit)
		return newCached(t, s, limit)
	})
}

func TestCachedDir(t *testing.T) {
	testStore(t, func(t *testing.T, limit int64) Store {
		return newCached(t, newDir(t, limit), limit)
	})
}

// TestCachedServesWhileRemoteDown has one instance put an artifact, and a
// second, with a cache of its own over the same bucket, serve it: from the
// bucket first, then from its cache once MinIO is gone.
func TestCachedServesWhileRemoteDown(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t) // stopped below: not the shared one
	bucket := srv.NewBucket(t)
	instance := func() (*Cached, string) {
		s, err := NewS3(t.Context(), s3Config(srv, bucket))
		if err != nil {
			t.Fatalf("NewS3() error = %v", err)
		}
		dir := t.TempDir()
		c, err := NewCached(s, dir)
		if err != nil {
			t.Fatalf("NewCached() error = %v", err)
		}
		return c, dir
	}
	first, firstDir := instance()
	second, secondDir := instance()

	body := []byte(`{"openapi":"3.1.0","paths":{}}`)
	info := mustPut(t, first, body, "application/json")
	// Put fills the putting instance's cache too.
	if got, err := os.ReadFile(filepath.Join(firstDir, "sha256", info.Digest)); err != nil || !bytes.Equal(got, body) {
		t.Errorf("first instance's cache file after Put = %q, %v, want %q", got, err, body)
	}
	cached := filepath.Join(secondDir, "sha256", info.Digest)
	if _, err := os.Stat(cached); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("second instance has %s before any Open (%v)", cached, err)
	}
	if got, gotInfo := readArtifact(t, second, info.Digest); !bytes.Equal(got, body) || gotInfo != info {
		t.Fatalf("second.Open() = %q, %+v, want %q, %+v", got, gotInfo, body, info)
	}
	if got, err := os.ReadFile(cached); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("second instance's cache file = %q, %v, want %q", got, err, body)
	}
	uncached := mustPut(t, first, []byte("never fetched by the second"), "")

	srv.Stop()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if got, gotInfo := readArtifact(t, second, info.Digest); !bytes.Equal(got, body) || gotInfo != info {
		t.Errorf("second.Open(MinIO stopped) = %q, %+v, want %q, %+v", got, gotInfo, body, info)
	}
	if got, err := second.Stat(ctx, info.Digest); err != nil || got != info {
		t.Errorf("second.Stat(MinIO stopped) = %+v, %v, want %+v from the cache", got, err, info)
	}
	// What is not cached cannot be served, and is not reported missing
	// either: the remote store failed.
	if _, _, err := second.Open(ctx, uncached.Digest); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("second.Open(uncached, MinIO stopped) error = %v, want a remote failure", err)
	}
	if _, err := second.Stat(ctx, uncached.Digest); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("second.Stat(uncached, MinIO stopped) error = %v, want a remote failure", err)
	}
	if _, err := second.List(ctx); err == nil {
		t.Errorf("second.List(MinIO stopped) error = nil, want a remote failure")
	}
}

// TestCachedRejectsDamagedRemote damages an object in the bucket: an
// instance that fetches it must refuse to serve it and cache nothing.
func TestCachedRejectsDamagedRemote(t *testing.T) {
	t.Parallel()
	srv := miniotest.Shared(t)
	s, bucket := newS3(t, srv, 0)
	body := []byte("the original static body")
	info := mustPut(t, s, body, "text/plain")
	damage(t, srv, bucket, info.Digest, []byte("a different body, of some other size"))

	dir := t.TempDir()
	c, err := NewCached(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the first failure must not leave anything the second would serve
		rc, _, err := c.Open(t.Context(), info.Digest)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("Open(damaged) error = %v, want ErrDigestMismatch", err)
		}
	}
	if names := dirNames(t, filepath.Join(dir, "sha256")); len(names) != 0 {
		t.Errorf("cache files after a damaged fetch = %q, want none", names)
	}
	// Putting the content again repairs the object, and the cache fills.
	mustPut(t, s, body, "text/plain")
	if got, gotInfo := readArtifact(t, c, info.Digest); !bytes.Equal(got, body) || gotInfo != info {
		t.Errorf("Open(repaired) = %q, %+v, want %q, %+v", got, gotInfo, body, info)
	}
}

// TestCachedRefetchesHalfWritten damages the cached copy: Open must fetch
// the artifact again rather than serve the damaged copy.
func TestCachedRefetchesHalfWritten(t *testing.T) {
	t.Parallel()
	remote := newDir(t, 0)
	c := newCached(t, remote, 0)
	body := []byte("served whole, or not at all")
	info := mustPut(t, c, body, "text/plain")
	if err := os.Truncate(c.local.contentPath(info.Digest), 5); err != nil {
		t.Fatal(err)
	}
	if got, gotInfo := readArtifact(t, c, info.Digest); !bytes.Equal(got, body) || gotInfo != info {
		t.Errorf("Open(damaged cache) = %q, %+v, want %q, %+v", got, gotInfo, body, info)
	}
}

// countingStore counts the Opens of a real store, to see how often Cached
// goes to it.
type countingStore struct {
	Store
	opens atomic.Int64
}

func (s *countingStore) Open(ctx context.Context, digest string) (io.ReadCloser, Info, error) {
	s.opens.Add(1)
	return s.Store.Open(ctx, digest)
}

// TestCachedFetchesOnce has many callers miss the cache at once: the
// remote store must be asked once.
func TestCachedFetchesOnce(t *testing.T) {
	t.Parallel()
	s, _ := newS3(t, miniotest.Shared(t), 0)
	body := blob("popular", 1<<20)
	info := mustPut(t, s, body, "text/plain")
	remote := &countingStore{Store: s}
	c := newCached(t, remote, 0)

	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			rc, _, err := c.Open(t.Context(), info.Digest)
			if err != nil {
				t.Errorf("Open() error = %v", err)
				return
			}
			defer rc.Close()
			if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, body) {
				t.Errorf("Open() content = %d bytes, %v, want the %d put", len(got), err, len(body))
			}
		})
	}
	wg.Wait()
	if got := remote.opens.Load(); got != 1 {
		t.Errorf("remote Opens = %d, want 1", got)
	}
}

func TestNewCachedNeedsRemote(t *testing.T) {
	if _, err := NewCached(nil, t.TempDir()); err == nil {
		t.Error("NewCached(nil remote) error = nil, want one")
	}
}
