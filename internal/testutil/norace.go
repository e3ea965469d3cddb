//go:build !race

package testutil

// Race reports that the race detector is on: allocation counts and timings
// are meaningless then, and large machines are too slow.
const Race = false
