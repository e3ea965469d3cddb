// Loop-device tests (root): what file-based tests cannot cover is a real
// block device — opened through blockdev with O_EXCL for -D, symlinked
// device names resolved in messages, the flush after the erase, swap
// partitions made by mkswap, a mounted device refused for -D, and
// filesystems that really run out of space (tmpfs of a few MiB).

package savecore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dumpkit/dumpkit/diskdump/kernel"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

func openCheck(t *testing.T, path string, fp diskdump.FormatParams) *diskdump.CheckResult {
	t.Helper()
	d, err := blockdev.Open(path, blockdev.ReadOnly)
	require.NoError(t, err)
	defer d.Close()
	res, err := diskdump.CheckPartition(d, d.Size(), fp)
	require.NoError(t, err)
	return res
}

func TestSaveLoopDevice(t *testing.T) {
	blockdevtest.RequireLoop(t)
	for _, r := range []rehearsal{{arch: diskdump.ArchX86_64}, {arch: diskdump.ArchX86_64, compress: true, dumpLevel: 19}} {
		t.Run(map[bool]string{false: "raw", true: "compressed"}[r.compress], func(t *testing.T) {
			img, m, wr := r.fileImage(t)
			loop := blockdevtest.AttachLoop(t, img)
			link := filepath.Join(t.TempDir(), "by-id-dump")
			require.NoError(t, os.Symlink(loop, link))
			opt, logs := testOptions(t)
			opt.Delete = true
			rep := SaveDevices(context.Background(), []string{link}, opt)
			res := rep.Results[0]
			require.NoError(t, res.Err)
			assert.Equal(t, link+" ("+loop+")", res.Device, "given and real name")
			assert.Contains(t, logs.String(), loop)
			assert.True(t, res.Erased)
			checkVmcore(t, res.Path, m, wr, r.dumpLevel != 0)
			chk := openCheck(t, loop, r.formatParams())
			assert.Equal(t, diskdump.CheckReady, chk.Status, chk.Reason)
		})
	}
}

func TestSaveSwapPartition(t *testing.T) {
	blockdevtest.RequireLoop(t)
	r := rehearsal{arch: diskdump.ArchX86_64}
	m := r.machine()
	blocks := r.fullBlocks(m) + 64
	img := blockdevtest.Image(t, int64(blocks)*4096)
	loop := blockdevtest.AttachLoop(t, img)
	blockdevtest.Mkfs(t, "mkswap", loop)
	d, err := blockdev.Open(loop, blockdev.ReadWrite)
	require.NoError(t, err)
	block0 := make([]byte, 4096)
	_, err = d.ReadAt(block0, 0)
	require.NoError(t, err)
	wr, err := kernel.WriteDump(d, blocks, m, r.config())
	require.NoError(t, err)
	require.NoError(t, d.Flush())
	require.NoError(t, d.Close())
	require.Equal(t, diskdump.CheckSwapDump, openCheck(t, loop, r.formatParams()).Status, "the kernel dumped to swap")

	opt, _ := testOptions(t)
	opt.Delete = true
	rep := SaveDevices(context.Background(), []string{loop}, opt)
	res := rep.Results[0]
	require.NoError(t, res.Err)
	assert.True(t, res.Erased)
	checkVmcore(t, res.Path, m, wr, false)

	d, err = blockdev.Open(loop, blockdev.ReadOnly)
	require.NoError(t, err)
	defer d.Close()
	got := make([]byte, 8192)
	_, err = d.ReadAt(got, 0)
	require.NoError(t, err)
	assert.Equal(t, block0, got[:4096], "swap header untouched")
	assert.Equal(t, make([]byte, 4096), got[4096:], "block 1 zeroed")
	sigs, err := blockdev.Probe(d, d.Size())
	require.NoError(t, err)
	require.NotEmpty(t, sigs)
	assert.Contains(t, strings.ToLower(sigs[0].Kind), "swap", "still a swap partition")
	assert.Equal(t, diskdump.CheckSwap, openCheck(t, loop, r.formatParams()).Status)
}

func TestSaveMountedDeviceRefused(t *testing.T) {
	blockdevtest.RequireLoop(t)
	fsImg := blockdevtest.Image(t, 16<<20)
	fsLoop := blockdevtest.AttachLoop(t, fsImg)
	blockdevtest.MakeExt4(t, fsLoop)
	blockdevtest.Mount(t, fsLoop, "ext4")
	img, _, _ := rehearsal{arch: diskdump.ArchX86_64}.fileImage(t)
	loop := blockdevtest.AttachLoop(t, img)
	opt, _ := testOptions(t)
	opt.Delete = true
	rep := SaveDevices(context.Background(), []string{fsLoop, loop}, opt)
	assert.ErrorIs(t, rep.Results[0].Err, blockdev.ErrInUse)
	require.NoError(t, rep.Results[1].Err, "the next device is still examined")
	assert.Equal(t, OutcomeSaved, rep.Results[1].Outcome)
}

func TestSaveNoSpace(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, mem: 16 << 20} // an ELF vmcore of about 16 MiB
	tests := []struct {
		name   string
		script string // diskdump-nospace body; "" = none
		saved  bool
	}{
		{name: "no script"},
		{name: "script declines", script: `printf '%s\n' "$@" > "$OUT"; exit 0`},
		{name: "script frees space", script: `printf '%s\n' "$@" > "$OUT"; rm -f "$(dirname "$2")/ballast"; exit 1`, saved: true},
		{name: "script fails to free space", script: `printf '%s\n' "$@" > "$OUT"; exit 2`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, m, wr := r.memImage(t)
			root := smallFS(t, "24m")
			require.NoError(t, os.WriteFile(filepath.Join(root, "ballast"), make([]byte, 12<<20), 0o600))
			out := filepath.Join(t.TempDir(), "args")
			t.Setenv("OUT", out)
			if tc.script != "" {
				writeScript(t, root, NospaceScript, tc.script, 0o755)
			}
			opt, _ := testOptions(t)
			opt.Dir, opt.Delete = root, true
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			res := rep.Results[0]
			dir := filepath.Join(root, crashDir)
			if tc.script != "" {
				b, err := os.ReadFile(out)
				require.NoError(t, err)
				assert.Equal(t, Host+"\n"+dir+"\n", string(b), "script arguments")
			}
			if tc.saved {
				require.NoError(t, res.Err)
				checkVmcore(t, res.Path, m, wr, false)
				assert.True(t, res.Erased)
				return
			}
			require.ErrorIs(t, res.Err, ErrNoSpace)
			assert.NoDirExists(t, dir, "nothing written")
			assert.False(t, res.Erased)
			_, err := diskdump.OpenPartition(dev, dev.Size())
			assert.NoError(t, err, "dump kept")
		})
	}
}

// TestSaveENOSPC: the filesystem fills up during the write (someone else
// wrote to it): nothing partial stays behind and the dump is kept.
func TestSaveENOSPC(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, mem: 16 << 20}
	dev, m, wr := r.memImage(t)
	root := smallFS(t, "24m")
	opt, _ := testOptions(t)
	opt.Dir, opt.Delete = root, true
	filled := false
	opt.Progress = func(string, int64, int64) {
		if filled {
			return
		}
		filled = true
		// Take all the space left.
		f, err := os.Create(filepath.Join(root, "hog"))
		require.NoError(t, err)
		buf := make([]byte, 1<<20)
		for {
			if _, err := f.Write(buf); err != nil {
				break
			}
		}
		f.Close()
	}
	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	res := rep.Results[0]
	require.Error(t, res.Err)
	assert.Contains(t, res.Err.Error(), "no space left")
	assert.NoDirExists(t, filepath.Join(root, crashDir), "temporary file and directory removed")
	assert.False(t, res.Erased)
	_, err := diskdump.OpenPartition(dev, dev.Size())
	require.NoError(t, err, "dump kept")

	// Space back: the rerun succeeds.
	require.NoError(t, os.Remove(filepath.Join(root, "hog")))
	opt.Progress = nil
	rep = Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	require.NoError(t, rep.Results[0].Err)
	checkVmcore(t, rep.Results[0].Path, m, wr, false)
}
