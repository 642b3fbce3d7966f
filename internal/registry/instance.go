// Package registry keeps self-registered service replicas as leases in the
// store: register, heartbeat, deregister, list.
package registry

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Instance is one self-registered replica as stored and listed.
type Instance struct {
	// ID is derived from the service name and address, so registering the
	// same address again yields the same instance.
	ID       string            `json:"id"`
	Service  string            `json:"service"`
	Address  string            `json:"address"`
	Weight   int               `json:"weight,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// TTL is the lease length: the instance disappears TTL after its last
	// registration or heartbeat.
	TTL          Seconds   `json:"ttl"`
	RegisteredAt time.Time `json:"registered_at"`
	RenewedAt    time.Time `json:"renewed_at"`
}

// Seconds is a duration that is written in JSON as a number of seconds.
type Seconds time.Duration

// MarshalJSON writes s as a JSON number of seconds, e.g. 30 or 1.5.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(s).Seconds(), 'f', -1, 64), nil
}

// UnmarshalJSON reads a JSON number of seconds (30, 1.5). For convenience it
// also accepts a Go duration string such as "30s" or "1m". Range checks are
// left to the caller, which knows the limits.
func (s *Seconds) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var text string
		if err := json.Unmarshal(data, &text); err != nil {
			return fmt.Errorf("decode seconds: %w", err)
		}
		d, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf("%q is not a number of seconds (e.g. 30) or a duration (e.g. \"30s\")", text)
		}
		*s = Seconds(d)
		return nil
	}
	var f float64
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("%s is not a number of seconds (e.g. 30 or 1.5)", data)
	}
	// Beyond about 292 years a time.Duration overflows.
	if math.IsNaN(f) || math.Abs(f) > float64(math.MaxInt64)/float64(time.Second) {
		return fmt.Errorf("%s seconds is out of range", data)
	}
	*s = Seconds(math.Round(f * float64(time.Second)))
	return nil
}
