package breaker

import (
	"sync/atomic"
	"time"
)

// Store keys written by the Syncer.
const (
	// RecordPrefix is followed by a replica ID; the value is a JSON Record
	// describing the replica's last ejection or restore.
	RecordPrefix = "breaker/"
	// FailuresPrefix is followed by a replica ID; the value is a store
	// counter of the replica's recent failures, summed over all instances
	// and expiring one breaker window after the last addition.
	FailuresPrefix = "breaker-failures/"
)

// Record is a replica's breaker transition as stored under RecordPrefix and
// shared between instances.
type Record struct {
	// ReplicaID is the snapshot replica ID.
	ReplicaID string `json:"replica_id"`
	// Service is the service the replica belongs to.
	Service string `json:"service"`
	// Address is the replica's URL.
	Address string `json:"address"`
	// State is StateEjected or StateHealthy (restored).
	State string `json:"state"`
	// EjectedUntil is the end of the ejection; zero (omitted) for a manual
	// ejection that lasts until restored, and for StateHealthy.
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	// Ejections is the ejection count that set the cool-down.
	Ejections int `json:"ejections"`
	// Failures is the run of consecutive failures at the transition.
	Failures int `json:"failures"`
	// LastError is the reason given with the last failure.
	LastError string `json:"last_error,omitempty"`
	// Manual is true for an operator's ejection or restore.
	Manual bool `json:"manual,omitempty"`
	// Node is the ID of the instance that made the transition.
	Node string `json:"node"`
	// Time is when the transition happened.
	Time time.Time `json:"time"`
}

// until is the ejection end in Unix nanoseconds, indefinite for a manual
// ejection without one.
func (r Record) until() int64 {
	if r.EjectedUntil.IsZero() {
		if r.Manual {
			return indefinite
		}
		return 0
	}
	return r.EjectedUntil.UnixNano()
}

// queueSize bounds the transitions waiting for the Syncer. Transitions are
// rare (a few per replica per cool-down); a full queue means the Syncer is
// stuck or absent, and further transitions are dropped and counted.
const queueSize = 1024

// queue carries records from the request path to the Syncer without ever
// blocking the sender.
type queue struct {
	ch      chan Record
	dropped atomic.Uint64
}

func (q *queue) send(r Record) {
	select {
	case q.ch <- r:
	default:
		q.dropped.Add(1)
	}
}
