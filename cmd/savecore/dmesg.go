package main

import (
	"io"

	"github.com/dumpkit/dumpkit/savecore"
)

// runDmesg is savecore --dmesg SOURCE: the kernel log on stdout, nothing
// written. Exit 0 when the whole log was printed, 1 otherwise.
func runDmesg(f *flags, stdout, stderr io.Writer) int {
	if len(f.devs) > 0 || f.del || f.delOnly {
		return usageError(stderr, "--dmesg takes one SOURCE and no DEVICE, -D or -X")
	}
	log := newLogger(stderr, f, false)
	if err := savecore.WriteDmesg(stdout, f.dmesgSrc, f.systemMap); err != nil {
		log.Error(trimPkg(err))
		return exitFail
	}
	return exitOK
}
