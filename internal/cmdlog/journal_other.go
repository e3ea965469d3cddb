//go:build !linux

package cmdlog

import "os"

// IsJournal reports whether f is the stream systemd connected to the
// journal; the journal exists only on Linux.
func IsJournal(f *os.File) bool { return false }
