package blockdev

import (
	"os"

	"golang.org/x/sys/unix"
)

// StartWriteback asks the kernel to start writing the dirty pages of f in
// [off, off+n) to the disk, without waiting for it (sync_file_range
// SYNC_FILE_RANGE_WRITE). A long copy that ends in fsync otherwise leaves
// all its data in the page cache until that fsync (the background flusher
// only starts at dirty_background_ratio, gigabytes on a big machine), so
// reading and writing would run one after the other instead of at once.
// It is only a hint for speed: durability still comes from fsync.
func StartWriteback(f *os.File, off, n int64) error {
	if err := unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE); err != nil {
		return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: err}
	}
	return nil
}

// AwaitWriteback writes back the dirty pages of f in [off, off+n) and
// waits until they are on the disk (sync_file_range WAIT_BEFORE, WRITE,
// WAIT_AFTER; no metadata, so not a substitute for fsync), then drops them
// from the page cache (FADV_DONTNEED): a multi-gigabyte copy then keeps
// only a bounded window of dirty and cached pages, instead of pushing the
// rest of the system's cache out.
func AwaitWriteback(f *os.File, off, n int64) error {
	const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	if err := unix.SyncFileRange(int(f.Fd()), off, n, wait); err != nil {
		return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: err}
	}
	// Advice only: a filesystem that ignores it changes nothing.
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
	return nil
}
