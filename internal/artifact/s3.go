package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"golang.org/x/sync/errgroup"
)

var _ Store = (*S3)(nil)

const (
	// keyPrefix starts the object key of every artifact; the digest ends it.
	keyPrefix = "artifacts/sha256/"
	// checkTimeout bounds NewS3's bucket check when its context has no
	// deadline.
	checkTimeout = 10 * time.Second
	// maxRetries is how many times the client tries a request. minio-go
	// defaults to 10, with backoff: seconds of retrying a dead endpoint
	// before Cached can fall back to its local copy.
	maxRetries = 3
	// statWorkers bounds the concurrent StatObject calls of List.
	statWorkers = 8
)

// S3Config locates a bucket. It is a wire type, filled from configuration;
// NewS3 compiles it into an S3. The zero value is invalid: Validate lists
// what is missing.
type S3Config struct {
	// Endpoint is "https://host[:port]", "http://host:port", or a bare
	// "host[:port]", which means https.
	Endpoint string
	// Region is the bucket's region; empty lets the client ask the server.
	Region string
	// AccessKey and SecretKey are the credentials. They never appear in
	// errors or logs.
	AccessKey, SecretKey string
	// Bucket is the bucket to keep artifacts in. It must exist.
	Bucket string
	// PathStyle addresses the bucket as a path (https://host/bucket/key),
	// as MinIO and most self-hosted servers want, instead of as a host
	// name (https://bucket.host/key, virtual-hosted style).
	PathStyle bool
}

// Validate reports every problem of the configuration, joined.
func (c S3Config) Validate() error {
	var errs []error
	if _, err := parseEndpoint(c.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("bucket is empty: set it to the bucket that keeps the artifacts"))
	} else if err := CheckBucket(c.Bucket); err != nil {
		errs = append(errs, err)
	}
	if c.AccessKey == "" {
		errs = append(errs, errors.New("access key is empty: set it"))
	}
	if c.SecretKey == "" {
		errs = append(errs, errors.New("secret key is empty: set it"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("artifact: invalid S3 configuration: %w", errors.Join(errs...))
}

// endpoint is a parsed S3Config.Endpoint.
type endpoint struct {
	host   string // host[:port], as minio.New wants it
	secure bool
}

func (e endpoint) String() string {
	if e.secure {
		return "https://" + e.host
	}
	return "http://" + e.host
}

// CheckEndpoint reports an S3Config.Endpoint that NewS3 would refuse,
// without connecting. The error quotes the value unless it may hold a
// password.
func CheckEndpoint(s string) error {
	_, err := parseEndpoint(s)
	return err
}

// CheckBucket reports a bucket name that S3 would refuse.
func CheckBucket(name string) error {
	if err := s3utils.CheckValidBucketNameStrict(name); err != nil {
		return fmt.Errorf("bucket %q is not a valid bucket name: %s", clip(name), strings.ToLower(err.Error()))
	}
	return nil
}

func parseEndpoint(s string) (endpoint, error) {
	const want = `want "https://host[:port]", "http://host:port" or "host[:port]"`
	if s == "" {
		return endpoint{}, fmt.Errorf("endpoint is empty: %s", want)
	}
	raw := s
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return endpoint{}, fmt.Errorf("endpoint %q is not a URL: %s", clip(raw), want)
	}
	if u.User != nil {
		// Do not quote it: the user info may hold a password.
		return endpoint{}, errors.New("endpoint holds credentials: remove them from the URL and set the access key and secret key")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return endpoint{}, fmt.Errorf("endpoint %q has scheme %q: %s", clip(raw), u.Scheme, want)
	}
	if u.Hostname() == "" {
		return endpoint{}, fmt.Errorf("endpoint %q has no host: %s", clip(raw), want)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, fmt.Errorf("endpoint %q has a path or query: %s (the bucket is set apart)", clip(raw), want)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return endpoint{}, fmt.Errorf("endpoint %q has port %q: want 1 to 65535", clip(raw), p)
		}
	}
	return endpoint{host: u.Host, secure: u.Scheme == "https"}, nil
}

// S3 is a Store in an S3 bucket, shared by every gateway instance: the
// content of an artifact is the object artifacts/sha256/<digest>, its
// content type the object's Content-Type. It is safe for concurrent use.
// Every call is one or two requests to the bucket, bounded by the caller's
// context; Open does not verify the content it streams (Cached does).
type S3 struct {
	client   *minio.Client
	bucket   string
	endpoint string // for errors
	limit    int64  // MaxSize; tests lower it
	secrets  []string
}

// NewS3 returns an S3 for cfg once it has checked that the bucket exists
// and that the server accepts the credentials. The check is bounded by ctx,
// or by 10 seconds if ctx has no deadline.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ep, _ := parseEndpoint(cfg.Endpoint)
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	s := &S3{
		bucket:   cfg.Bucket,
		endpoint: ep.String(),
		limit:    MaxSize,
		secrets:  []string{cfg.SecretKey, cfg.AccessKey},
	}
	client, err := minio.New(ep.host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       ep.secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   maxRetries,
	})
	if err != nil {
		return nil, s.redact(fmt.Errorf("artifact: S3 client for %s: %w", s.endpoint, err))
	}
	s.client = client

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, checkTimeout)
		defer cancel()
	}
	exists, err := client.BucketExists(ctx, cfg.Bucket)
	switch {
	case err != nil && refused(err):
		return nil, s.redact(fmt.Errorf("artifact: bucket %q at %s: credentials refused (%s: %v): check the access key and secret key, and that they may use the bucket",
			cfg.Bucket, s.endpoint, minio.ToErrorResponse(err).Code, err))
	case err != nil:
		return nil, s.redact(fmt.Errorf("artifact: check bucket %q at %s: %w", cfg.Bucket, s.endpoint, err))
	case !exists:
		return nil, fmt.Errorf("artifact: bucket %q does not exist at %s: create it, or fix the bucket name", cfg.Bucket, s.endpoint)
	}
	return s, nil
}

// refused reports whether err says the server rejected the credentials.
func refused(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
		return true
	}
	return false
}

// notFound reports whether err says there is no such object. The check is
// on the error itself: minio.ToErrorResponse does not unwrap.
func notFound(err error) bool {
	return minio.ToErrorResponse(err).Code == "NoSuchKey"
}

func key(digest string) string { return keyPrefix + digest }

// fail turns a client error about an artifact into the store's error.
func (s *S3) fail(op, digest string, err error) error {
	if notFound(err) {
		return fmt.Errorf("%w: %s in bucket %q at %s", ErrNotFound, digest, s.bucket, s.endpoint)
	}
	return s.redact(fmt.Errorf("artifact: %s %s in bucket %q at %s: %w", op, digest, s.bucket, s.endpoint, err))
}

// redact removes the credentials from err's message, should a server or
// the client quote them.
func (s *S3) redact(err error) error {
	msg := err.Error()
	for _, secret := range s.secrets {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "[redacted]")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, kinds: kinds(err)}
}

// redactedError is an error whose message had credentials in it. It unwraps
// to the sentinel errors the original matched, not to the original, which
// would still print them.
type redactedError struct {
	msg   string
	kinds []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.kinds }

func kinds(err error) []error {
	var ks []error
	for _, k := range []error{ErrNotFound, ErrTooLarge, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, k) {
			ks = append(ks, k)
		}
	}
	return ks
}

// Put uploads the content of r unless the bucket has it. The content is
// spooled to a temporary file first, so its digest (the object key) and
// size are known before the upload, and the server checks the uploaded
// bytes against their MD5 (Content-MD5), which the spool computed over the
// same bytes as the digest. Two first Puts of the same content racing
// from two instances both upload it; if their content types differ, the
// last upload's wins, and the other Put returns the type it gave. See
// Store.
func (s *S3) Put(ctx context.Context, r io.Reader, contentType string) (Info, error) {
	ct, err := normalizeContentType(contentType)
	if err != nil {
		return Info{}, err
	}
	sp, err := spool(ctx, "", r, s.limit)
	if err != nil {
		return Info{}, err
	}
	defer sp.discard()

	st, err := s.client.StatObject(ctx, s.bucket, key(sp.digest), minio.StatObjectOptions{})
	switch {
	case err == nil && st.Size == sp.size && st.ETag == sp.md5:
		return Info{Digest: sp.digest, Size: sp.size, ContentType: orDefault(st.ContentType)}, nil
	case err == nil:
		// The object is there but its bytes are not (a damaged copy, or a
		// multipart ETag we cannot compare): upload again, keeping the
		// content type that the first Put gave.
		ct = orDefault(st.ContentType)
	case !notFound(err):
		return Info{}, s.fail("stat", sp.digest, err)
	}

	up, err := s.client.PutObject(ctx, s.bucket, key(sp.digest), sp.reader(), sp.size, minio.PutObjectOptions{
		ContentType:    ct,
		SendContentMd5: true,
		// One PUT streams the file; a multipart upload would buffer parts
		// in memory. MaxSize is far below the 5 GiB a PUT may carry.
		DisableMultipart: true,
	})
	if err != nil {
		return Info{}, s.fail("upload", sp.digest, err)
	}
	if up.Size != sp.size {
		return Info{}, fmt.Errorf("artifact: upload %s to bucket %q at %s: server stored %d bytes, want %d", sp.digest, s.bucket, s.endpoint, up.Size, sp.size)
	}
	return Info{Digest: sp.digest, Size: sp.size, ContentType: ct}, nil
}

func orDefault(ct string) string {
	if ct == "" {
		return DefaultContentType
	}
	return ct
}

// Open streams an artifact from the bucket; reads are bounded by ctx. See
// Store.
func (s *S3) Open(ctx context.Context, digest string) (io.ReadCloser, Info, error) {
	if err := ValidDigest(digest); err != nil {
		return nil, Info{}, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key(digest), minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, s.fail("get", digest, err)
	}
	// GetObject sends nothing: the first Stat or Read does, and fails if
	// the object is missing.
	st, err := obj.Stat()
	if err != nil {
		_ = obj.Close()
		return nil, Info{}, s.fail("get", digest, err)
	}
	return obj, Info{Digest: digest, Size: st.Size, ContentType: orDefault(st.ContentType)}, nil
}

// Stat returns the Info of an artifact. See Store.
func (s *S3) Stat(ctx context.Context, digest string) (Info, error) {
	if err := ValidDigest(digest); err != nil {
		return Info{}, err
	}
	st, err := s.client.StatObject(ctx, s.bucket, key(digest), minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.fail("stat", digest, err)
	}
	return Info{Digest: digest, Size: st.Size, ContentType: orDefault(st.ContentType)}, nil
}

// List lists the artifacts in the bucket, ignoring other objects. Listing
// returns no content types, except from MinIO, which returns them when
// asked; for the others List stats each object, a few at a time. See
// Store.
func (s *S3) List(ctx context.Context) ([]Info, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when we stop early
	infos := []Info{}
	var missing []int // indexes of infos without a content type
	var truncated bool
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{
		Prefix:       keyPrefix,
		Recursive:    true,
		WithMetadata: true,
	}) {
		if obj.Err != nil {
			return nil, s.redact(fmt.Errorf("artifact: list bucket %q at %s: %w", s.bucket, s.endpoint, obj.Err))
		}
		digest := strings.TrimPrefix(obj.Key, keyPrefix)
		if ValidDigest(digest) != nil {
			continue // not ours
		}
		if len(infos) == MaxList {
			truncated = true
			break
		}
		ct := obj.ContentType
		if ct == "" {
			ct = obj.UserMetadata["content-type"]
		}
		if ct == "" {
			missing = append(missing, len(infos))
		}
		infos = append(infos, Info{Digest: digest, Size: obj.Size, ContentType: ct})
	}
	if err := s.fillContentTypes(ctx, infos, missing); err != nil {
		return nil, err
	}
	// Keys come sorted, but an S3-compatible server may not honour that.
	slices.SortFunc(infos, func(a, b Info) int { return strings.Compare(a.Digest, b.Digest) })
	if truncated {
		return infos, fmt.Errorf("%w: more than %d artifacts in bucket %q at %s", ErrTruncated, MaxList, s.bucket, s.endpoint)
	}
	return infos, nil
}

// fillContentTypes stats the artifacts infos[i], i in missing, for their
// content types.
func (s *S3) fillContentTypes(ctx context.Context, infos []Info, missing []int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(statWorkers)
	for _, i := range missing {
		g.Go(func() error {
			st, err := s.client.StatObject(ctx, s.bucket, key(infos[i].Digest), minio.StatObjectOptions{})
			if notFound(err) {
				// Deleted since listed: leave the listed size.
				infos[i].ContentType = DefaultContentType
				return nil
			}
			if err != nil {
				return s.fail("stat", infos[i].Digest, err)
			}
			infos[i].ContentType = orDefault(st.ContentType)
			return nil
		})
	}
	return g.Wait()
}
