package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/gatehouse-gw/gatehouse/internal/apikey"
)

// keySecretFile is the name, in the data directory, of the server secret
// generated when GATEHOUSE_KEY_SECRET is not set.
const keySecretFile = "key-secret"

// maxKeySecretFile bounds what is read from the secret file: a secret is
// short, and a large file there is a mistake.
const maxKeySecretFile = 4096

// Where the server secret came from, for the start-up log.
const (
	secretFromEnv       = "env"
	secretFromFile      = "file"
	secretFromGenerated = "generated"
)

// checkKeySecretEnv reports a GATEHOUSE_KEY_SECRET that is set but too
// short. The message gives its length, never its value.
func checkKeySecretEnv(value string) error {
	if value != "" && len(value) < apikey.MinSecretLen {
		return fmt.Errorf("%s is %d bytes long; use at least %d random bytes (e.g. the output of openssl rand -hex 32), or unset it to let gatehouse generate a secret in --data-dir",
			envKeySecret, len(value), apikey.MinSecretLen)
	}
	return nil
}

// keySecret returns the server secret that keys the HMAC of imported API
// keys, and where it came from. GATEHOUSE_KEY_SECRET (fromEnv, already
// checked by checkKeySecretEnv) wins, and the file is then neither read nor
// written. Otherwise the secret is the content of dataDir/key-secret, which
// is generated on first start: 32 random bytes written as 64 hex
// characters, mode 0600. The file's text is the secret as is, so that
// copying it into GATEHOUSE_KEY_SECRET keeps every imported key valid.
//
// The caller must hold the data directory (the embedded store's lock), so
// that two processes cannot generate different secrets at once.
func keySecret(fromEnv, dataDir string) ([]byte, string, error) {
	if fromEnv != "" {
		return []byte(fromEnv), secretFromEnv, nil
	}
	path := filepath.Join(dataDir, keySecretFile)
	secret, err := readKeySecret(path)
	if err == nil {
		return secret, secretFromFile, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	secret, err = writeKeySecret(path)
	if err != nil {
		return nil, "", err
	}
	return secret, secretFromGenerated, nil
}

// readKeySecret reads and checks an existing secret file. Its errors name
// the file and say how to fix it; they never contain the secret.
func readKeySecret(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("api key secret file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("api key secret file %s is not a regular file (%s); remove it to let gatehouse generate one, or set %s", path, info.Mode().Type(), envKeySecret)
	}
	// Windows has no such permission bits; its ACLs are left to the
	// operator.
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("api key secret file %s has mode %04o, which lets other users read it: run chmod 600 %s", path, perm, path)
	}
	if info.Size() > maxKeySecretFile {
		return nil, fmt.Errorf("api key secret file %s is %d bytes; a secret is at most %d: is it the right file?", path, info.Size(), maxKeySecretFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("api key secret file %s: %w", path, err)
	}
	secret := bytes.TrimSpace(b)
	if len(secret) < apikey.MinSecretLen {
		return nil, fmt.Errorf("api key secret file %s holds %d bytes; at least %d are needed. Restore the original file, or delete it to generate a new secret (keys imported under the old one then stop working)",
			path, len(secret), apikey.MinSecretLen)
	}
	return secret, nil
}

// newKeySecret generates a server secret: 32 random bytes written as 64
// hex characters, so that it can be copied into GATEHOUSE_KEY_SECRET.
func newKeySecret() []byte {
	var raw [32]byte
	rand.Read(raw[:]) // never fails: crypto/rand.Read crashes the program instead
	return []byte(hex.EncodeToString(raw[:]))
}

// writeKeySecret generates a secret and stores it at path with mode 0600,
// whole or not at all: it is written to a temporary file in the same
// directory, synced, then renamed into place.
func writeKeySecret(path string) ([]byte, error) {
	secret := newKeySecret()

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create api key secret file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+keySecretFile+"-*") // created with mode 0600
	if err != nil {
		return nil, fmt.Errorf("create api key secret file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = tmp.Write(append(secret, '\n'))
	if err == nil {
		err = tmp.Chmod(0o600) // in case the platform's default differs
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return nil, fmt.Errorf("write api key secret file %s: %w", path, err)
	}
	// Make the rename durable, so that a crash cannot lose the secret
	// after keys were imported under it.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return secret, nil
}
