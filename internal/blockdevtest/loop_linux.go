package blockdevtest

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// LoopOptions configures [AttachLoopWith].
type LoopOptions struct {
	// SectorSize is the logical sector size, like `losetup --sector-size`;
	// 0 means the kernel default, 512.
	SectorSize uint32
	// PartScan makes the kernel read the partition table and create
	// /dev/loopNpM nodes (LO_FLAGS_PARTSCAN, `losetup --partscan`).
	PartScan bool
}

// AttachLoop attaches file to a free loop device with 512-byte sectors and
// returns the device path, e.g. "/dev/loop3". See [AttachLoopWith].
func AttachLoop(t testing.TB, file string) string {
	t.Helper()
	return AttachLoopWith(t, file, LoopOptions{})
}

// AttachLoopWith attaches file to a free loop device configured by opts,
// like `losetup --find --show`. The device is configured with
// LO_FLAGS_AUTOCLEAR, so the kernel detaches it when the last opener closes
// it even if the test process dies; t.Cleanup also detaches it explicitly.
// It skips (or fails under DISKDUMP_REQUIRE_LOOP=1) without root or loop
// support.
func AttachLoopWith(t testing.TB, file string, opts LoopOptions) string {
	t.Helper()
	RequireLoop(t)
	backing, err := os.OpenFile(file, os.O_RDWR, 0)
	require.NoError(t, err)
	// The loop driver takes its own reference to the backing file.
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	require.NoError(t, err)
	defer ctl.Close()

	// Another process (a parallel test, udisks) may grab the device that
	// LOOP_CTL_GET_FREE offered before we configure it: that gives EBUSY,
	// and we ask again.
	for attempt := 0; attempt < 20; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		require.NoError(t, err, "ioctl LOOP_CTL_GET_FREE")
		path := fmt.Sprintf("/dev/loop%d", n)
		loop, err := openNode(path)
		require.NoError(t, err)
		err = configure(loop, backing, file, opts)
		if errors.Is(err, unix.EBUSY) {
			loop.Close()
			continue
		}
		if err != nil {
			loop.Close()
			require.NoError(t, err, "attach %s to %s", file, path)
		}
		t.Cleanup(func() {
			// With AUTOCLEAR, LOOP_CLR_FD detaches now if we are the last
			// opener and otherwise as soon as the others close; ENXIO means
			// it is already detached.
			if err := unix.IoctlSetInt(int(loop.Fd()), unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) {
				t.Errorf("ioctl LOOP_CLR_FD %s: %v", path, err)
			}
			loop.Close()
		})
		return path
	}
	t.Fatalf("no free loop device for %s after repeated EBUSY", file)
	return ""
}

// Partition returns the path of partition n of a loop device attached with
// PartScan, e.g. "/dev/loop3p1", waiting briefly for its node to appear.
// Kernels built without partition-table support (some minimal VM kernels)
// never create it; the test is then skipped even under
// DISKDUMP_REQUIRE_LOOP=1, since no set-up on the host can fix that.
func Partition(t testing.TB, dev string, n int) string {
	t.Helper()
	path := fmt.Sprintf("%sp%d", dev, n)
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(path); err == nil {
			return path
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Skipf("kernel created no partition %s (no partition-table support?)", path)
	return ""
}

// openNode opens a loop device node, waiting briefly for devtmpfs to create
// a node that LOOP_CTL_GET_FREE has just added.
func openNode(path string) (*os.File, error) {
	for i := 0; ; i++ {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err == nil || !errors.Is(err, os.ErrNotExist) || i == 50 {
			return f, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// configure binds backing to loop with LOOP_CONFIGURE (Linux 5.8+), which
// sets the file, flags and sector size in one step, falling back to
// LOOP_SET_FD, LOOP_SET_STATUS64 and LOOP_SET_BLOCK_SIZE on older kernels.
func configure(loop, backing *os.File, name string, opts LoopOptions) error {
	sectorSize := opts.SectorSize
	info := unix.LoopInfo64{Flags: unix.LO_FLAGS_AUTOCLEAR}
	if opts.PartScan {
		info.Flags |= unix.LO_FLAGS_PARTSCAN
	}
	copy(info.File_name[:len(info.File_name)-1], name)
	cfg := unix.LoopConfig{Fd: uint32(backing.Fd()), Size: sectorSize, Info: info}
	fd := int(loop.Fd())
	err := unix.IoctlLoopConfigure(fd, &cfg)
	if !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EINVAL) {
		return wrap("LOOP_CONFIGURE", loop, err)
	}
	if err := unix.IoctlSetInt(fd, unix.LOOP_SET_FD, int(backing.Fd())); err != nil {
		return wrap("LOOP_SET_FD", loop, err)
	}
	if err := unix.IoctlLoopSetStatus64(fd, &info); err != nil {
		unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		return wrap("LOOP_SET_STATUS64", loop, err)
	}
	if sectorSize != 0 {
		if err := unix.IoctlSetInt(fd, unix.LOOP_SET_BLOCK_SIZE, int(sectorSize)); err != nil {
			unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
			return wrap("LOOP_SET_BLOCK_SIZE", loop, err)
		}
	}
	return nil
}

func wrap(op string, f *os.File, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: "ioctl " + op, Path: f.Name(), Err: err}
}
