package blockdev_test

import (
	"bytes"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

// directFlags returns the file status flags of d's descriptor.
func directFlags(t *testing.T, d *blockdev.Device) int {
	fl, err := unix.FcntlInt(d.Fd(), unix.F_GETFL, 0)
	require.NoError(t, err)
	return fl
}

// setDirect turns direct I/O on, skipping the test where the filesystem
// of the test directory refuses it.
func setDirect(t *testing.T, d *blockdev.Device) {
	err := d.SetDirect(true)
	if errors.Is(err, syscall.EINVAL) && !d.IsBlockDevice() {
		t.Skipf("the filesystem of %s does not support O_DIRECT: %v", d.Path(), err)
	}
	require.NoError(t, err)
}

// exerciseDirect writes and reads d with direct I/O on: aligned buffers,
// a buffer misaligned in memory (copied through the bounce buffer, also in
// pieces larger than it), and the refusal of misaligned offsets and
// lengths; then direct I/O off again.
func exerciseDirect(t *testing.T, d *blockdev.Device, backing string) {
	a := d.DirectAlign()
	require.Positive(t, a)
	require.Zero(t, a&(a-1), "alignment %d is a power of two", a)
	setDirect(t, d)
	assert.NotZero(t, directFlags(t, d)&unix.O_DIRECT)

	// Aligned: a large Go allocation is page aligned.
	big := bytes.Repeat([]byte{0xa5}, 1<<20)
	_, err := d.WriteAt(big, 0)
	require.NoError(t, err)

	// Misaligned in memory, 2 MiB + one alignment unit: through the
	// 1 MiB bounce buffer in three pieces.
	n := 2<<20 + a
	raw := make([]byte, n+1)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	odd := raw[1:]
	_, err = d.WriteAt(odd, int64(a))
	require.NoError(t, err)
	back := make([]byte, n+1)
	_, err = d.ReadAt(back[1:], int64(a))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(odd, back[1:]), "misaligned buffer round trip")

	_, err = d.WriteAt(make([]byte, a), 1)
	assert.ErrorIs(t, err, blockdev.ErrUnaligned, "offset")
	_, err = d.WriteAt(make([]byte, a+1), 0)
	assert.ErrorIs(t, err, blockdev.ErrUnaligned, "length")
	_, err = d.ReadAt(make([]byte, 100), 0)
	assert.ErrorIs(t, err, blockdev.ErrUnaligned, "read length")

	require.NoError(t, d.Flush())
	onDisk, err := os.ReadFile(backing)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big[:a], onDisk[:a]), "aligned write reached the file")
	assert.True(t, bytes.Equal(odd, onDisk[a:a+n]), "bounced write reached the file")

	require.NoError(t, d.SetDirect(false))
	assert.Zero(t, directFlags(t, d)&unix.O_DIRECT)
	_, err = d.WriteAt([]byte("x"), 1)
	require.NoError(t, err, "unaligned I/O is fine again without direct I/O")
}

func TestDirectIOFile(t *testing.T) {
	img := blockdevtest.Image(t, 8<<20)
	d, err := blockdev.Open(img, blockdev.ReadWrite)
	require.NoError(t, err)
	defer d.Close()
	exerciseDirect(t, d, img)
}

func TestDirectIOLoop(t *testing.T) {
	for _, ss := range []uint32{512, 4096} {
		img := blockdevtest.Image(t, 8<<20)
		dev := blockdevtest.AttachLoopWith(t, img, blockdevtest.LoopOptions{SectorSize: ss})
		d, err := blockdev.Open(dev, blockdev.ReadWrite)
		require.NoError(t, err)
		assert.Equal(t, int(ss), d.DirectAlign(), "a block device's alignment is its logical sector size")
		exerciseDirect(t, d, img)
		require.NoError(t, d.Close())
	}
}

func TestDirectIOReadOnly(t *testing.T) {
	img := blockdevtest.Image(t, 1<<20)
	want := bytes.Repeat([]byte("signature"), 1<<20/9+1)[:1<<20]
	require.NoError(t, os.WriteFile(img, want, 0o600))
	d, err := blockdev.Open(img, blockdev.ReadOnly)
	require.NoError(t, err)
	defer d.Close()
	setDirect(t, d)
	got := make([]byte, 64<<10)
	_, err = d.ReadAt(got, 4096)
	require.NoError(t, err)
	assert.Equal(t, want[4096:4096+64<<10], got)
	_, err = d.WriteAt(got, 0)
	assert.ErrorIs(t, err, blockdev.ErrReadOnly)
}
