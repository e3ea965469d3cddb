// Root-only tests on real loop devices. File-based tests cannot cover what
// only the kernel's block layer does: the BLKGETSIZE64, BLKSSZGET and
// BLKPBSZGET answers (including a 4096-byte logical sector size), BLKFLSBUF
// dropping a stale device cache, O_EXCL refusing a device that is mounted,
// swapped on or opened exclusively, and finding those uses through
// /proc/self/mountinfo and /proc/swaps by major:minor.

package blockdev_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

func TestLoopSizeAndSectorSize(t *testing.T) {
	tests := []struct {
		name       string
		sectorSize uint32
		wantLBS    int
	}{
		{"default", 0, 512},
		{"4096", 4096, 4096},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const size = 16 << 20
			img := blockdevtest.Image(t, size)
			dev := blockdevtest.AttachLoopWith(t, img, blockdevtest.LoopOptions{SectorSize: tc.sectorSize})
			link := filepath.Join(t.TempDir(), "by-id")
			require.NoError(t, os.Symlink(dev, link))

			d, err := blockdev.Open(link, blockdev.ReadOnly)
			require.NoError(t, err)
			defer d.Close()
			assert.True(t, d.IsBlockDevice())
			assert.Equal(t, int64(size), d.Size())
			assert.Equal(t, tc.wantLBS, d.LogicalBlockSize())
			assert.GreaterOrEqual(t, d.PhysicalBlockSize(), d.LogicalBlockSize())
			assert.Zero(t, d.PhysicalBlockSize()%d.LogicalBlockSize())
			assert.Equal(t, dev, d.RealPath())
			assert.Equal(t, link+" ("+dev+")", d.Name())
		})
	}
}

func TestLoopReadWriteFlush(t *testing.T) {
	const size = 4 << 20
	img := blockdevtest.Image(t, size)
	dev := blockdevtest.AttachLoop(t, img)

	d, err := blockdev.Open(dev, blockdev.ReadWrite)
	require.NoError(t, err)
	defer d.Close()

	// Through the device to the backing file.
	sector := bytes.Repeat([]byte{0xd5}, 512)
	_, err = d.WriteAt(sector, size-512)
	require.NoError(t, err)
	require.NoError(t, d.Flush())
	onDisk, err := os.ReadFile(img)
	require.NoError(t, err)
	assert.Equal(t, sector, onDisk[size-512:])

	_, err = d.WriteAt(sector, size-256)
	assert.ErrorIs(t, err, blockdev.ErrOutOfRange, "no write past the end of a device")

	// Behind the device's back, as the crashing kernel does: read once so
	// the device caches the page, change the backing file, then Flush
	// (BLKFLSBUF) so the device reads the new bytes.
	p := make([]byte, 512)
	_, err = d.ReadAt(p, 0)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, 512), p)
	fresh := bytes.Repeat([]byte("DISKDUMP"), 64)
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(fresh, 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	require.NoError(t, d.Flush())
	_, err = d.ReadAt(p, 0)
	require.NoError(t, err)
	assert.Equal(t, fresh, p)
}

func TestLoopExclusiveOpen(t *testing.T) {
	dev := blockdevtest.AttachLoop(t, blockdevtest.Image(t, 1<<20))
	ie, err := blockdev.CheckInUse(dev)
	require.NoError(t, err)
	assert.Nil(t, ie, "an idle loop device is not in use")

	d, err := blockdev.Open(dev, blockdev.ReadWrite)
	require.NoError(t, err)
	defer d.Close()

	_, err = blockdev.Open(dev, blockdev.ReadWrite)
	require.ErrorIs(t, err, blockdev.ErrInUse, "a second O_EXCL open must fail")
	assert.ErrorIs(t, err, syscall.EBUSY)
	var iue *blockdev.InUseError
	require.ErrorAs(t, err, &iue)
	assert.Empty(t, iue.MountPoint)
	assert.False(t, iue.Swap)

	ro, err := blockdev.Open(dev, blockdev.ReadOnly)
	require.NoError(t, err, "read-only opens are not exclusive")
	assert.NoError(t, ro.Close())
}

func TestLoopMountedRefused(t *testing.T) {
	img := blockdevtest.Image(t, 32<<20)
	blockdevtest.MakeExt4(t, img)
	dev := blockdevtest.AttachLoop(t, img)
	mp := blockdevtest.Mount(t, dev, "ext4")
	link := filepath.Join(t.TempDir(), "dumpdev")
	require.NoError(t, os.Symlink(dev, link))

	d, err := blockdev.Open(link, blockdev.ReadWrite)
	assert.Nil(t, d)
	require.ErrorIs(t, err, blockdev.ErrInUse)
	assert.ErrorIs(t, err, syscall.EBUSY)
	var ie *blockdev.InUseError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, link, ie.Path)
	assert.Equal(t, dev, ie.Dev)
	assert.Equal(t, mp, ie.MountPoint)
	assert.False(t, ie.Swap)
	assert.Contains(t, err.Error(), "mounted on "+mp)

	ie, err = blockdev.CheckInUse(link)
	require.NoError(t, err)
	require.NotNil(t, ie)
	assert.Equal(t, mp, ie.MountPoint)
	assert.Empty(t, ie.Part)

	ro, err := blockdev.Open(link, blockdev.ReadOnly)
	require.NoError(t, err, "dumpformat -c reads a mounted device")
	defer ro.Close()
	sigs, err := blockdev.Probe(ro, ro.Size())
	require.NoError(t, err)
	require.NotEmpty(t, sigs)
	assert.Equal(t, "ext4", sigs[0].Kind)
}

func TestLoopSwapRefused(t *testing.T) {
	dev := blockdevtest.AttachLoop(t, blockdevtest.Image(t, 16<<20))
	blockdevtest.Swapon(t, dev)

	swap, err := blockdev.SwapActive(dev)
	require.NoError(t, err)
	assert.True(t, swap)

	_, err = blockdev.Open(dev, blockdev.ReadWrite)
	require.ErrorIs(t, err, blockdev.ErrInUse)
	var ie *blockdev.InUseError
	require.ErrorAs(t, err, &ie)
	assert.True(t, ie.Swap)
	assert.Empty(t, ie.MountPoint)
	assert.Contains(t, err.Error(), "active swap")

	ie, err = blockdev.CheckInUse(dev)
	require.NoError(t, err)
	require.NotNil(t, ie)
	assert.True(t, ie.Swap)

	ro, err := blockdev.Open(dev, blockdev.ReadOnly)
	require.NoError(t, err)
	defer ro.Close()
	sigs, err := blockdev.Probe(ro, ro.Size())
	require.NoError(t, err)
	require.Len(t, sigs, 1)
	assert.Equal(t, "swap", sigs[0].Kind)
	assert.Equal(t, int64(os.Getpagesize()-10), sigs[0].Off)
}

// writeMBR writes a DOS partition table with one Linux partition of
// nsectors 512-byte sectors starting at sector start.
func writeMBR(t *testing.T, img string, start, nsectors uint32) {
	t.Helper()
	mbr := make([]byte, 512)
	entry := mbr[446:462]
	entry[4] = 0x83 // Linux
	binary.LittleEndian.PutUint32(entry[8:], start)
	binary.LittleEndian.PutUint32(entry[12:], nsectors)
	mbr[510], mbr[511] = 0x55, 0xAA
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(mbr, 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestLoopPartitionMountedRefusesWholeDisk(t *testing.T) {
	img := blockdevtest.Image(t, 64<<20)
	writeMBR(t, img, 2048, 32<<11) // 32 MiB at 1 MiB
	disk := blockdevtest.AttachLoopWith(t, img, blockdevtest.LoopOptions{PartScan: true})
	part := blockdevtest.Partition(t, disk, 1)
	blockdevtest.MakeExt4(t, part)
	mp := blockdevtest.Mount(t, part, "ext4")

	ie, err := blockdev.CheckInUse(disk)
	require.NoError(t, err)
	require.NotNil(t, ie, "a whole disk with a mounted partition is in use")
	assert.Equal(t, part, ie.Part)
	assert.Equal(t, mp, ie.MountPoint)
	assert.Contains(t, ie.Error(), "partition "+part+" mounted on "+mp)

	_, err = blockdev.Open(disk, blockdev.ReadWrite)
	require.ErrorIs(t, err, blockdev.ErrInUse)
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, part, ie.Part)
	assert.Equal(t, mp, ie.MountPoint)

	d, err := blockdev.Open(part, blockdev.ReadOnly)
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, int64(32<<20), d.Size())
}
