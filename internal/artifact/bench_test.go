package artifact

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkCachedOpenHit measures what serving a cached artifact costs on
// the request path: the Open of the local copy, and its read.
func BenchmarkCachedOpenHit(b *testing.B) {
	remote, err := NewDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewCached(remote, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	body := blob("bench", 16<<10)
	info, err := c.Put(b.Context(), bytes.NewReader(body), "application/json")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rc, _, err := c.Open(b.Context(), info.Digest)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(rc, buf[:len(body)]); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// TestCachedOpenHitAllocs holds the cache hit to its allocation budget:
// 18 allocations measured with Go 1.26 (open, stat, metadata read and
// decode), and some slack.
func TestCachedOpenHitAllocs(t *testing.T) {
	const budget = 24
	c := newCached(t, newDir(t, 0), 0)
	info := mustPut(t, c, blob("allocs", 4096), "application/json")
	allocs := testing.AllocsPerRun(100, func() {
		rc, _, err := c.Open(t.Context(), info.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	})
	if allocs > budget {
		t.Errorf("Cached.Open(hit) = %.0f allocations, want at most %d", allocs, budget)
	}
	t.Logf("Cached.Open(hit) = %.0f allocations", allocs)
}
