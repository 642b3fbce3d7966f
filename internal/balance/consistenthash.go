package balance

import (
	"cmp"
	"slices"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

var (
	_ Picker = (*ConsistentHash)(nil)
	_ Pruner = (*ConsistentHash)(nil)
)

const (
	// pointsPerWeight is the number of ring points per unit of weight:
	// with 160, each of 4 replicas gets within a few percent of its share
	// (ketama uses the same figure).
	pointsPerWeight = 160
	// maxRingPoints bounds a ring's memory (12 bytes a point); larger
	// totals are scaled down proportionally, each replica keeping at least
	// one point.
	maxRingPoints = 1 << 18
	// seenBits is how many replicas a Pick remembers having examined
	// (on the stack) while walking the ring; in larger services the rest
	// are re-examined when met again.
	seenBits = 512
)

// ConsistentHash sends requests with the same key to the same replica, and
// when a replica comes or goes moves only the keys that must move (about
// 1/N of them). Each replica has 160 × weight points on a ring, hashed
// from its ID and the point's index, so every gateway instance builds the
// same ring; a key (mixed, then looked up by binary search) belongs to the
// first point clockwise. If that replica is unavailable or tried, the walk
// goes on clockwise to the next distinct replica, so a key's second choice
// is stable too.
//
// The ring is built once per *snapshot.Service, lazily when a new
// snapshot's service is first seen. The zero value is ready to use and safe
// for concurrent use. Pick costs one lock-free map lookup and a binary
// search, and does not allocate once the service has been seen.
type ConsistentHash struct {
	services services[ring]
}

// ring is the hash ring of one *snapshot.Service: points sorted ascending
// and, at the same index, the index in Replicas of the point's owner.
type ring struct {
	points []uint64
	owners []int32
}

// NewConsistentHash returns an empty ConsistentHash.
func NewConsistentHash() *ConsistentHash { return &ConsistentHash{} }

// Pick returns the replica of svc that owns key; see Picker.
func (p *ConsistentHash) Pick(svc *snapshot.Service, h Health, key uint64, tried []*snapshot.Replica) *snapshot.Replica {
	if svc == nil || len(svc.Replicas) == 0 {
		return nil
	}
	rg := p.services.state(svc.Name).value(svc, buildRing)
	n, l := len(svc.Replicas), len(rg.points)
	start, _ := slices.BinarySearch(rg.points, mix64(key))
	var seen [seenBits / 64]uint64
	var fallback *snapshot.Replica
	distinct := 0
	for k := 0; k < l && (n > seenBits || distinct < n); k++ {
		i := start + k
		if i >= l {
			i -= l
		}
		o := rg.owners[i]
		if o < seenBits {
			word, bit := o/64, uint64(1)<<(o%64)
			if seen[word]&bit != 0 {
				continue
			}
			seen[word] |= bit
			distinct++
		}
		r := svc.Replicas[o]
		if wasTried(tried, r) {
			continue
		}
		if h.Available(r) {
			return r
		}
		if fallback == nil {
			fallback = r
		}
	}
	return fallback
}

// Prune forgets the rings of services that are not in keep.
func (p *ConsistentHash) Prune(keep *snapshot.Snapshot) { p.services.prune(keep) }

// buildRing computes the hash ring of svc, which must have replicas.
func buildRing(svc *snapshot.Service) *ring {
	counts := make([]int64, len(svc.Replicas))
	var total int64
	for i, r := range svc.Replicas {
		counts[i] = pointsPerWeight * weight(r)
		total += counts[i]
	}
	if total > maxRingPoints {
		scale := float64(maxRingPoints) / float64(total)
		total = 0
		for i, c := range counts {
			counts[i] = max(int64(float64(c)*scale), 1)
			total += counts[i]
		}
	}
	type point struct {
		hash  uint64
		owner int32
	}
	pts := make([]point, 0, total)
	for i, r := range svc.Replicas {
		base := HashKey(r.ID)
		for j := range counts[i] {
			// Golden-ratio steps through splitmix64 (its own generator),
			// so a replica's points are independent of each other.
			pts = append(pts, point{hash: mix64(base + uint64(j)*0x9e3779b97f4a7c15), owner: int32(i)})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		// A collision is resolved by ID, not by position in Replicas, so
		// that every instance resolves it the same way.
		return cmp.Compare(svc.Replicas[a.owner].ID, svc.Replicas[b.owner].ID)
	})
	rg := &ring{points: make([]uint64, len(pts)), owners: make([]int32, len(pts))}
	for i, pt := range pts {
		rg.points[i], rg.owners[i] = pt.hash, pt.owner
	}
	return rg
}
