// Package store defines the contract for everything Gatehouse instances share:
// configuration, registry leases, counters. Every backend (embedded, Redis,
// PostgreSQL, Consul, etcd) implements Store and passes the storetest suite
// against the real server.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Backends map their driver errors onto these so that callers
// can use errors.Is regardless of backend.
var (
	// ErrNotFound is returned when a key does not exist (or its lease expired).
	ErrNotFound = errors.New("store: key not found")
	// ErrConflict is returned when a compare-and-swap precondition fails.
	ErrConflict = errors.New("store: revision conflict")
	// ErrCompacted is returned by Watch when the requested start revision is
	// older than the history the backend keeps; the caller must re-read with
	// List and watch again from the revision List returned.
	ErrCompacted = errors.New("store: revision compacted")
	// ErrClosed is returned by any call on a closed store.
	ErrClosed = errors.New("store: closed")
	// ErrNotReplicated is returned by a write that the backend's primary
	// applied but that the required replicas did not confirm in time: it
	// may be lost on failover. The caller should report it rather than
	// claim success.
	ErrNotReplicated = errors.New("store: write not confirmed by replicas")
)

// HealthReporter is implemented by stores whose server can become
// unreachable. Health returns nil while the backend answers, or the last
// failure while it does not.
type HealthReporter interface {
	Health() error
}

// Absent, as PutOptions.IfRevision, requires that the key does not exist.
const Absent int64 = -1

// KV is one stored key with its value and the store revision of its last
// modification. Revisions are global to a store and strictly increasing.
type KV struct {
	Key      string
	Value    []byte
	Revision int64
}

// PutOptions are the optional conditions of a Put. The zero value is an
// unconditional write without expiry.
type PutOptions struct {
	// IfRevision, when non-zero, makes the write conditional: Absent (-1)
	// requires the key not to exist; a positive value requires the key's
	// current revision to equal it. A failed condition returns ErrConflict.
	IfRevision int64
	// TTL, when positive, makes the key a lease: it disappears (with a delete
	// event) TTL after this write unless written again. Zero means no expiry.
	TTL time.Duration
}

// Check reports a Put that no backend can carry out: an empty key or an
// IfRevision below Absent. Backends call it first, so that every backend
// rejects the same inputs with the same message.
func (o PutOptions) Check(key string) error {
	if key == "" {
		return errors.New("put: key is empty")
	}
	if o.IfRevision < Absent {
		return fmt.Errorf("put %q: IfRevision %d is invalid; use 0, store.Absent or a revision", key, o.IfRevision)
	}
	return nil
}

// EventType says whether an Event is a write or a removal.
type EventType int

// Event types.
const (
	EventPut EventType = iota + 1
	EventDelete
)

// Event is one change observed by Watch. For EventDelete, KV.Value is nil and
// KV.Revision is the revision of the deletion.
type Event struct {
	Type EventType
	KV   KV
}

// Store is the shared-state contract. Implementations are safe for
// concurrent use. Keys are UTF-8 strings using "/" as a separator by
// convention; values are opaque bytes.
type Store interface {
	// Get returns the key's current value, or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns every live key with the given prefix, sorted by key, and
	// the store revision at which the listing was taken (suitable as the
	// starting point of a Watch).
	List(ctx context.Context, prefix string) ([]KV, int64, error)
	// Put writes a value and returns the new revision of the key.
	Put(ctx context.Context, key string, value []byte, opts PutOptions) (int64, error)
	// Delete removes a key. ifRevision, when positive, makes the removal
	// conditional on the key's current revision (ErrConflict otherwise).
	// Deleting a missing key returns ErrNotFound.
	Delete(ctx context.Context, key string, ifRevision int64) error
	// Watch delivers, in revision order, every change under prefix with a
	// revision greater than fromRevision, then every later change, until ctx
	// ends or the store closes; then the channel is closed. A consumer that
	// falls too far behind may see the channel closed early and must re-List.
	// If fromRevision is older than the kept history, Watch returns
	// ErrCompacted.
	Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan Event, error)
	// Incr atomically adds delta to the integer counter at key (creating it
	// at 0) and returns the new value. Counters are read with Get (the value
	// is the decimal text of the integer). A positive ttl (re)sets the
	// counter's expiry, as for a Put lease; zero leaves it unchanged.
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// Close releases the store. Watches end and further calls return ErrClosed.
	Close() error
}
