package redislimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/ratelimit"
)

// allocBudget is what one Allow decided by Redis may allocate. Measured at
// 17 with go-redis v9.22: 7 here (the Redis key, the keys and arguments
// slices, the boxed arguments), 4 for the deadline's context and timer, and
// 6 in go-redis (the command, its arguments, the pool's connection check).
const allocBudget = 17

// roomy is a limit no benchmark exhausts: one request per nanosecond, with a
// second's worth at once.
var roomy = ratelimit.Limit{Requests: int(time.Second), Per: time.Second}

func BenchmarkAllow(b *testing.B) {
	l := newInstance(b, redisServer.Server(b), Config{Prefix: prefix(b)})
	ctx := context.Background()
	now := time.Now()
	allow(b, l, "key:k1", roomy)
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := l.Allow(ctx, "key:k1", roomy, now); !d.Allowed || d.Limit != roomy.Requests {
			b.Fatalf("Allow() = %+v, want allowed by Redis", d)
		}
	}
}

func BenchmarkAllowParallel1000Keys(b *testing.B) {
	l := newInstance(b, redisServer.Server(b), Config{Prefix: prefix(b)})
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		now := time.Now()
		i := int(seq.Add(1)) * 7919
		for pb.Next() {
			i++
			if d, _ := l.Allow(ctx, keys[i%len(keys)], roomy, now); !d.Allowed {
				b.Errorf("Allow() = %+v, want allowed", d)
				return
			}
		}
	})
	if l.Degraded() {
		b.Error("Degraded() = true, want every decision from Redis")
	}
}

// BenchmarkAllowDegraded is the cost of a request while Redis is backing
// off: the health check, Share and the fallback.
func BenchmarkAllowDegraded(b *testing.B) {
	l := newInstance(b, redisServer.Server(b), Config{Prefix: prefix(b), Share: share(3)})
	l.health = newHealth(time.Hour, newFakeClock().now)
	l.health.failed(false)
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		if d, _ := l.Allow(ctx, "key:k1", roomy, now); !d.Allowed {
			b.Fatalf("Allow() = %+v, want allowed", d)
		}
	}
}

func TestAllowAllocs(t *testing.T) {
	l := newInstance(t, redisServer.Server(t), Config{Prefix: prefix(t)})
	ctx := context.Background()
	now := time.Now()
	allow(t, l, "key:k1", roomy)
	got := testing.AllocsPerRun(100, func() {
		if d, _ := l.Allow(ctx, "key:k1", roomy, now); !d.Allowed || l.Degraded() {
			t.Fatalf("Allow() = %+v, want allowed by Redis", d)
		}
	})
	if got > allocBudget {
		t.Errorf("Allow() allocates %v times, want at most %d", got, allocBudget)
	}
}
