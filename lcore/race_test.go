//go:build race

package lcore

// raceEnabled is true when the race detector is on: long tests scale down.
const raceEnabled = true
