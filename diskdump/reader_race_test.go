//go:build race

package diskdump

// rdrRace reports that the race detector is on: allocation counts and
// timings are meaningless then.
const rdrRace = true
