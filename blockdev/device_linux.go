package blockdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Open opens path, a block device or a regular file, in the given mode.
// Symbolic links are resolved first. Opening a block device [ReadWrite] uses
// O_EXCL, which the kernel refuses with EBUSY while the device (or one of
// its partitions) is mounted, active swap or claimed by another driver; Open
// then returns an [*InUseError] saying why. A regular file that is active
// swap is refused in the same way.
func Open(path string, mode Mode) (*Device, error) {
	if mode != ReadOnly && mode != ReadWrite {
		return nil, fmt.Errorf("blockdev: open %s: invalid mode %v", path, mode)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !isBlock(fi) && !fi.Mode().IsRegular() {
		return nil, &os.PathError{Op: "open", Path: real, Err: ErrNotDevice}
	}

	flag := os.O_RDONLY
	if mode == ReadWrite {
		flag = os.O_RDWR
		if isBlock(fi) {
			// On a block device O_EXCL does not create anything: it claims
			// the device exclusively, and fails with EBUSY when a mounted
			// filesystem, swap, dm/md or another O_EXCL opener holds it.
			flag |= os.O_EXCL
		} else if ie, err := CheckInUse(path); err != nil {
			return nil, err
		} else if ie != nil {
			// A swap file is not claimed like a device, so ask /proc/swaps.
			return nil, ie
		}
	}
	f, err := os.OpenFile(real, flag, 0)
	if err != nil {
		if mode == ReadWrite && errors.Is(err, unix.EBUSY) {
			ie, cerr := CheckInUse(path)
			if cerr != nil || ie == nil {
				ie = &InUseError{Path: path, Dev: real}
			}
			ie.Err = err
			return nil, ie
		}
		return nil, err
	}
	d := &Device{f: f, path: path, realPath: real, mode: mode, lbs: 512, pbs: 512}
	if err := d.init(); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func isBlock(fi os.FileInfo) bool {
	return fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
}

// init measures the opened file. It uses fstat on the descriptor rather
// than the earlier stat so that a path swapped in between cannot fool it.
func (d *Device) init() error {
	fi, err := d.f.Stat()
	if err != nil {
		return err
	}
	fd := int(d.f.Fd())
	switch {
	case isBlock(fi):
		d.block = true
		// st_size of a device node is 0; the kernel reports the device's
		// byte size through BLKGETSIZE64 (a u64).
		size, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64)
		if err != nil {
			return &os.PathError{Op: "ioctl BLKGETSIZE64", Path: d.realPath, Err: err}
		}
		if size > 1<<63-1 {
			return fmt.Errorf("blockdev: %s: size %d too large", d.Name(), size)
		}
		d.size = int64(size)
		// Both ioctls write a 4-byte int, so IoctlGetUint32 is right on
		// every architecture while IoctlGetInt is not.
		lbs, err := unix.IoctlGetUint32(fd, unix.BLKSSZGET)
		if err != nil {
			return &os.PathError{Op: "ioctl BLKSSZGET", Path: d.realPath, Err: err}
		}
		pbs, err := unix.IoctlGetUint32(fd, unix.BLKPBSZGET)
		if err != nil {
			return &os.PathError{Op: "ioctl BLKPBSZGET", Path: d.realPath, Err: err}
		}
		d.lbs, d.pbs = int(lbs), int(pbs)
	case fi.Mode().IsRegular():
		d.size = fi.Size()
	default:
		return &os.PathError{Op: "open", Path: d.realPath, Err: ErrNotDevice}
	}
	// Dumps are read and written front to back: ask for aggressive
	// read-ahead instead of O_DIRECT's alignment rules. The advice is only
	// a hint, so a kernel or filesystem that rejects it changes nothing.
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_SEQUENTIAL)
	return nil
}

// Flush makes written data durable: fsync, and for block devices also
// BLKFLSBUF. The kernel writes a crash dump straight to the disk, bypassing
// the page cache, and tests write a loop device's backing file behind the
// device's back; BLKFLSBUF drops the device's cached pages so the next read
// sees what is on the medium rather than a stale copy. It needs
// CAP_SYS_ADMIN.
func (d *Device) Flush() error {
	if err := d.f.Sync(); err != nil {
		return err
	}
	if !d.block {
		return nil
	}
	if err := unix.IoctlSetInt(int(d.f.Fd()), unix.BLKFLSBUF, 0); err != nil {
		return &os.PathError{Op: "ioctl BLKFLSBUF", Path: d.realPath, Err: err}
	}
	return nil
}
