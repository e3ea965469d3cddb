package blockdev

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrUnaligned is returned by [Device.ReadAt] and [Device.WriteAt] while
// direct I/O is on for a request whose offset or length is not a multiple
// of [Device.DirectAlign].
var ErrUnaligned = errors.New("blockdev: request not aligned for direct I/O")

// bounceBytes is the size of the aligned buffer through which direct I/O
// copies requests whose memory is not aligned.
const bounceBytes = 1 << 20

// DirectAlign returns the alignment direct I/O needs for offsets, lengths
// and buffer addresses: the logical block size of a block device; for a
// regular file what statx reports (STATX_DIOALIGN), else the page size.
func (d *Device) DirectAlign() int {
	if d.block {
		return max(d.lbs, 512)
	}
	var st unix.Statx_t
	err := unix.Statx(int(d.f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st)
	if err == nil && st.Mask&unix.STATX_DIOALIGN != 0 && st.Dio_offset_align > 0 {
		return int(max(st.Dio_offset_align, st.Dio_mem_align))
	}
	return os.Getpagesize()
}

// SetDirect turns direct I/O (O_DIRECT) on or off for the open device.
// Large sequential writes then go to the device without passing through the
// page cache, as `dd oflag=direct` does: no double caching (a loop device
// over a file), no dirty gigabytes left for the final flush. While it is
// on, ReadAt and WriteAt need offsets and lengths that are multiples of
// [Device.DirectAlign] (else [ErrUnaligned]); buffers not aligned in memory
// are copied through an aligned buffer. It fails (and nothing changes) when
// the filesystem does not support direct I/O. Flush is still needed to make
// the data durable (the device's write cache).
func (d *Device) SetDirect(on bool) error {
	fd := int(d.f.Fd())
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return &os.PathError{Op: "fcntl F_GETFL", Path: d.realPath, Err: err}
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl); err != nil {
		return &os.PathError{Op: "fcntl F_SETFL O_DIRECT", Path: d.realPath, Err: err}
	}
	a := 0
	if on {
		a = d.DirectAlign()
	}
	d.direct.Store(int64(a))
	return nil
}

// directIO performs one request while direct I/O is on: it checks the
// alignment of offset and length, and copies through the bounce buffer when
// p is not aligned in memory.
func (d *Device) directIO(p []byte, off int64, write bool, a int) (int, error) {
	op := "read"
	if write {
		op = "write"
	}
	if off%int64(a) != 0 || len(p)%a != 0 {
		return 0, &os.PathError{Op: op, Path: d.realPath, Err: fmt.Errorf("%w: offset %d, length %d, alignment %d", ErrUnaligned, off, len(p), a)}
	}
	if len(p) == 0 || uintptr(unsafe.Pointer(&p[0]))%uintptr(a) == 0 {
		if write {
			return d.f.WriteAt(p, off)
		}
		return d.f.ReadAt(p, off)
	}
	d.dio.Lock()
	defer d.dio.Unlock()
	if d.bounce == nil {
		// An anonymous mapping is page aligned, which covers every
		// direct I/O alignment (at most the page size).
		b, err := unix.Mmap(-1, 0, bounceBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return 0, &os.PathError{Op: "mmap", Path: d.realPath, Err: err}
		}
		d.bounce = b
	}
	done := 0
	for done < len(p) {
		n := min(len(p)-done, bounceBytes)
		var m int
		var err error
		if write {
			copy(d.bounce, p[done:done+n])
			m, err = d.f.WriteAt(d.bounce[:n], off+int64(done))
		} else {
			m, err = d.f.ReadAt(d.bounce[:n], off+int64(done))
			copy(p[done:], d.bounce[:m])
		}
		done += m
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// releaseBounce unmaps the bounce buffer.
func (d *Device) releaseBounce() {
	d.dio.Lock()
	defer d.dio.Unlock()
	if d.bounce != nil {
		_ = unix.Munmap(d.bounce)
		d.bounce = nil
	}
}
