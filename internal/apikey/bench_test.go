package apikey

import (
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// benchKeys is the size of the benchmarks' index. They build it with Apply:
// writing a million records through the store would measure the store.
const benchKeys = 1_000_000

// genKeys returns n generated clear keys and their records, as Create
// would make them.
func genKeys(n int) ([]string, []Key) {
	clears := make([]string, n)
	keys := make([]Key, n)
	for i := range n {
		clears[i] = generate()
		d := digestSHA256(clears[i])
		keys[i] = Key{ID: newID(), Hash: hex.EncodeToString(d[:]), HashAlg: HashSHA256, Revision: int64(i + 1)}
	}
	return clears, keys
}

func benchIndex(b *testing.B, n int) (*Index, []string) {
	b.Helper()
	x, err := NewIndex(nil, Config{Secret: testSecret}, nil)
	if err != nil {
		b.Fatalf("NewIndex() error = %v", err)
	}
	clears, keys := genKeys(n)
	for _, k := range keys {
		x.Apply(k)
	}
	if x.Len() != n {
		b.Fatalf("Len() = %d, want %d", x.Len(), n)
	}
	return x, clears
}

// BenchmarkCheck checks keys against an index of 1M generated keys, built
// once for all the sub-benchmarks:
//   - hit/spread: valid keys spread over the whole table, so nearly every
//     check misses the CPU caches on the presented key, the map and the
//     entry (the worst case);
//   - hit/hot64, hit/hot4096: that many valid keys, copied together as a
//     request's header would be, checked in turn (most requests from fewer
//     clients); hot64 stays in the CPU caches and shows the compute cost;
//   - hit/parallel: hit/spread from every P at once, showing the cost of
//     the shards' read locks under contention;
//   - miss: unknown keys; then with one imported key loaded, a miss costs
//     an HMAC too (miss-with-imported) and an imported key is a SHA-256
//     miss then an HMAC hit (imported-hit).
func BenchmarkCheck(b *testing.B) {
	x, clears := benchIndex(b, benchKeys)
	unknown, _ := genKeys(1024)
	now := time.Now()
	loop := func(b *testing.B, keys []string, stride int, want Result) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, r := x.Check(keys[i], now); r != want {
				b.Fatalf("Check() = %v, want %v", r, want)
			}
			i = (i + stride) % len(keys)
		}
	}
	b.Run("hit/spread", func(b *testing.B) { loop(b, clears, 7919, Valid) })
	for _, n := range []int{64, 4096} {
		hot := make([]string, n)
		for i := range hot {
			hot[i] = strings.Clone(clears[i*(len(clears)/n)])
		}
		b.Run(fmt.Sprintf("hit/hot%d", n), func(b *testing.B) { loop(b, hot, 1, Valid) })
	}
	b.Run("hit/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(time.Now().UnixNano() % int64(len(clears)))
			for pb.Next() {
				if _, r := x.Check(clears[i], now); r != Valid {
					panic(fmt.Sprintf("Check() = %v, want %v", r, Valid))
				}
				i = (i + 7919) % len(clears)
			}
		})
	})
	b.Run("miss", func(b *testing.B) { loop(b, unknown, 1, Unknown) })
	x.Apply(testKey("00000000000i", "bootstrap-testkey", true, benchKeys+1))
	b.Run("miss-with-imported", func(b *testing.B) { loop(b, unknown, 1, Unknown) })
	b.Run("imported-hit", func(b *testing.B) { loop(b, []string{"bootstrap-testkey"}, 1, Valid) })
}

// BenchmarkLoad applies 1M records to an empty Index sized for them, as
// Run's first load does (one op = the whole load), and reports the time per
// key and the heap the loaded Index holds per key, key IDs included.
func BenchmarkLoad(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, keys := genKeys(benchKeys)
	var x *Index
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if x, err = NewIndex(nil, Config{}, nil); err != nil {
			b.Fatalf("NewIndex() error = %v", err)
		}
		x.wmu.Lock()
		x.reserve(len(keys)) // as Run's first load does
		x.wmu.Unlock()
		for _, k := range keys {
			x.Apply(k)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchKeys), "ns/key")
	keys = nil // only the IDs stay, held by the entries
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchKeys, "heap-B/key")
	if x.Len() != benchKeys {
		b.Fatalf("Len() = %d, want %d", x.Len(), benchKeys)
	}
}

// BenchmarkDecodeRecord is the per-key cost Run adds to Apply when it
// loads from the store: decoding and compiling a typical record.
func BenchmarkDecodeRecord(b *testing.B) {
	k := newKey(Spec{
		Name:          "mobile app",
		AllowedRoutes: []string{"orders", "billing"},
		RateLimit:     &Limit{Requests: 100, Per: config.Duration(time.Minute)},
		Quota:         &Quota{Requests: 100000, Period: PeriodMonth},
		Metadata:      map[string]string{"team": "mobile"},
	}, t0)
	k.ID = "0123456789ab"
	d := digestSHA256(generate())
	k.Hash, k.HashAlg = hex.EncodeToString(d[:]), HashSHA256
	value, err := encode(k)
	if err != nil {
		b.Fatal(err)
	}
	x, err := NewIndex(nil, Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	kv := store.KV{Key: Prefix + k.ID, Value: value, Revision: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.entryOf(k.ID, kv); err != nil {
			b.Fatal(err)
		}
	}
}
