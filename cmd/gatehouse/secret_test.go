package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeySecretGeneratedThenReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // not created yet
	first, source, err := keySecret("", dir)
	if err != nil {
		t.Fatalf("keySecret() error = %v", err)
	}
	if source != secretFromGenerated {
		t.Errorf("keySecret() source = %q, want %q", source, secretFromGenerated)
	}
	if _, err := hex.DecodeString(string(first)); err != nil || len(first) != 64 {
		t.Errorf("generated secret is %d bytes (hex: %v), want 64 hex characters", len(first), err)
	}
	path := filepath.Join(dir, keySecretFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("secret file: %v", err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("secret file mode = %04o, want 0600", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only %s (no temporary file left)", len(entries), keySecretFile)
	}

	again, source, err := keySecret("", dir)
	if err != nil {
		t.Fatalf("keySecret() second call error = %v", err)
	}
	if source != secretFromFile || !bytes.Equal(again, first) {
		t.Errorf("keySecret() second call = source %q, same secret %v; want %q and the same secret", source, bytes.Equal(again, first), secretFromFile)
	}
}

func TestKeySecretFromEnvLeavesTheFileAlone(t *testing.T) {
	dir := t.TempDir()
	const env = "an-operator-chosen-secret"
	got, source, err := keySecret(env, dir)
	if err != nil {
		t.Fatalf("keySecret() error = %v", err)
	}
	if string(got) != env || source != secretFromEnv {
		t.Errorf("keySecret() = source %q, want the variable's value from %q", source, secretFromEnv)
	}
	if _, err := os.Stat(filepath.Join(dir, keySecretFile)); !os.IsNotExist(err) {
		t.Errorf("with %s set, the secret file exists (stat err %v); want none written", envKeySecret, err)
	}
}

func TestKeySecretFileRefusals(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		want    []string
		secrets []string // must not appear in the error
	}{
		{
			name:    "readable by others",
			setup:   func(t *testing.T, path string) { writeSecretFile(t, path, secret+"\n", 0o644) },
			want:    []string{keySecretFile, "0644", "chmod 600"},
			secrets: []string{secret},
		},
		{
			name:    "group readable",
			setup:   func(t *testing.T, path string) { writeSecretFile(t, path, secret, 0o640) },
			want:    []string{keySecretFile, "0640"},
			secrets: []string{secret},
		},
		{
			name:    "too short",
			setup:   func(t *testing.T, path string) { writeSecretFile(t, path, "short-secret\n", 0o600) },
			want:    []string{keySecretFile, "12 bytes", "at least 16"},
			secrets: []string{"short-secret"},
		},
		{
			name:  "empty",
			setup: func(t *testing.T, path string) { writeSecretFile(t, path, "", 0o600) },
			want:  []string{keySecretFile, "0 bytes"},
		},
		{
			name: "too large",
			setup: func(t *testing.T, path string) {
				writeSecretFile(t, path, strings.Repeat("x", maxKeySecretFile+1), 0o600)
			},
			want: []string{keySecretFile, "right file"},
		},
		{
			name: "a directory",
			setup: func(t *testing.T, path string) {
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{keySecretFile, "not a regular file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, keySecretFile)
			tt.setup(t, path)
			_, _, err := keySecret("", dir)
			if err == nil {
				t.Fatalf("keySecret() error = nil, want a refusal")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("keySecret() error = %q, want it to contain %q", err, w)
				}
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("keySecret() error = %q contains the file's secret", err)
				}
			}
		})
	}
}

func TestCheckKeySecretEnv(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		wantErr bool
	}{
		{"unset", "", false},
		{"15 bytes", "fifteen-bytes!!", true},
		{"16 bytes", "sixteen-bytes!!!", false},
		{"64 hex characters", strings.Repeat("ab", 32), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkKeySecretEnv(tt.value)
			if (err != nil) != tt.wantErr {
				t.Fatalf("checkKeySecretEnv(%d bytes) error = %v, want error %v", len(tt.value), err, tt.wantErr)
			}
			if err != nil && (!strings.Contains(err.Error(), envKeySecret) || strings.Contains(err.Error(), tt.value)) {
				t.Errorf("checkKeySecretEnv() error = %q, want it to name %s and not contain the value", err, envKeySecret)
			}
		})
	}
}

// writeSecretFile creates a file with exactly the given mode, whatever the umask.
func writeSecretFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
