// Loop-device tests of dumpformat (root). What the file-based tests cannot
// cover: block devices sized with BLKGETSIZE64, the O_EXCL refusal of a
// mounted, swapped-on or exclusively held device (exit 7), the mount and
// swap checks of -c, Flush's BLKFLSBUF, 4 KiB logical sectors, and device
// names resolved from a symbolic link.
package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

func loopImage(t *testing.T, blocks int64) (file, dev string) {
	t.Helper()
	blockdevtest.RequireLoop(t)
	file = imageFile(t, blocks, 0)
	return file, blockdevtest.AttachLoop(t, file)
}

// readDevice reads the whole device, after dropping its cached pages so
// that the reads come from the backing file.
func readDevice(t *testing.T, dev string) []byte {
	t.Helper()
	f, err := os.Open(dev)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0))
	b, err := os.ReadFile(dev)
	require.NoError(t, err)
	return b
}

func TestLoopFormatAndCheck(t *testing.T) {
	const blocks = 2100
	file, dev := loopImage(t, blocks)
	link := filepath.Join(t.TempDir(), "dumpdev")
	require.NoError(t, os.Symlink(dev, link))

	code, out := checkJSONOf(t, dev)
	assert.Equal(t, int(diskdump.CheckNeedsInitial), code)
	assert.Equal(t, uint64(blocks), out.DeviceBlocks)

	code, _, stderr := dumpformat(t, "-f", link)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, link+" ("+dev+"): formatted (initial, direct I/O)", "a block device is formatted with O_DIRECT")
	// Flush reached the backing file: every block carries its signature.
	img := readFile(t, file)
	for blk := uint64(0); blk < blocks; blk++ {
		if !diskdump.IsSignatureBlock(img[blk*bs:(blk+1)*bs], blk, le) {
			t.Fatalf("block %d of the backing file has no signature", blk)
		}
	}
	code, out = checkJSONOf(t, link)
	assert.Equal(t, 0, code)
	assert.Equal(t, dev, out.RealPath)

	// Damage every block but 0 through the device, then normal-format.
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	require.NoError(t, err)
	for blk := int64(1); blk < blocks; blk++ {
		_, err := f.WriteAt([]byte("damaged!"), blk*bs+64)
		require.NoError(t, err)
	}
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	code, _ = checkJSONOf(t, dev)
	assert.Equal(t, int(diskdump.CheckNeedsFormat), code)

	code, _, stderr = dumpformat(t, dev)
	require.Equal(t, 0, code, stderr)
	sampled := map[uint64]bool{}
	for c := range diskdump.NormalFormatBlocks(blocks, defaultFP) {
		for b := c.Blk; b < c.Blk+c.N; b++ {
			sampled[b] = true
		}
	}
	img = readDevice(t, dev)
	for blk := uint64(0); blk < blocks; blk++ {
		ok := diskdump.IsSignatureBlock(img[blk*bs:(blk+1)*bs], blk, le)
		if ok != (blk == 0 || sampled[blk]) {
			t.Fatalf("block %d: signature %v after a normal format", blk, ok)
		}
	}
	code, _ = checkJSONOf(t, dev)
	assert.Equal(t, 0, code)
}

func TestLoopMounted(t *testing.T) {
	_, dev := loopImage(t, 2100)
	blockdevtest.MakeExt4(t, dev)
	mnt := blockdevtest.Mount(t, dev, "ext4")
	code, out := checkJSONOf(t, dev)
	assert.Equal(t, int(diskdump.CheckMounted), code)
	assert.Contains(t, out.Reason, mnt)
	for _, args := range [][]string{{}, {"-f"}, {"-a"}, {"-n"}, {"-f", "-n"}, {"-R"}} {
		code, stdout, stderr := dumpformat(t, append(args, dev)...)
		assert.Equal(t, 7, code, "%v: %s", args, stderr)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, dev)
		assert.Contains(t, stderr, "mounted on "+mnt)
	}
}

func TestLoopSwapon(t *testing.T) {
	_, dev := loopImage(t, 2100)
	blockdevtest.Swapon(t, dev)
	// Active swap is a dump device by design: -c says 5, formats refuse.
	code, out := checkJSONOf(t, dev)
	assert.Equal(t, int(diskdump.CheckSwap), code)
	assert.Contains(t, out.Reason, "active swap")
	for _, args := range [][]string{{"-f"}, {"-R"}} {
		code, _, stderr := dumpformat(t, append(args, dev)...)
		assert.Equal(t, 7, code, stderr)
		assert.Contains(t, stderr, "active swap")
	}
}

func TestLoopHeldExclusively(t *testing.T) {
	_, dev := loopImage(t, 2100)
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_EXCL, 0)
	require.NoError(t, err)
	defer f.Close()
	code, _, stderr := dumpformat(t, "-f", dev)
	assert.Equal(t, 7, code, stderr)
	assert.Contains(t, stderr, dev)
}

func TestLoopSwapPartition(t *testing.T) {
	const blocks = 2100
	_, dev := loopImage(t, blocks)
	blockdevtest.Mkfs(t, "mkswap", dev)
	code, _ := checkJSONOf(t, dev)
	assert.Equal(t, int(diskdump.CheckSwap), code)
	code, _, stderr := dumpformat(t, dev)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "carries swap")

	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(dumpHeader(t, blocks), bs)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	code, out := checkJSONOf(t, dev)
	assert.Equal(t, int(diskdump.CheckSwapDump), code)
	require.NotNil(t, out.Header)
	assert.Equal(t, "crashed.example.com", out.Header.Utsname["nodename"])
}

func TestLoop4KiBSectors(t *testing.T) {
	blockdevtest.RequireLoop(t)
	file := imageFile(t, 1100, 0)
	dev := blockdevtest.AttachLoopWith(t, file, blockdevtest.LoopOptions{SectorSize: 4096})
	code, _, stderr := dumpformat(t, "-f", dev)
	require.Equal(t, 0, code, stderr)
	code, _ = checkJSONOf(t, dev)
	assert.Equal(t, 0, code)
	code, _, stderr = dumpformat(t, "-a", dev)
	require.Equal(t, 0, code, stderr)
	code, _ = checkJSONOf(t, dev)
	assert.Equal(t, 0, code)
}

func TestLoopRehearsal(t *testing.T) {
	_, dev := loopImage(t, 2100)
	code, _, stderr := dumpformat(t, "-f", dev)
	require.Equal(t, 0, code, stderr)
	code, out, stderr := rehearse(t, "--ram", "4M", dev)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "completed", out.Outcome)
	code, chk := checkJSONOf(t, dev)
	assert.Equal(t, int(diskdump.CheckHoldsDump), code)
	require.NotNil(t, chk.Header)
	assert.Equal(t, out.WrittenBlocks, uint64(chk.Header.WrittenBlocks))
	assert.Equal(t, uint32(2100), chk.Header.DeviceBlocks)
}
