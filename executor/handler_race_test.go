//go:build linux && race

package executor

const raceEnabled = true
