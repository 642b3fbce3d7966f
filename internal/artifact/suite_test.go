package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/artifact/miniotest"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// openFunc returns a new, empty store whose Put accepts at most limit bytes
// (MaxSize if limit is 0).
type openFunc func(t *testing.T, limit int64) Store

// testStore is the conformance suite every Store runs. Its subtests run in
// parallel, each on a store of its own.
func testStore(t *testing.T, open openFunc) {
	for _, tc := range []struct {
		name string
		test func(t *testing.T, open openFunc)
	}{
		{"PutOpen", testPutOpen},
		{"PutTwice", testPutTwice},
		{"NotFound", testNotFound},
		{"BadDigest", testBadDigest},
		{"List", testList},
		{"TooLarge", testTooLarge},
		{"ConcurrentSame", testConcurrentSame},
		{"ConcurrentDistinct", testConcurrentDistinct},
		{"Canceled", testCanceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, open)
		})
	}
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// blob returns n bytes that differ with seed.
func blob(seed string, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s-%d;", seed, i)
	}
	return b.Bytes()[:n]
}

func mustPut(t *testing.T, st Store, body []byte, ct string) Info {
	t.Helper()
	info, err := st.Put(t.Context(), bytes.NewReader(body), ct)
	if err != nil {
		t.Fatalf("Put(%d bytes, %q) error = %v", len(body), ct, err)
	}
	return info
}

// readArtifact opens digest and returns its content and Info.
func readArtifact(t *testing.T, st Store, digest string) ([]byte, Info) {
	t.Helper()
	rc, info, err := st.Open(t.Context(), digest)
	if err != nil {
		t.Fatalf("Open(%s) error = %v", digest, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", digest, err)
	}
	return got, info
}

func testPutOpen(t *testing.T, open openFunc) {
	st := open(t, 0)
	for _, tc := range []struct {
		name   string
		body   []byte
		ct     string
		wantCT string
	}{
		{"openapi", []byte(`{"openapi":"3.1.0"}`), "application/json", "application/json"},
		{"no content type", []byte("static body"), "", DefaultContentType},
		{"parameters kept", []byte("<p>hi</p>"), "text/html; charset=utf-8", "text/html; charset=utf-8"},
		{"empty", []byte{}, "text/plain", "text/plain"},
		{"binary 1 MiB", blob("binary", 1<<20), "application/octet-stream", "application/octet-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := Info{Digest: digestOf(tc.body), Size: int64(len(tc.body)), ContentType: tc.wantCT}
			if got := mustPut(t, st, tc.body, tc.ct); got != want {
				t.Fatalf("Put() = %+v, want %+v", got, want)
			}
			got, info := readArtifact(t, st, want.Digest)
			if !bytes.Equal(got, tc.body) {
				t.Errorf("Open() content = %d bytes %q..., want %d bytes %q...", len(got), head(got), len(tc.body), head(tc.body))
			}
			if info != want {
				t.Errorf("Open() info = %+v, want %+v", info, want)
			}
			if info, err := st.Stat(t.Context(), want.Digest); err != nil || info != want {
				t.Errorf("Stat() = %+v, %v, want %+v, nil", info, err, want)
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 32)] }

func testPutTwice(t *testing.T, open openFunc) {
	st := open(t, 0)
	body := []byte("openapi: 3.1.0\n")
	first := mustPut(t, st, body, "application/yaml")
	// The same content again, even with another content type, is the same
	// artifact.
	for _, ct := range []string{"application/yaml", "text/plain"} {
		if got := mustPut(t, st, body, ct); got != first {
			t.Errorf("Put(same content, %q) = %+v, want %+v", ct, got, first)
		}
	}
	infos, err := st.List(t.Context())
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	if want := []Info{first}; !slices.Equal(infos, want) {
		t.Errorf("List() = %+v, want %+v", infos, want)
	}
}

func testNotFound(t *testing.T, open openFunc) {
	st := open(t, 0)
	mustPut(t, st, []byte("present"), "")
	missing := digestOf([]byte("absent"))
	if rc, _, err := st.Open(t.Context(), missing); !errors.Is(err, ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Errorf("Open(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := st.Stat(t.Context(), missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(missing) error = %v, want ErrNotFound", err)
	}
}

func testBadDigest(t *testing.T, open openFunc) {
	st := open(t, 0)
	for _, d := range []string{
		"",
		"abc",
		strings.ToUpper(digestOf([]byte("x"))),
		strings.Repeat("g", 64),
		"../../../../etc/passwd",
		digestOf([]byte("x")) + ".json",
	} {
		t.Run(strconv.Quote(d), func(t *testing.T) {
			want := strconv.Quote(clip(d))
			rc, _, err := st.Open(t.Context(), d)
			if err == nil {
				rc.Close()
			}
			if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), want) {
				t.Errorf("Open(%q) error = %v, want a digest error quoting %s", d, err, want)
			}
			_, err = st.Stat(t.Context(), d)
			if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), want) {
				t.Errorf("Stat(%q) error = %v, want a digest error quoting %s", d, err, want)
			}
		})
	}
}

func testList(t *testing.T, open openFunc) {
	st := open(t, 0)
	infos, err := st.List(t.Context())
	if err != nil || len(infos) != 0 {
		t.Fatalf("List(empty store) = %+v, %v, want none", infos, err)
	}
	var want []Info
	for i := range 7 {
		want = append(want, mustPut(t, st, blob(fmt.Sprint("list", i), 100+i), fmt.Sprintf("text/x-%d", i)))
	}
	slices.SortFunc(want, func(a, b Info) int { return strings.Compare(a.Digest, b.Digest) })
	infos, err = st.List(t.Context())
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	if !slices.Equal(infos, want) {
		t.Errorf("List() =\n%+v\nwant\n%+v", infos, want)
	}
}

func testTooLarge(t *testing.T, open openFunc) {
	const limit = 1024
	st := open(t, limit)
	if info := mustPut(t, st, blob("fits", limit), ""); info.Size != limit {
		t.Errorf("Put(%d bytes).Size = %d, want %d", limit, info.Size, limit)
	}
	over := blob("over", limit+1)
	_, err := st.Put(t.Context(), bytes.NewReader(over), "")
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), strconv.Itoa(limit)) {
		t.Fatalf("Put(%d bytes) error = %v, want ErrTooLarge saying the limit %d", limit+1, err, limit)
	}
	if _, err := st.Stat(t.Context(), digestOf(over)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(rejected content) error = %v, want ErrNotFound", err)
	}
}

func testConcurrentSame(t *testing.T, open openFunc) {
	st := open(t, 0)
	body := blob("same", 256<<10)
	want := Info{Digest: digestOf(body), Size: int64(len(body)), ContentType: "text/plain"}
	const n = 8
	infos := make([]Info, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			infos[i], errs[i] = st.Put(t.Context(), bytes.NewReader(body), "text/plain")
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || infos[i] != want {
			t.Errorf("Put #%d = %+v, %v, want %+v, nil", i, infos[i], errs[i], want)
		}
	}
	got, _ := readArtifact(t, st, want.Digest)
	if !bytes.Equal(got, body) {
		t.Errorf("Open() content = %d bytes, want the %d put", len(got), len(body))
	}
	if list, err := st.List(t.Context()); err != nil || !slices.Equal(list, []Info{want}) {
		t.Errorf("List() = %+v, %v, want [%+v]", list, err, want)
	}
}

func testConcurrentDistinct(t *testing.T, open openFunc) {
	st := open(t, 0)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = st.Put(t.Context(), bytes.NewReader(blob(fmt.Sprint("distinct", i), 4096)), "")
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Put() error = %v", err)
	}
	for i := range n {
		body := blob(fmt.Sprint("distinct", i), 4096)
		if got, _ := readArtifact(t, st, digestOf(body)); !bytes.Equal(got, body) {
			t.Errorf("Open(#%d) content differs from what was put", i)
		}
	}
	if list, err := st.List(t.Context()); err != nil || len(list) != n {
		t.Errorf("List() = %d artifacts, %v, want %d", len(list), err, n)
	}
}

func testCanceled(t *testing.T, open openFunc) {
	st := open(t, 0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	body := []byte("never stored")
	if _, err := st.Put(ctx, bytes.NewReader(body), ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Put(canceled context) error = %v, want context.Canceled", err)
	}
	if _, err := st.Stat(t.Context(), digestOf(body)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(after canceled Put) error = %v, want ErrNotFound", err)
	}
}
