package blockdevtest

import (
	"io"
	"os"
	"syscall"

	"github.com/dsnet/golib/memfile"
)

// FaultDevice is an in-memory stand-in for a blockdev.Device whose reads and
// writes fail where a test says, the way a disk with bad sectors does. It
// has the ReadAt, WriteAt and Size methods that savecore and dumpformat use.
type FaultDevice struct {
	// ReaderAt and WriterAt hold the data; WriterAt may be nil for a
	// read-only device, whose writes then fail with EROFS.
	ReaderAt io.ReaderAt
	WriterAt io.WriterAt
	// NBytes is the device size: reads stop there with io.EOF and writes
	// past it fail.
	NBytes int64
	// Path names the device in errors; "faultdev" when empty.
	Path string
	// FailRead and FailWrite, when set, are asked before each access of
	// nbytes at off; a non-nil result fails the whole access, wrapped in an
	// *os.PathError. See [BadRange].
	FailRead  func(off int64, nbytes int) error
	FailWrite func(off int64, nbytes int) error
}

// NewFaultDevice returns a FaultDevice over a copy-free memfile of b, with
// no faults set.
func NewFaultDevice(b []byte) *FaultDevice {
	f := memfile.New(b)
	return &FaultDevice{ReaderAt: f, WriterAt: f, NBytes: int64(len(b))}
}

// BadRange returns a fault function that fails, with syscall.EIO, every
// access that touches a byte in [start, end).
func BadRange(start, end int64) func(off int64, nbytes int) error {
	return func(off int64, nbytes int) error {
		if nbytes > 0 && off < end && off+int64(nbytes) > start {
			return syscall.EIO
		}
		return nil
	}
}

// Size returns NBytes.
func (d *FaultDevice) Size() int64 { return d.NBytes }

func (d *FaultDevice) name() string {
	if d.Path == "" {
		return "faultdev"
	}
	return d.Path
}

// ReadAt reads within [0, NBytes) unless FailRead rejects the access.
func (d *FaultDevice) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "read", Path: d.name(), Err: syscall.EINVAL}
	}
	if off >= d.NBytes {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	short := false
	if rem := d.NBytes - off; int64(len(p)) > rem {
		p, short = p[:rem], true
	}
	if d.FailRead != nil {
		if err := d.FailRead(off, len(p)); err != nil {
			return 0, &os.PathError{Op: "read", Path: d.name(), Err: err}
		}
	}
	n, err := d.ReaderAt.ReadAt(p, off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

// WriteAt writes within [0, NBytes) unless FailWrite rejects the access.
// A write crossing the end writes nothing and fails with ENOSPC, as a
// block device does.
func (d *FaultDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.WriterAt == nil {
		return 0, &os.PathError{Op: "write", Path: d.name(), Err: syscall.EROFS}
	}
	if off < 0 {
		return 0, &os.PathError{Op: "write", Path: d.name(), Err: syscall.EINVAL}
	}
	if off > d.NBytes || int64(len(p)) > d.NBytes-off {
		return 0, &os.PathError{Op: "write", Path: d.name(), Err: syscall.ENOSPC}
	}
	if d.FailWrite != nil {
		if err := d.FailWrite(off, len(p)); err != nil {
			return 0, &os.PathError{Op: "write", Path: d.name(), Err: err}
		}
	}
	return d.WriterAt.WriteAt(p, off)
}
