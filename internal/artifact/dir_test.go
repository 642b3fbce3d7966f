package artifact

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func newDir(t *testing.T, limit int64) *Dir {
	t.Helper()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatalf("NewDir() error = %v", err)
	}
	if limit > 0 {
		d.limit = limit
	}
	return d
}

func TestDir(t *testing.T) {
	testStore(t, func(t *testing.T, limit int64) Store { return newDir(t, limit) })
}

func TestDirLayout(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDir(dir)
	if err != nil {
		t.Fatalf("NewDir() error = %v", err)
	}
	body := []byte(`{"openapi":"3.1.0"}`)
	info := mustPut(t, d, body, "application/json")

	got, err := os.ReadFile(filepath.Join(dir, "sha256", info.Digest))
	if err != nil || string(got) != string(body) {
		t.Errorf("content file = %q, %v, want %q", got, err, body)
	}
	b, err := os.ReadFile(filepath.Join(dir, "sha256", info.Digest+".json"))
	if err != nil {
		t.Fatalf("metadata file: %v", err)
	}
	var meta map[string]any
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatalf("metadata %s: %v", b, err)
	}
	if meta["content_type"] != "application/json" || meta["size"] != float64(len(body)) {
		t.Errorf("metadata = %s, want content_type application/json and size %d", b, len(body))
	}
	if names := dirNames(t, filepath.Join(dir, "sha256")); !slices.Equal(names, []string{info.Digest, info.Digest + ".json"}) {
		t.Errorf("files = %q, want the content and metadata files only", names)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir(%s) error = %v", dir, err)
	}
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestDirHalfWritten(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(content, meta string) error
		want   string
	}{
		{"truncated", func(content, _ string) error { return os.Truncate(content, 3) }, "has 3 bytes, its metadata says 11"},
		{"no metadata", func(_, meta string) error { return os.Remove(meta) }, "no metadata file"},
		{"bad metadata", func(_, meta string) error { return os.WriteFile(meta, []byte("{"), 0o600) }, "metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDir(t, 0)
			body := []byte("hello world")
			info := mustPut(t, d, body, "text/plain")
			if err := tc.damage(d.contentPath(info.Digest), d.metaPath(info.Digest)); err != nil {
				t.Fatal(err)
			}
			_, _, err := d.Open(t.Context(), info.Digest)
			if !errors.Is(err, errIncomplete) || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(damaged) error = %v, want a half-written error containing %q", err, tc.want)
			}
			if _, err := d.Stat(t.Context(), info.Digest); !errors.Is(err, errIncomplete) {
				t.Errorf("Stat(damaged) error = %v, want a half-written error", err)
			}
			if list, err := d.List(t.Context()); err != nil || len(list) != 0 {
				t.Errorf("List() = %+v, %v, want the damaged artifact left out", list, err)
			}
			// Putting it again repairs it.
			if got := mustPut(t, d, body, "text/plain"); got != info {
				t.Errorf("Put(again) = %+v, want %+v", got, info)
			}
			if got, _ := readArtifact(t, d, info.Digest); string(got) != string(body) {
				t.Errorf("Open(repaired) = %q, want %q", got, body)
			}
		})
	}
}

func TestNewDirRemovesStaleTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "sha256")
	if err := os.MkdirAll(root, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".tmp-old", ".tmp-new"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(filepath.Join(root, ".tmp-old"), old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDir(dir); err != nil {
		t.Fatalf("NewDir() error = %v", err)
	}
	if names := dirNames(t, root); !slices.Equal(names, []string{".tmp-new"}) {
		t.Errorf("files after NewDir = %q, want only the recent temporary file", names)
	}
}

func TestNewDirEmpty(t *testing.T) {
	if _, err := NewDir(""); err == nil || !strings.Contains(err.Error(), "directory is empty") {
		t.Errorf("NewDir(\"\") error = %v, want one saying the directory is empty", err)
	}
}
