package cmdlog

import (
	"fmt"
	"os"
	"syscall"
)

// IsJournal reports whether f is the stream systemd connected to the
// journal: systemd puts "DEVICE:INODE" of that stream in JOURNAL_STREAM, and
// it applies only when f is still that very file (a child whose standard
// error was redirected inherits the variable but not the stream).
func IsJournal(f *os.File) bool {
	want := os.Getenv("JOURNAL_STREAM")
	if want == "" || f == nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return want == fmt.Sprintf("%d:%d", uint64(st.Dev), uint64(st.Ino))
}
