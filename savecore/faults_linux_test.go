// Disk full on a real ext4 file system (root: a loop-mounted image of a
// few MiB). File-based and tmpfs tests cannot show ext4's behaviour:
// delayed allocation reserves blocks at write time, a file can be left
// with blocks allocated but no name, and free space is reported net of
// the blocks reserved for root, which savecore (as root) may still use.

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

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

// smallExt4 mounts a fresh ext4 file system of size bytes and returns
// the mount point, mode 0700.
func smallExt4(t *testing.T, size int64) string {
	t.Helper()
	blockdevtest.RequireLoop(t)
	img := blockdevtest.Image(t, size)
	loop := blockdevtest.AttachLoop(t, img)
	blockdevtest.MakeExt4(t, loop)
	dir := blockdevtest.Mount(t, loop, "ext4")
	require.NoError(t, os.Chmod(dir, 0o700))
	return dir
}

// fill writes to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	buf := make([]byte, 256<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Sync()
	f.Close()
}

// TestFaultDiskFullExt4: the space check passes, then the file system
// fills up under savecore (another writer): the save fails with ENOSPC,
// no vmcore or temporary file is left, the dump is kept despite -D, and
// once there is space again a rerun saves it.
func TestFaultDiskFullExt4(t *testing.T) {
	for _, r := range []rehearsal{{arch: diskdump.ArchX86_64, mem: 12 << 20}, {arch: diskdump.ArchX86_64, mem: 12 << 20, compress: true, mix: kernel.PageMix{Random: 1}}} {
		t.Run(map[bool]string{false: "raw", true: "compressed"}[r.compress], func(t *testing.T) {
			root := smallExt4(t, 32<<20)
			dev, m, wr := r.memImage(t)
			opt, logs := testOptions(t)
			opt.Dir, opt.Delete = root, true
			hog := filepath.Join(root, "hog")
			filled := false
			opt.Progress = func(string, int64, int64) {
				if !filled {
					filled = true
					fill(t, hog)
				}
			}
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			res := rep.Results[0]
			require.True(t, filled, "the save got under way")
			require.Error(t, res.Err)
			assert.Contains(t, strings.ToLower(res.Err.Error()), "no space left")
			assert.True(t, rep.Failed(true), "exit 1")
			assert.NoDirExists(t, filepath.Join(root, crashDir), "no vmcore, no temporary file, no empty directory")
			assert.False(t, res.Erased)
			_, err := diskdump.OpenPartition(dev, dev.Size())
			require.NoError(t, err, "dump kept")
			assert.Contains(t, logs.String(), "mem0")

			require.NoError(t, os.Remove(hog))
			opt.Progress = nil
			rep = Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			require.NoError(t, rep.Results[0].Err)
			checkVmcore(t, rep.Results[0].Path, m, wr, false)
			assert.True(t, rep.Results[0].Erased)
		})
	}
}

// TestFaultNospaceScriptExt4: the space check fails on ext4; the
// diskdump-nospace script exits non-zero without freeing anything:
// savecore checks once more, runs the script only once, and fails with
// ErrNoSpace (exit 1), keeping the dump.
func TestFaultNospaceScriptExt4(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, mem: 16 << 20}
	root := smallExt4(t, 16<<20)
	dev, _, _ := r.memImage(t)
	count := filepath.Join(t.TempDir(), "runs")
	t.Setenv("COUNT", count)
	writeScript(t, root, NospaceScript, `echo "$1 $2" >> "$COUNT"; exit 3`, 0o755)
	opt, _ := testOptions(t)
	opt.Dir, opt.Delete = root, true
	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	res := rep.Results[0]
	require.ErrorIs(t, res.Err, ErrNoSpace)
	var se *SpaceError
	require.ErrorAs(t, res.Err, &se)
	assert.True(t, strings.HasPrefix(se.Script, "ran"), se.Script)
	assert.Greater(t, se.Need, int64(se.Free))
	b, err := os.ReadFile(count)
	require.NoError(t, err)
	assert.Equal(t, Host+" "+filepath.Join(root, crashDir)+"\n", string(b), "run exactly once, with 127.0.0.1 and the dump directory")
	assert.True(t, rep.Failed(true))
	assert.NoDirExists(t, filepath.Join(root, crashDir))
	_, err = diskdump.OpenPartition(dev, dev.Size())
	assert.NoError(t, err, "dump kept")
}
