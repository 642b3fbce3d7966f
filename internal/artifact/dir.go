package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

var _ Store = (*Dir)(nil)

const (
	// tempPrefix starts the names of files being written; it is not a
	// digest, so Open and List never see them.
	tempPrefix = ".tmp-"
	// staleTemp is how old a temporary file left by a crash must be for
	// NewDir to remove it: younger ones may belong to a Put in progress in
	// another process.
	staleTemp = time.Hour
)

// errIncomplete marks an artifact whose files on disk do not agree: a crash
// or an outside hand left it half-written. Cached fetches such an artifact
// again; List leaves it out.
var errIncomplete = errors.New("artifact: half-written or damaged")

// Dir is a Store in a local directory: the content of an artifact is the
// file sha256/<digest>, its metadata (content type, size) the file
// sha256/<digest>.json. Both are written to a temporary file and renamed
// into place, metadata first, so an artifact whose content file exists is
// complete. Dir is safe for concurrent use, and an Open costs one open and
// one small read.
type Dir struct {
	root  string // dir/sha256
	limit int64  // MaxSize; tests lower it

	// mu serializes the commits of Put, so that concurrent Puts of the
	// same content agree on its Info. Open, Stat and List do not take it.
	mu sync.Mutex
}

// dirMeta is the metadata file of an artifact.
type dirMeta struct {
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// NewDir returns a Dir that keeps its artifacts under dir, creating it if
// needed. It removes the temporary files that crashed writers left behind.
func NewDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("artifact: directory is empty: set the directory to keep artifacts in")
	}
	root := filepath.Join(dir, "sha256")
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("artifact: create directory: %w", err)
	}
	d := &Dir{root: root, limit: MaxSize}
	if err := d.removeStale(time.Now().Add(-staleTemp)); err != nil {
		return nil, err
	}
	return d, nil
}

// removeStale removes the temporary files last modified before cutoff.
func (d *Dir) removeStale(cutoff time.Time) error {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return fmt.Errorf("artifact: read directory: %w", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			_ = os.Remove(filepath.Join(d.root, e.Name()))
		}
	}
	return nil
}

func (d *Dir) contentPath(digest string) string { return filepath.Join(d.root, digest) }
func (d *Dir) metaPath(digest string) string    { return filepath.Join(d.root, digest+".json") }

// Put stores the content of r. See Store.
func (d *Dir) Put(ctx context.Context, r io.Reader, contentType string) (Info, error) {
	ct, err := normalizeContentType(contentType)
	if err != nil {
		return Info{}, err
	}
	sp, err := spool(ctx, d.root, r, d.limit)
	if err != nil {
		return Info{}, err
	}
	defer sp.discard()
	return d.commit(sp, ct)
}

// commit moves spooled content into the store under its digest, unless a
// complete copy is already there, and returns the stored Info. sp must have
// been spooled into d.root: the move is a rename.
func (d *Dir) commit(sp *spooled, ct string) (Info, error) {
	// The common duplicate needs neither the flush nor the lock.
	if info, err := d.stat(sp.digest); err == nil {
		return info, nil
	}
	// Flush before taking the lock: it is the slow part.
	if err := sp.f.Sync(); err != nil {
		return Info{}, fmt.Errorf("artifact: write %s: %w", sp.digest, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if info, err := d.stat(sp.digest); err == nil {
		return info, nil
	}
	meta, err := json.Marshal(dirMeta{ContentType: ct, Size: sp.size})
	if err != nil {
		return Info{}, fmt.Errorf("artifact: encode metadata of %s: %w", sp.digest, err)
	}
	if err := writeFileAtomic(d.root, d.metaPath(sp.digest), meta); err != nil {
		return Info{}, fmt.Errorf("artifact: write metadata of %s: %w", sp.digest, err)
	}
	if err := os.Rename(sp.f.Name(), d.contentPath(sp.digest)); err != nil {
		return Info{}, fmt.Errorf("artifact: store %s: %w", sp.digest, err)
	}
	sp.kept = true
	// The renames are durable once the directory is: in single-instance
	// mode this directory is the only copy.
	if err := syncDir(d.root); err != nil {
		return Info{}, fmt.Errorf("artifact: store %s: %w", sp.digest, err)
	}
	return Info{Digest: sp.digest, Size: sp.size, ContentType: ct}, nil
}

// Open returns the content of an artifact. See Store.
func (d *Dir) Open(_ context.Context, digest string) (io.ReadCloser, Info, error) {
	if err := ValidDigest(digest); err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(d.contentPath(digest))
	if err != nil {
		return nil, Info{}, d.fileErr(digest, err)
	}
	// Check the file opened, not the path: a Put may rename a fresh copy
	// over it meanwhile.
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, Info{}, fmt.Errorf("artifact: stat %s: %w", digest, err)
	}
	info, err := d.check(digest, fi.Size())
	if err != nil {
		_ = f.Close()
		return nil, Info{}, err
	}
	return f, info, nil
}

// Stat returns the Info of an artifact. See Store.
func (d *Dir) Stat(_ context.Context, digest string) (Info, error) {
	if err := ValidDigest(digest); err != nil {
		return Info{}, err
	}
	return d.stat(digest)
}

func (d *Dir) stat(digest string) (Info, error) {
	fi, err := os.Stat(d.contentPath(digest))
	if err != nil {
		return Info{}, d.fileErr(digest, err)
	}
	return d.check(digest, fi.Size())
}

// check reads the metadata of an artifact whose content file has size
// bytes, and checks that the two agree.
func (d *Dir) check(digest string, size int64) (Info, error) {
	b, err := os.ReadFile(d.metaPath(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%w: artifact %s in %s has no metadata file", errIncomplete, digest, d.root)
	}
	if err != nil {
		return Info{}, fmt.Errorf("artifact: read metadata of %s: %w", digest, err)
	}
	var m dirMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return Info{}, fmt.Errorf("%w: artifact %s in %s: metadata: %v", errIncomplete, digest, d.root, err)
	}
	if m.Size != size {
		return Info{}, fmt.Errorf("%w: artifact %s in %s has %d bytes, its metadata says %d", errIncomplete, digest, d.root, size, m.Size)
	}
	ct := m.ContentType
	if ct == "" {
		ct = DefaultContentType
	}
	return Info{Digest: digest, Size: size, ContentType: ct}, nil
}

func (d *Dir) fileErr(digest string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s in %s", ErrNotFound, digest, d.root)
	}
	return fmt.Errorf("artifact: open %s: %w", digest, err)
}

// List returns the Info of every complete artifact. See Store.
func (d *Dir) List(ctx context.Context) ([]Info, error) {
	entries, err := os.ReadDir(d.root) // sorted by name, that is by digest
	if err != nil {
		return nil, fmt.Errorf("artifact: list %s: %w", d.root, err)
	}
	infos := []Info{}
	for _, e := range entries {
		if ValidDigest(e.Name()) != nil {
			continue // metadata, temporary or foreign file
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("artifact: list %s: %w", d.root, err)
		}
		if len(infos) == MaxList {
			return infos, fmt.Errorf("%w: more than %d artifacts in %s", ErrTruncated, MaxList, d.root)
		}
		info, err := d.stat(e.Name())
		if errors.Is(err, ErrNotFound) || errors.Is(err, errIncomplete) {
			continue
		}
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// writeFileAtomic writes data to path through a temporary file in dir, so
// that readers see the old file or the new one, never a part.
func writeFileAtomic(dir, path string, data []byte) error {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// syncDir flushes a directory's entries to disk.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
