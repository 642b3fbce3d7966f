// Package registry keeps self-registered service replicas as leases in the
// store: register, heartbeat, deregister, list.
package registry

import "time"

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
