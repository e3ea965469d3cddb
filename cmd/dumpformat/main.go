// Command dumpformat formats a partition for diskdump crash dumps, checks
// one, or writes a rehearsal dump to it. It is a re-implementation of
// diskdumpfmt from Red Hat's diskdumputils, with the same flags and exit
// codes; run `dumpformat -h` for the details.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
