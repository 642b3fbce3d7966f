package balance

import (
	"hash/fnv"
	"testing"
	"time"
)

func TestLoadInFlight(t *testing.T) {
	var l Load
	if got := l.InFlight(); got != 0 {
		t.Fatalf("zero Load InFlight() = %d, want 0", got)
	}
	l.Begin()
	l.Begin()
	l.Begin()
	l.End(time.Millisecond)
	if got := l.InFlight(); got != 2 {
		t.Errorf("InFlight() after 3 Begin, 1 End = %d, want 2", got)
	}
	l.End(time.Millisecond)
	l.End(time.Millisecond)
	if got := l.InFlight(); got != 0 {
		t.Errorf("InFlight() after 3 Begin, 3 End = %d, want 0", got)
	}
}

func TestLoadEWMA(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		want    time.Duration
	}{
		{"unknown", nil, 0},
		{"first sample taken as is", []time.Duration{100 * time.Millisecond}, 100 * time.Millisecond},
		{"second weighs 0.3", []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, 130 * time.Millisecond},
		{"falls by 0.3 of the gap", []time.Duration{100 * time.Millisecond, 0}, 70 * time.Millisecond},
		{"zero first sample is known", []time.Duration{0}, 1},
		{"negative counts as zero", []time.Duration{10, -time.Second}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Load
			for _, s := range tt.samples {
				l.Begin()
				l.End(s)
			}
			if got := l.EWMA(); got != tt.want {
				t.Errorf("EWMA() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadEWMAConverges(t *testing.T) {
	var l Load
	l.Begin()
	l.End(500 * time.Millisecond)
	// After a latency change the gap shrinks to 0.7^n: under 1% after 13.
	for range 13 {
		l.Begin()
		l.End(20 * time.Millisecond)
	}
	got, want := l.EWMA(), 20*time.Millisecond
	if diff := got - want; diff < 0 || diff > 5*time.Millisecond {
		t.Errorf("EWMA() after 13 samples of %v = %v, want within 5ms above it", want, got)
	}
	for range 100 {
		l.Begin()
		l.End(20 * time.Millisecond)
	}
	if got := l.EWMA(); got < want-10 || got > want+10 {
		t.Errorf("EWMA() after 113 samples of %v = %v, want within 10ns", want, got)
	}
}

func TestHashKey(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		// FNV-1a 64 reference values (draft-eastlake-fnv test vectors).
		{"", 0xcbf29ce484222325},
		{"a", 0xaf63dc4c8601ec8c},
		{"foobar", 0x85944171f73967e8},
	}
	for _, tt := range tests {
		if got := HashKey(tt.in); got != tt.want {
			t.Errorf("HashKey(%q) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
	for _, s := range []string{"10.0.0.7", "user-42", "session=abc; x", "ünïcode"} {
		f := fnv.New64a()
		f.Write([]byte(s))
		if got, want := HashKey(s), f.Sum64(); got != want {
			t.Errorf("HashKey(%q) = %#x, want %#x (hash/fnv)", s, got, want)
		}
	}
}
