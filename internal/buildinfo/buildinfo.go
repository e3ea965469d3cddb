// Package buildinfo names the version of our commands for -V and the info
// file: the version stamped at link time (-ldflags -X main.version=...,
// set by make from git describe), and the VCS revision Go recorded when
// there is one. String is the entry point.
package buildinfo

import "runtime/debug"

// String is "PROG (dumpkit) VERSION", VERSION being version ("devel" when
// empty), followed by the first 12 digits of the VCS revision Go recorded
// in the binary when there is one.
func String(prog, version string) string {
	if version == "" {
		version = "devel"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				version += " (" + s.Value[:12] + ")"
			}
		}
	}
	return prog + " (dumpkit) " + version
}
