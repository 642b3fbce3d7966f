package balance

// FNV-1a 64-bit parameters (draft-eastlake-fnv, section 2).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// HashKey returns the 64-bit FNV-1a hash of s, the key ConsistentHash
// expects. It is the same in every process and version, so all gateway
// instances send a given client to the same replica. It does not allocate.
func HashKey(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// mix64 is the splitmix64 finaliser. FNV-1a leaves similar inputs (client
// addresses that differ in the last byte) close together in the high bits;
// mixing spreads them over the ring. It is a fixed function, so positions
// stay the same across processes.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
