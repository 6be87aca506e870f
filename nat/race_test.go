//go:build race

package nat

// raceEnabled is true when the race detector is on: long tests scale down.
const raceEnabled = true
