package ratelimit

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func BenchmarkLocalAllow(b *testing.B) {
	l := newLocal(b)
	limit := Limit{Requests: 1000, Per: time.Second}
	ctx := context.Background()
	now := t0
	allow(b, l, "key:a", limit, now)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Millisecond) // one interval: every request is allowed
		if d, _ := l.Allow(ctx, "key:a", limit, now); !d.Allowed {
			b.Fatalf("Allow() = %+v, want allowed", d)
		}
	}
}

func BenchmarkLocalAllowParallel1000Keys(b *testing.B) {
	l := newLocal(b)
	limit := Limit{Requests: 100, Per: time.Second}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
		allow(b, l, keys[i], limit, t0)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := int(seq.Add(1)) * 7919
		now := t0
		for pb.Next() {
			i++
			now = now.Add(time.Microsecond)
			_, _ = l.Allow(ctx, keys[i%len(keys)], limit, now)
		}
	})
}

func BenchmarkQuotasUse(b *testing.B) {
	q := newQuotas(b, openStore(b, filepath.Join(b.TempDir(), "s.db")), QuotaConfig{})
	quota := Quota{Requests: 1 << 60, Period: Month}
	ctx := context.Background()
	use(b, q, "key:a", quota, t0)
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := q.Use(ctx, "key:a", quota, t0); !d.Allowed {
			b.Fatalf("Use() = %+v, want allowed", d)
		}
	}
}

func BenchmarkDecisionHeaders(b *testing.B) {
	d := Decision{Limit: 20, Reset: 600 * time.Millisecond, RetryAfter: 600 * time.Millisecond,
		Policy: Limit{Requests: 100, Per: time.Minute, Burst: 20}}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		d.Headers(h)
	}
}
