package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/dumpkit/dumpkit/internal/cmdlog"
	"github.com/dumpkit/dumpkit/savecore"
)

// check is savecore --check: it reads each device without writing, prints
// one line per dump waiting on stdout, and exits 0 when at least one
// waits, 1 when none does.
func check(s settings, format string, stdout io.Writer, log *slog.Logger) int {
	inputs, closeAll := openDevices(s.devs, false, log)
	defer closeAll()
	found := false
	for _, r := range savecore.Check(inputs, savecore.Options{Format: format}) {
		switch {
		case r.Err != nil:
			log.Error("cannot read the device; check the name and the permissions", "device", r.Device, "err", r.Err)
		case r.Dump == nil:
			log.Info("no dump", "device", r.Device)
		default:
			found = true
			fmt.Fprintln(stdout, waitingLine(r.Device, r.Dump))
		}
	}
	if found {
		return exitOK
	}
	return exitFail
}

// waitingLine describes a waiting dump on one line: the device, then
// comma-separated facts.
func waitingLine(dev string, w *savecore.Waiting) string {
	facts := []string{
		"crashed " + w.Crashed.Format(cmdlog.TimeLayout),
		"host " + w.Utsname.Nodename,
		"release " + w.Utsname.Release,
		"machine " + w.Utsname.Machine,
		"status " + w.Status.String(),
		iec(w.Written) + "B dumped",
		"vmcore about " + iec(w.Estimate) + "B",
	}
	return printable(dev + ": dump waiting: " + strings.Join(facts, ", "))
}

// printable replaces control characters, which a damaged header may hold,
// with '?' so that each dump stays on one line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
