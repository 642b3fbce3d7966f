//go:build !race

package telemetry

// raceEnabled reports whether the race detector is on: it makes sync.Pool
// drop items at random, so allocation budgets are not checked under it.
const raceEnabled = false
