package breaker

import "sync/atomic"

// buckets is the number of buckets of a sliding window: the window slides
// in steps of a tenth of its length.
const buckets = 10

// Layout of a bucket word: the low 32 bits of the bucket's epoch (time
// divided by the bucket width), then 16 bits of requests and 16 bits of
// failures. One word per bucket lets a request be counted with a single
// compare-and-swap and no lock. A 32-bit epoch wraps after 2^32 bucket
// widths (136 years at the default 1s buckets), so a stale bucket cannot be
// mistaken for a current one in practice.
const (
	epochShift = 32
	reqShift   = 16
	countMask  = 1<<16 - 1
)

// window counts requests and failures over the last `buckets` bucket
// widths. The zero value is empty. It is safe for concurrent use and does
// not allocate.
//
// A bucket counts at most 65535 requests; later requests in the same bucket
// are not counted, so the ratio is taken from a sample of the first 65535
// requests of each bucket (65k requests per second per replica at the
// default width).
type window struct {
	b [buckets]atomic.Uint64
}

// record counts one request, failed or not, at now (Unix nanoseconds) with
// buckets width ns wide.
func (w *window) record(now, width int64, failed bool) {
	e := uint64(now / width)
	slot := &w.b[e%buckets]
	tag := e & (1<<32 - 1)
	var f uint64
	if failed {
		f = 1
	}
	for {
		old := slot.Load()
		var next uint64
		if old>>epochShift != tag {
			next = tag<<epochShift | 1<<reqShift | f
		} else {
			if old>>reqShift&countMask == countMask {
				return
			}
			next = old + 1<<reqShift + f
		}
		if slot.CompareAndSwap(old, next) {
			return
		}
	}
}

// sum returns the requests and failures of the window ending at now.
func (w *window) sum(now, width int64) (requests, failures int) {
	cur := uint64(now/width) & (1<<32 - 1)
	for i := range w.b {
		v := w.b[i].Load()
		if (cur-v>>epochShift)&(1<<32-1) >= buckets {
			continue
		}
		requests += int(v >> reqShift & countMask)
		failures += int(v & countMask)
	}
	return requests, failures
}

// reset empties the window. A concurrent record may survive it, which only
// counts that one request.
func (w *window) reset() {
	for i := range w.b {
		w.b[i].Store(0)
	}
}
