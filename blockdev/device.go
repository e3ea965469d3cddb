package blockdev

import (
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// Mode says how [Open] opens a device.
type Mode int

const (
	// ReadOnly opens with O_RDONLY; it never fails because the device is in use.
	ReadOnly Mode = iota
	// ReadWrite opens with O_RDWR, and with O_EXCL on block devices so that a
	// mounted or otherwise held device is refused with an [*InUseError].
	ReadWrite
)

// String returns "ReadOnly" or "ReadWrite".
func (m Mode) String() string {
	switch m {
	case ReadOnly:
		return "ReadOnly"
	case ReadWrite:
		return "ReadWrite"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Device is an open block device or regular image file. Its size is fixed at
// open: a regular file stands in for a partition, so it is never extended.
// A Device is safe for concurrent ReadAt and WriteAt calls.
type Device struct {
	f        *os.File
	path     string // as given
	realPath string // symlinks resolved
	mode     Mode
	block    bool
	size     int64
	lbs, pbs int

	direct atomic.Int64 // alignment while direct I/O is on, else 0
	dio    sync.Mutex   // guards bounce
	bounce []byte       // aligned buffer for unaligned direct I/O (mmap)

	lock *os.File // holds the flock of OpenLocked, nil otherwise
}

var (
	_ io.ReaderAt = (*Device)(nil)
	_ io.WriterAt = (*Device)(nil)
	_ io.Closer   = (*Device)(nil)
)

// Path returns the path given to [Open].
func (d *Device) Path() string { return d.path }

// RealPath returns the path with symbolic links resolved.
func (d *Device) RealPath() string { return d.realPath }

// Name returns the path for messages: "given (real)" when a symlink was
// resolved, else just the path.
func (d *Device) Name() string {
	if d.path == d.realPath {
		return d.path
	}
	return d.path + " (" + d.realPath + ")"
}

// Mode returns the mode the device was opened with.
func (d *Device) Mode() Mode { return d.mode }

// IsBlockDevice reports whether the device is a block device rather than a
// regular file.
func (d *Device) IsBlockDevice() bool { return d.block }

// Size returns the size in bytes, as measured at open.
func (d *Device) Size() int64 { return d.size }

// LogicalBlockSize returns the smallest unit the device can address (512 for
// regular files).
func (d *Device) LogicalBlockSize() int { return d.lbs }

// PhysicalBlockSize returns the device's physical sector size, the unit it
// writes without read-modify-write (512 for regular files).
func (d *Device) PhysicalBlockSize() int { return d.pbs }

// Fd returns the file descriptor.
func (d *Device) Fd() uintptr { return d.f.Fd() }

// File returns the underlying file. Callers must not close it or change its
// size.
func (d *Device) File() *os.File { return d.f }

// ReadAt implements io.ReaderAt over [0, Size): reading at or past the end
// returns io.EOF, and a read that crosses the end returns the bytes before
// it with io.EOF.
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &RangeError{Op: "read", Path: d.realPath, Off: off, NBytes: len(p), Size: d.size}
	}
	if off >= d.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	short := false
	if rem := d.size - off; int64(len(p)) > rem {
		p, short = p[:rem], true
	}
	var n int
	var err error
	if a := d.direct.Load(); a != 0 {
		n, err = d.directIO(p, off, false, int(a))
	} else {
		n, err = d.f.ReadAt(p, off)
	}
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

// WriteAt implements io.WriterAt within [0, Size). A write that would cross
// the end writes nothing and returns a [*RangeError]; a device opened
// [ReadOnly] returns [ErrReadOnly].
func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	if d.mode != ReadWrite {
		return 0, &os.PathError{Op: "write", Path: d.realPath, Err: ErrReadOnly}
	}
	if off < 0 || off > d.size || int64(len(p)) > d.size-off {
		return 0, &RangeError{Op: "write", Path: d.realPath, Off: off, NBytes: len(p), Size: d.size}
	}
	if a := d.direct.Load(); a != 0 {
		return d.directIO(p, off, true, int(a))
	}
	return d.f.WriteAt(p, off)
}

// Close closes the device. It does not flush; call [Device.Flush] first
// when the data must be on the medium.
func (d *Device) Close() error {
	d.releaseBounce()
	err := d.f.Close()
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
	return err
}
