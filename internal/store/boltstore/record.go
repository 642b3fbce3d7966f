package boltstore

import (
	"encoding/binary"
	"fmt"
)

// headerLen is the size of the header stored before every value: the key's
// mod revision and its expiry, both big-endian int64.
const headerLen = 16

// record is one stored value with its metadata. expiry is a Unix time in
// nanoseconds; zero means the key never expires.
type record struct {
	rev    int64
	expiry int64
	value  []byte
}

// expired reports whether the record's lease has run out at now (Unix nanoseconds).
func (r record) expired(now int64) bool {
	return r.expiry != 0 && now >= r.expiry
}

func encodeRecord(r record) []byte {
	b := make([]byte, headerLen+len(r.value))
	binary.BigEndian.PutUint64(b[0:8], uint64(r.rev))
	binary.BigEndian.PutUint64(b[8:16], uint64(r.expiry))
	copy(b[headerLen:], r.value)
	return b
}

// decodeRecord parses b. The returned value aliases b, which bbolt owns only
// for the life of the transaction: copy it before the transaction ends.
func decodeRecord(b []byte) (record, error) {
	if len(b) < headerLen {
		return record{}, fmt.Errorf("decode record: %d bytes, want at least %d", len(b), headerLen)
	}
	return record{
		rev:    int64(binary.BigEndian.Uint64(b[0:8])),
		expiry: int64(binary.BigEndian.Uint64(b[8:16])),
		value:  b[headerLen:],
	}, nil
}

// leaseKey is the key of the lease index entry for key expiring at expiry.
// Big-endian expiry first, so that a cursor walks leases soonest first.
func leaseKey(expiry int64, key string) []byte {
	b := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(expiry))
	copy(b[8:], key)
	return b
}

// splitLeaseKey is the inverse of leaseKey.
func splitLeaseKey(b []byte) (expiry int64, key string) {
	return int64(binary.BigEndian.Uint64(b[:8])), string(b[8:])
}

func encodeRevision(rev int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(rev))
}

// decodeRevision parses a stored revision; a missing one (nil) is zero.
func decodeRevision(b []byte) (int64, error) {
	switch len(b) {
	case 0:
		return 0, nil
	case 8:
		return int64(binary.BigEndian.Uint64(b)), nil
	default:
		return 0, fmt.Errorf("decode revision: %d bytes, want 8", len(b))
	}
}
