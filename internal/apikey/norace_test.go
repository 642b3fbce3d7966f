//go:build !race

package apikey

// raceEnabled reports a -race build, where sync.Pool drops items at random.
const raceEnabled = false
