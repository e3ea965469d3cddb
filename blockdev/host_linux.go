package blockdev

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// FreeSpace returns the bytes available to an unprivileged user on the
// filesystem holding dir (f_bavail times the fragment size, which is the
// unit f_bavail counts in; f_bsize is only the preferred I/O size).
func FreeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	unit := uint64(st.Frsize)
	if unit == 0 {
		unit = uint64(st.Bsize)
	}
	return st.Bavail * unit, nil
}

// SyncDir fsyncs a directory so that entries created, renamed or removed in
// it survive a crash. renameio and os.Rename make a rename atomic but not
// durable: the new directory entry lives in the page cache until the
// directory itself is synced.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Preallocate reserves n bytes for f with fallocate(2) mode 0, so that
// running out of space shows up before a long copy rather than in the
// middle of it, and the file is less fragmented. The file size grows to n if
// it was smaller. Filesystems without fallocate (EOPNOTSUPP) are not an
// error: the copy will simply allocate as it goes.
func Preallocate(f *os.File, n int64) error {
	if n <= 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), 0, 0, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
	}
	return nil
}

// IsTerminal reports whether f is a terminal: the TCGETS ioctl, which only
// a tty driver answers, succeeds.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
