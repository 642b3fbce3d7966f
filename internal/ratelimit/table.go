package ratelimit

import (
	"hash/maphash"
	"sync"
)

// shardCount is the number of independently locked parts of a table. With
// 256, two requests share a shard lock with probability 1/256; the lock is
// only read-locked on the request path, so sharing costs cache-line traffic,
// not waiting.
const shardCount = 256

// shard is one part of a table. It is padded to two cache lines (128 bytes,
// the adjacent-line prefetch unit on x86) so that neighbouring shards' locks
// do not share a line.
type shard[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]*V
	_  [128 - 32]byte
}

// table is a map from K to *V split into shards chosen by a string hash.
// Lookups take the shard's read lock; inserts and evictions its write lock.
type table[K comparable, V any] struct {
	seed   maphash.Seed
	shards [shardCount]shard[K, V]
}

func (t *table[K, V]) init() {
	t.seed = maphash.MakeSeed()
	for i := range t.shards {
		t.shards[i].m = make(map[K]*V)
	}
}

// shard returns the shard that holds the entries hashed from s.
func (t *table[K, V]) shard(s string) *shard[K, V] {
	return &t.shards[maphash.String(t.seed, s)%shardCount]
}

// len is the number of entries, for metrics and tests.
func (t *table[K, V]) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
