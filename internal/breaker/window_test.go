package breaker

import (
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	width := int64(time.Second)
	base := t0.UnixNano()
	tests := []struct {
		name         string
		record       []int64 // offsets in seconds; negative means a failure at -offset
		at           int64   // seconds
		wantRequests int
		wantFailures int
	}{
		{name: "empty", at: 0},
		{name: "same bucket", record: []int64{0, 0, -0}, at: 0, wantRequests: 3, wantFailures: 0},
		{name: "failures", record: []int64{1, -2, -3}, at: 3, wantRequests: 3, wantFailures: 2},
		{name: "last bucket still in", record: []int64{-1}, at: 10, wantRequests: 1, wantFailures: 1},
		{name: "slid out", record: []int64{-1}, at: 11, wantRequests: 0, wantFailures: 0},
		{name: "reused slot", record: []int64{-1, 11}, at: 11, wantRequests: 1, wantFailures: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w window
			for _, off := range tt.record {
				failed := off < 0
				if failed {
					off = -off
				}
				w.record(base+off*width, width, failed)
			}
			req, fails := w.sum(base+tt.at*width, width)
			if req != tt.wantRequests || fails != tt.wantFailures {
				t.Errorf("sum() = %d, %d; want %d, %d", req, fails, tt.wantRequests, tt.wantFailures)
			}
		})
	}
}

func TestWindowSaturates(t *testing.T) {
	var w window
	now, width := t0.UnixNano(), int64(time.Second)
	for range countMask + 10 {
		w.record(now, width, true)
	}
	if req, fails := w.sum(now, width); req != countMask || fails != countMask {
		t.Errorf("sum() = %d, %d; want %d, %d (saturated, not wrapped)", req, fails, countMask, countMask)
	}
	w.reset()
	if req, fails := w.sum(now, width); req != 0 || fails != 0 {
		t.Errorf("sum() after reset = %d, %d; want 0, 0", req, fails)
	}
}
