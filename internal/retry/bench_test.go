package retry

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"
)

// Allocation budget: 0 for everything but Buffer/Open, which allocate the
// buffer, the Body and one reader per attempt.

func BenchmarkClassify(b *testing.B) {
	errs := []error{
		&url.Error{Op: "Get", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
		&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
		io.EOF,
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		Classify(errs[i%len(errs)])
		i++
	}
}

func BenchmarkPolicy(b *testing.B) {
	p := Policy{Statuses: []int{429, 502, 503, 504}}
	b.ReportAllocs()
	for b.Loop() {
		if p.Retryable("GET", Status, 503) {
			p.Backoff(1, rand.Uint64())
		}
	}
}

func BenchmarkBudgetTryRetry(b *testing.B) {
	var bs Budgets
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bud := bs.For("svc", BudgetConfig{})
			bud.Request(now)
			bud.TryRetry(now)
		}
	})
}

func BenchmarkBudgetSerial(b *testing.B) {
	var bs Budgets
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		bud := bs.For("svc", BudgetConfig{})
		bud.Request(now)
		bud.TryRetry(now)
	}
}

func BenchmarkBuffer4KiB(b *testing.B) {
	data := bytes.Repeat([]byte("x"), 4096)
	r := bytes.NewReader(data)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r.Reset(data)
		body, _ := Buffer(io.NopCloser(r), int64(len(data)), DefaultMaxReplayBody)
		_, _ = io.Copy(io.Discard, body.Open())
	}
}
