// Package failpoint kills the process at named points of a save or a
// format when the environment variable DUMPKIT_FAILPOINT (Env) arms one:
// the crash-consistency tests of savecore and dumpformat use it. Hit is
// the entry point; unset, it costs one load and compare.
package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Env is the environment variable that arms a failpoint for
// crash-consistency tests: "NAME" kills the process with SIGKILL the first
// time the point NAME is hit, "NAME:N" the N-th time. The points are
// listed in Names. Unset (the normal case), Hit costs one load
// and compare.
const Env = "DUMPKIT_FAILPOINT"

// Names lists the points where savecore and dumpformat call
// Hit, in the order a save with -D reaches them:
//
//	before-write    the temporary vmcore file exists, nothing written yet
//	write           hit once per MiB of vmcore written ("write:3" = after 3 MiB)
//	before-rename   the temporary file is complete, not yet renamed
//	after-rename    renamed to vmcore, dump directory not yet fsynced
//	after-dirsync   dump directory and dump root fsynced: the save is durable
//	before-erase    -D/-X: nothing written to the partition yet
//	after-invalidate  block 1 invalidated, format signatures not yet restored
//	after-erase     erase written, device not yet flushed
//	after-flush     the erase reached the device
//	format          dumpformat: hit after each piece of a format is written
var Names = []string{"before-write", "write", "before-rename", "after-rename", "after-dirsync",
	"before-erase", "after-invalidate", "after-erase", "after-flush", "format"}

// armed is the parsed Env, nil when unset.
var armed = parseFailpoint(os.Getenv(Env))

type failpointSpec struct {
	name string
	n    int64 // fire on this hit (1-based)
	hits atomic.Int64
}

// parseFailpoint parses "NAME" or "NAME:N"; an empty or malformed value
// arms nothing (a malformed one is reported on stderr, since a test that
// sets it would otherwise silently test nothing).
func parseFailpoint(s string) *failpointSpec {
	if s == "" {
		return nil
	}
	name, count, hasCount := strings.Cut(s, ":")
	n := int64(1)
	if hasCount {
		v, err := strconv.ParseInt(count, 10, 64)
		if err != nil || v < 1 {
			fmt.Fprintf(os.Stderr, "%s=%q: want NAME or NAME:N with N >= 1; no failpoint armed\n", Env, s)
			return nil
		}
		n = v
	}
	if name == "" {
		fmt.Fprintf(os.Stderr, "%s=%q: empty point name; no failpoint armed\n", Env, s)
		return nil
	}
	return &failpointSpec{name: name, n: n}
}

// Hit kills the process with SIGKILL, as a crash or power cut would
// stop it, when Env arms the point name and this is its N-th hit.
// It prints "failpoint NAME:N" on stderr first, so a harness can tell that
// the point was reached. It does nothing when Env is unset.
func Hit(name string) {
	fp := armed
	if fp == nil || fp.name != name {
		return
	}
	if fp.hits.Add(1) != fp.n {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s:%d\n", name, fp.n)
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		err = p.Kill() // SIGKILL: no deferred function, no cleanup runs
	}
	if err == nil {
		// The signal is delivered as the kill system call returns; never
		// go on in the meantime.
		for {
			time.Sleep(time.Hour)
		}
	}
	fmt.Fprintf(os.Stderr, "failpoint %s: cannot kill the process: %v\n", name, err)
	os.Exit(137)
}
