package artifact

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// spooled is content copied to a temporary file while its digest was
// computed: a store learns the digest, which names the artifact, before it
// writes the artifact anywhere others can see it.
type spooled struct {
	f      *os.File
	digest string // lowercase hex SHA-256
	md5    string // lowercase hex MD5, compared with S3 ETags
	size   int64
	kept   bool // the file was renamed into a store: discard leaves it
}

// spool copies at most limit bytes of r to a new temporary file in dir (the
// system's temporary directory if dir is empty), hashing them. More than
// limit bytes is an error wrapping ErrTooLarge. The caller discards the
// result.
func spool(ctx context.Context, dir string, r io.Reader, limit int64) (*spooled, error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("artifact: create temporary file: %w", err)
	}
	sp := &spooled{f: f}
	sum, md := sha256.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(f, sum, md), io.LimitReader(ctxReader{ctx, r}, limit+1))
	if err != nil {
		sp.discard()
		return nil, fmt.Errorf("artifact: read content: %w", err)
	}
	if n > limit {
		sp.discard()
		return nil, fmt.Errorf("%w: more than %d bytes (%d MiB), the limit", ErrTooLarge, limit, limit>>20)
	}
	sp.size = n
	sp.digest = hex.EncodeToString(sum.Sum(nil))
	sp.md5 = hex.EncodeToString(md.Sum(nil))
	return sp, nil
}

// reader returns the spooled content from its start.
func (sp *spooled) reader() *io.SectionReader {
	return io.NewSectionReader(sp.f, 0, sp.size)
}

// discard closes and removes the temporary file, unless it was kept.
func (sp *spooled) discard() {
	_ = sp.f.Close()
	if !sp.kept {
		_ = os.Remove(sp.f.Name())
	}
}

// ctxReader ends a read loop once its context is done: a client that goes
// away in the middle of a large upload stops the copy.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
