package blockdev

import (
	"errors"
	"fmt"
)

// ErrInUse is matched (via errors.Is) by every [*InUseError]: the device is
// mounted, active swap, held by another kernel driver or opened exclusively
// by another process.
var ErrInUse = errors.New("blockdev: device is in use")

// ErrNotDevice means the path is neither a block device nor a regular file.
var ErrNotDevice = errors.New("blockdev: not a block device or regular file")

// ErrReadOnly means a write was attempted on a [Device] opened [ReadOnly].
var ErrReadOnly = errors.New("blockdev: device opened read-only")

// ErrOutOfRange is matched by every [*RangeError]: an access outside the
// device's size.
var ErrOutOfRange = errors.New("blockdev: access beyond end of device")

// InUseError reports why a device cannot be written to.
type InUseError struct {
	Path       string // name given by the caller
	Dev        string // resolved device path
	Part       string // partition of Dev that is mounted or swap, if not Dev itself
	MountPoint string // where Dev (or Part) is mounted, if it is
	Swap       bool   // Dev (or Part) is active swap
	Holder     string // kernel holder from sysfs (e.g. "dm-0"), if any
	Err        error  // underlying error, e.g. EBUSY from an O_EXCL open
}

func (e *InUseError) name() string {
	if e.Dev == "" || e.Dev == e.Path {
		return e.Path
	}
	return e.Path + " (" + e.Dev + ")"
}

// Error names the device and where it is mounted, or that it is swap.
func (e *InUseError) Error() string {
	who := ""
	if e.Part != "" {
		who = "partition " + e.Part + " "
	}
	var why string
	switch {
	case e.MountPoint != "":
		why = who + "mounted on " + e.MountPoint
	case e.Swap:
		why = who + "active swap"
	case e.Holder != "":
		why = who + "held by " + e.Holder
	case e.Err != nil:
		why = e.Err.Error()
	default:
		why = "busy"
	}
	return fmt.Sprintf("blockdev: %s is in use: %s", e.name(), why)
}

// Unwrap returns the underlying error, if any.
func (e *InUseError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrInUse].
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// RangeError reports a read or write outside [0, Size).
type RangeError struct {
	Op     string // "read" or "write"
	Path   string // resolved device path
	Off    int64  // offset of the access in bytes
	NBytes int    // length of the access in bytes
	Size   int64  // device size in bytes
}

// Error describes the access and the device size.
func (e *RangeError) Error() string {
	return fmt.Sprintf("blockdev: %s %s: %d bytes at offset %#x outside device size %#x",
		e.Path, e.Op, e.NBytes, e.Off, e.Size)
}

// Is reports whether target is [ErrOutOfRange].
func (e *RangeError) Is(target error) bool { return target == ErrOutOfRange }
