package main

// Device names and dump roots at the command line: a symlinked DEVICE
// (such as /dev/disk/by-id/...) is resolved and messages name the real
// device too; a missing DEVICE is never created, not even with -D or -X;
// a dump root writable by others without the sticky bit is refused (exit
// 1, dump kept). The loop-device case (root) is what file-based tests
// cannot show: the symlink leads to a block device opened with O_EXCL.

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

func TestSecuritySymlinkedDevice(t *testing.T) {
	img := dumpImage(t, 4<<20, true, crashTime)
	link := filepath.Join(t.TempDir(), "by-id-dump")
	require.NoError(t, os.Symlink(img, link))
	root := t.TempDir()
	code, stdout, stderr := runCmd(t, "-D", "-d", root, link)
	require.Equal(t, exitOK, code)
	assert.Equal(t, vmcorePath(root)+"\n", stdout)
	assert.Contains(t, stderr, link+" ("+img+")", "messages name the given and the real device")
	assert.False(t, holdsDump(t, img), "the symlink's target was erased")
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, fi.Mode().Type())
}

func TestSecuritySymlinkedLoopDevice(t *testing.T) {
	blockdevtest.RequireLoop(t)
	img := dumpImage(t, 4<<20, false, crashTime)
	loop := blockdevtest.AttachLoop(t, img)
	link := filepath.Join(t.TempDir(), "by-id-dump")
	require.NoError(t, os.Symlink(loop, link))
	root := t.TempDir()
	code, _, stderr := runCmd(t, "-D", "-d", root, link)
	require.Equal(t, exitOK, code)
	assert.Contains(t, stderr, link+" ("+loop+")")
	assert.FileExists(t, vmcorePath(root))
	assert.False(t, holdsDump(t, img))
}

func TestSecurityMissingDeviceNotCreated(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "sdz9")
	dangling := filepath.Join(t.TempDir(), "dangling")
	require.NoError(t, os.Symlink(missing, dangling))
	for _, dev := range []string{missing, dangling} {
		for _, flags := range [][]string{nil, {"-D"}, {"-X"}} {
			root := t.TempDir()
			code, _, stderr := runCmd(t, append(append(flags, "-d", root), dev)...)
			assert.Equal(t, exitFail, code)
			assert.Contains(t, stderr, dev)
			_, err := os.Stat(missing)
			assert.ErrorIs(t, err, os.ErrNotExist, "%v %s created the device", flags, dev)
		}
	}
}

func TestSecurityUnsafeDumpRoot(t *testing.T) {
	img := dumpImage(t, 4<<20, false, crashTime)
	for _, mode := range []os.FileMode{0o777, 0o775, 0o757} {
		root := filepath.Join(t.TempDir(), "crash")
		require.NoError(t, os.Mkdir(root, 0o700))
		require.NoError(t, os.Chmod(root, mode))
		code, stdout, stderr := runCmd(t, "-D", "-d", root, img)
		assert.Equal(t, exitFail, code, "mode %v", mode)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, root)
		assert.True(t, holdsDump(t, img), "dump kept")
		ents, err := os.ReadDir(root)
		require.NoError(t, err)
		assert.Empty(t, ents, "nothing written into %v root", mode)
	}
	// With the sticky bit (like /tmp) a world-writable root is fine.
	root := filepath.Join(t.TempDir(), "crash")
	require.NoError(t, os.Mkdir(root, 0o700))
	require.NoError(t, os.Chmod(root, 0o777|os.ModeSticky))
	code, _, _ := runCmd(t, "-d", root, img)
	assert.Equal(t, exitOK, code)
}
