//go:build race

package lab_test

// The race detector cannot run inside User-Mode Linux (ThreadSanitizer
// fails to map its shadow memory there), so the lab runs without it.
func init() { raceEnabled = true }
