package savecore

import (
	"os"
	"syscall"
)

// fileOwner returns the owner of a file from the stat data os.Stat already
// fetched; it is a type assertion, not a system call.
func fileOwner(fi os.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}
