//go:build !linux

package console

import "os"

// IsJournal reports whether f is the stream systemd connected to the
// journal; the journal exists only on Linux.
func IsJournal(f *os.File) bool { return false }
