package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Duration is a time.Duration written in configuration as a Go duration
// string ("30s", "1m30s", "250ms") or as a JSON number of seconds (30, 1.5).
// Negative durations are rejected when decoding. The zero value is zero.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.String.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string, e.g. "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a duration string or a number of seconds. JSON null
// leaves d unchanged, as encoding/json does for built-in types.
func (d *Duration) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil
	}
	var v time.Duration
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		p, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: use a Go duration such as \"30s\" or \"1m30s\", or a number of seconds", s)
		}
		v = p
	} else {
		var secs float64
		if err := json.Unmarshal(data, &secs); err != nil {
			return fmt.Errorf("invalid duration %s: use a Go duration such as \"30s\" or a number of seconds", data)
		}
		ns := secs * float64(time.Second)
		if math.IsNaN(ns) || ns > math.MaxInt64 || ns < math.MinInt64 {
			return fmt.Errorf("invalid duration %s: out of range", data)
		}
		v = time.Duration(ns)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", v.String())
	}
	*d = Duration(v)
	return nil
}
