//go:build linux && !race

package exampletest

// Race reports a -race build, whose memory use says little about a server's.
const Race = false
