//go:build linux && !race

package executor

const raceEnabled = false
