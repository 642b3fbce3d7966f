package artifact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/gatehouse-gw/gatehouse/internal/artifact/miniotest"
)

func s3Config(srv *miniotest.Server, bucket string) S3Config {
	return S3Config{
		Endpoint:  srv.Endpoint,
		Region:    miniotest.Region,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		Bucket:    bucket,
		PathStyle: true,
	}
}

// newS3 returns an S3 on a new bucket of srv.
func newS3(t *testing.T, srv *miniotest.Server, limit int64) (*S3, string) {
	t.Helper()
	bucket := srv.NewBucket(t)
	s, err := NewS3(t.Context(), s3Config(srv, bucket))
	if err != nil {
		t.Fatalf("NewS3() error = %v", err)
	}
	if limit > 0 {
		s.limit = limit
	}
	return s, bucket
}

func TestS3(t *testing.T) {
	testStore(t, func(t *testing.T, limit int64) Store {
		s, _ := newS3(t, miniotest.Shared(t), limit)
		return s
	})
}

func TestS3ConfigValidate(t *testing.T) {
	const (
		access = "AKIDEXAMPLE123"
		secret = "s3cr3t-value-that-must-not-leak"
	)
	valid := S3Config{Endpoint: "https://s3.example.com", AccessKey: access, SecretKey: secret, Bucket: "artifacts"}
	with := func(f func(*S3Config)) S3Config {
		c := valid
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  S3Config
		want []string // substrings of the error; none: valid
	}{
		{"https", valid, nil},
		{"bare host", with(func(c *S3Config) { c.Endpoint = "s3.example.com" }), nil},
		{"bare host and port", with(func(c *S3Config) { c.Endpoint = "s3.example.com:9000" }), nil},
		{"http with port", with(func(c *S3Config) { c.Endpoint = "http://127.0.0.1:9000" }), nil},
		{"trailing slash", with(func(c *S3Config) { c.Endpoint = "https://s3.example.com/" }), nil},
		{"zero value", S3Config{}, []string{"endpoint is empty", "bucket is empty", "access key is empty", "secret key is empty"}},
		{"scheme", with(func(c *S3Config) { c.Endpoint = "ftp://s3.example.com" }), []string{`scheme "ftp"`}},
		{"path", with(func(c *S3Config) { c.Endpoint = "https://s3.example.com/artifacts" }), []string{"has a path"}},
		{"port", with(func(c *S3Config) { c.Endpoint = "http://127.0.0.1:99999" }), []string{`port "99999"`}},
		{"no host", with(func(c *S3Config) { c.Endpoint = "https://:9000" }), []string{"no host"}},
		{"credentials in URL", with(func(c *S3Config) { c.Endpoint = "https://user:hunter22@s3.example.com" }), []string{"endpoint holds credentials"}},
		{"bucket too short", with(func(c *S3Config) { c.Bucket = "ab" }), []string{`bucket "ab"`, "shorter than 3"}},
		{"bucket dots", with(func(c *S3Config) { c.Bucket = "bad..name" }), []string{`bucket "bad..name"`}},
		{"two problems", with(func(c *S3Config) { c.Endpoint = "ftp://x"; c.SecretKey = "" }), []string{"scheme", "secret key is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to contain %q", err, w)
				}
			}
			for _, leak := range []string{access, secret, "hunter22"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("Validate() = %v: leaks %q", err, leak)
				}
			}
		})
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want endpoint
	}{
		{"https://s3.example.com", endpoint{host: "s3.example.com", secure: true}},
		{"s3.example.com:8443", endpoint{host: "s3.example.com:8443", secure: true}},
		{"http://127.0.0.1:9000", endpoint{host: "127.0.0.1:9000", secure: false}},
		{"https://[::1]:9000", endpoint{host: "[::1]:9000", secure: true}},
	} {
		if got, err := parseEndpoint(tc.in); err != nil || got != tc.want {
			t.Errorf("parseEndpoint(%q) = %+v, %v, want %+v, nil", tc.in, got, err, tc.want)
		}
	}
}

func TestNewS3WrongSecret(t *testing.T) {
	srv := miniotest.Shared(t)
	cfg := s3Config(srv, srv.NewBucket(t))
	cfg.SecretKey = "wrong-" + srv.SecretKey
	_, err := NewS3(t.Context(), cfg)
	if err == nil {
		t.Fatal("NewS3(wrong secret key) = nil error, want one")
	}
	for _, want := range []string{cfg.Bucket, srv.Endpoint, "credentials refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewS3(wrong secret key) error = %v, want it to contain %q", err, want)
		}
	}
	for _, leak := range []string{cfg.SecretKey, srv.SecretKey, cfg.AccessKey} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("NewS3(wrong secret key) error = %v: leaks a credential", err)
		}
	}
}

func TestNewS3MissingBucket(t *testing.T) {
	srv := miniotest.Shared(t)
	cfg := s3Config(srv, "no-such-bucket-"+strings.ToLower(t.Name()))
	_, err := NewS3(t.Context(), cfg)
	if err == nil {
		t.Fatal("NewS3(missing bucket) = nil error, want one")
	}
	for _, want := range []string{`"` + cfg.Bucket + `"`, "does not exist", srv.Endpoint} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewS3(missing bucket) error = %v, want it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), cfg.SecretKey) {
		t.Errorf("NewS3(missing bucket) error = %v: leaks the secret key", err)
	}
}

func TestNewS3Unreachable(t *testing.T) {
	// A port nothing listens on: the listener is closed before NewS3 runs.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := S3Config{Endpoint: "http://" + addr, Region: miniotest.Region, AccessKey: "gatehouse", SecretKey: "unreachable-secret", Bucket: "artifacts", PathStyle: true}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = NewS3(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), `bucket "artifacts"`) || !strings.Contains(err.Error(), addr) {
		t.Errorf("NewS3(unreachable) error = %v, want one naming the bucket and %s", err, addr)
	}
}

func TestS3BucketsAreSeparate(t *testing.T) {
	t.Parallel()
	srv := miniotest.Shared(t)
	a, _ := newS3(t, srv, 0)
	b, _ := newS3(t, srv, 0)
	info := mustPut(t, a, []byte("only in a"), "text/plain")
	if _, err := b.Stat(t.Context(), info.Digest); !errors.Is(err, ErrNotFound) {
		t.Errorf("b.Stat(artifact of a) error = %v, want ErrNotFound", err)
	}
	if list, err := b.List(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("b.List() = %+v, %v, want none", list, err)
	}
	if list, err := a.List(t.Context()); err != nil || len(list) != 1 || list[0] != info {
		t.Errorf("a.List() = %+v, %v, want [%+v]", list, err, info)
	}
}

func TestS3ObjectLayout(t *testing.T) {
	t.Parallel()
	srv := miniotest.Shared(t)
	s, bucket := newS3(t, srv, 0)
	body := []byte("openapi: 3.1.0\n")
	info := mustPut(t, s, body, "application/yaml")
	st, err := srv.Client(t).StatObject(t.Context(), bucket, "artifacts/sha256/"+info.Digest, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("StatObject(artifacts/sha256/%s) error = %v", info.Digest, err)
	}
	if st.ContentType != "application/yaml" || st.Size != int64(len(body)) {
		t.Errorf("object Content-Type, size = %q, %d, want %q, %d", st.ContentType, st.Size, "application/yaml", len(body))
	}
}

func TestS3ListIgnoresOtherObjects(t *testing.T) {
	t.Parallel()
	srv := miniotest.Shared(t)
	s, bucket := newS3(t, srv, 0)
	info := mustPut(t, s, []byte("ours"), "text/plain")
	c := srv.Client(t)
	for _, k := range []string{"other/file", "artifacts/sha256/not-a-digest", "artifacts/sha256/" + info.Digest + "/nested", "artifacts/readme"} {
		if _, err := c.PutObject(t.Context(), bucket, k, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatalf("PutObject(%s) error = %v", k, err)
		}
	}
	if list, err := s.List(t.Context()); err != nil || len(list) != 1 || list[0] != info {
		t.Errorf("List() = %+v, %v, want [%+v]", list, err, info)
	}
}

func TestS3PutRepairsDamagedObject(t *testing.T) {
	t.Parallel()
	srv := miniotest.Shared(t)
	s, bucket := newS3(t, srv, 0)
	body := []byte("the right bytes")
	info := mustPut(t, s, body, "text/plain")
	damage(t, srv, bucket, info.Digest, []byte("the wrong bytes")) // same size

	if got := mustPut(t, s, body, "application/json"); got != info {
		t.Errorf("Put(again) = %+v, want %+v (the first content type)", got, info)
	}
	obj, err := srv.Client(t).GetObject(t.Context(), bucket, key(info.Digest), minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if got, err := io.ReadAll(obj); err != nil || !bytes.Equal(got, body) {
		t.Errorf("object after Put = %q, %v, want %q", got, err, body)
	}
}

// damage overwrites the object of an artifact with other bytes, keeping its
// content type.
func damage(t *testing.T, srv *miniotest.Server, bucket, digest string, body []byte) {
	t.Helper()
	c := srv.Client(t)
	_, err := c.PutObject(t.Context(), bucket, key(digest), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{ContentType: "text/plain"})
	if err != nil {
		t.Fatalf("PutObject(%s) error = %v", key(digest), err)
	}
}

// TestS3FillContentTypes covers servers other than MinIO, whose listings
// carry no content types: List stats the objects instead.
func TestS3FillContentTypes(t *testing.T) {
	t.Parallel()
	s, _ := newS3(t, miniotest.Shared(t), 0)
	var want []Info
	for i, ct := range []string{"text/plain", "application/json", ""} {
		want = append(want, mustPut(t, s, blob(ct, 10+i), ct))
	}
	gone := digestOf([]byte("deleted since listed"))
	infos := []Info{{Digest: want[0].Digest, Size: want[0].Size}, want[1], {Digest: want[2].Digest, Size: want[2].Size}, {Digest: gone, Size: 3}}
	if err := s.fillContentTypes(t.Context(), infos, []int{0, 2, 3}); err != nil {
		t.Fatalf("fillContentTypes() error = %v", err)
	}
	want = append(want, Info{Digest: gone, Size: 3, ContentType: DefaultContentType})
	if !slices.Equal(infos, want) {
		t.Errorf("fillContentTypes() =\n%+v\nwant\n%+v", infos, want)
	}
}

func TestS3Redact(t *testing.T) {
	s := &S3{secrets: []string{"the-secret-key", "THEACCESSKEY"}}
	for _, tc := range []struct {
		name string
		err  error
		want string
		is   []error
	}{
		{"clean", errors.New("connection refused"), "connection refused", nil},
		{"secret", fmt.Errorf("server said: bad key the-secret-key for THEACCESSKEY: %w", context.DeadlineExceeded),
			"server said: bad key [redacted] for [redacted]: context deadline exceeded", []error{context.DeadlineExceeded}},
		{"not found", fmt.Errorf("%w: THEACCESSKEY", ErrNotFound), "artifact: not found: [redacted]", []error{ErrNotFound}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.redact(tc.err)
			if err.Error() != tc.want {
				t.Errorf("redact() = %q, want %q", err, tc.want)
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(redact(), %v) = false, want true", target)
				}
			}
			for e := err; e != nil; e = errors.Unwrap(e) {
				if strings.Contains(e.Error(), "the-secret-key") {
					t.Errorf("redact() unwraps to %q, which holds the secret", e)
				}
			}
		})
	}
}
