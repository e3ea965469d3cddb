package blockdev_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
)

func TestFreeSpace(t *testing.T) {
	dir := t.TempDir()
	free, err := blockdev.FreeSpace(dir)
	require.NoError(t, err)
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	total := st.Blocks * uint64(st.Frsize)
	assert.Positive(t, free)
	assert.LessOrEqual(t, free, total)

	_, err = blockdev.FreeSpace(filepath.Join(dir, "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "statfs", pe.Op)
}

func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vmcore"), []byte("x"), 0o600))
	assert.NoError(t, blockdev.SyncDir(dir))
	assert.ErrorIs(t, blockdev.SyncDir(filepath.Join(dir, "missing")), os.ErrNotExist)
}

func TestPreallocate(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "vmcore"))
	require.NoError(t, err)
	defer f.Close()
	const n = 1 << 20
	require.NoError(t, blockdev.Preallocate(f, n))
	fi, err := f.Stat()
	require.NoError(t, err)
	assert.Equal(t, int64(n), fi.Size())
	st := fi.Sys().(*syscall.Stat_t)
	assert.GreaterOrEqual(t, st.Blocks*512, int64(n), "blocks must be reserved, not a sparse hole")

	assert.NoError(t, blockdev.Preallocate(f, 0))

	ro, err := os.Open(f.Name())
	require.NoError(t, err)
	defer ro.Close()
	err = blockdev.Preallocate(ro, 2*n)
	var pe *os.PathError
	require.ErrorAs(t, err, &pe, "fallocate on a read-only descriptor must fail")
	assert.ErrorIs(t, err, syscall.EBADF)
}

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	assert.False(t, blockdev.IsTerminal(r))
	assert.False(t, blockdev.IsTerminal(w))

	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, blockdev.IsTerminal(f))

	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Logf("no /dev/ptmx, positive case not checked: %v", err)
		return
	}
	defer pty.Close()
	assert.True(t, blockdev.IsTerminal(pty), "a pseudo-terminal is a terminal")
}
