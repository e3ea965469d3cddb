package blockdev_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

func TestOpenRegularFile(t *testing.T) {
	const size = 1 << 20
	img := blockdevtest.Image(t, size)
	link := filepath.Join(t.TempDir(), "by-id")
	require.NoError(t, os.Symlink(img, link))

	for _, mode := range []blockdev.Mode{blockdev.ReadOnly, blockdev.ReadWrite} {
		t.Run(mode.String(), func(t *testing.T) {
			d, err := blockdev.Open(link, mode)
			require.NoError(t, err)
			defer d.Close()
			assert.Equal(t, int64(size), d.Size())
			assert.Equal(t, 512, d.LogicalBlockSize())
			assert.Equal(t, 512, d.PhysicalBlockSize())
			assert.False(t, d.IsBlockDevice())
			assert.Equal(t, mode, d.Mode())
			assert.Equal(t, link, d.Path())
			assert.Equal(t, img, d.RealPath())
			assert.Equal(t, link+" ("+img+")", d.Name())
			assert.Equal(t, img, d.File().Name())
			assert.NotEqual(t, ^uintptr(0), d.Fd())
		})
	}
}

func TestNameWithoutSymlink(t *testing.T) {
	img := blockdevtest.Image(t, 4096)
	d, err := blockdev.Open(img, blockdev.ReadOnly)
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, img, d.Name())
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		mode blockdev.Mode
		want error
	}{
		{"missing", filepath.Join(dir, "nope"), blockdev.ReadOnly, fs.ErrNotExist},
		{"directory", dir, blockdev.ReadOnly, blockdev.ErrNotDevice},
		{"char device", "/dev/null", blockdev.ReadWrite, blockdev.ErrNotDevice},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := blockdev.Open(tc.path, tc.mode)
			assert.Nil(t, d)
			assert.ErrorIs(t, err, tc.want)
		})
	}
	t.Run("bad mode", func(t *testing.T) {
		_, err := blockdev.Open(blockdevtest.Image(t, 512), blockdev.Mode(7))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "blockdev: ")
	})
}

func TestReadWriteAt(t *testing.T) {
	const size = 8192
	img := blockdevtest.Image(t, size)
	d, err := blockdev.Open(img, blockdev.ReadWrite)
	require.NoError(t, err)
	defer d.Close()

	data := bytes.Repeat([]byte("dumpkit!"), 64) // 512 bytes
	n, err := d.WriteAt(data, size-512)
	require.NoError(t, err)
	assert.Equal(t, 512, n)
	require.NoError(t, d.Flush())

	onDisk, err := os.ReadFile(img)
	require.NoError(t, err)
	assert.Equal(t, data, onDisk[size-512:])
	assert.Len(t, onDisk, size, "a write within Size must not grow the file")

	writes := []struct {
		name string
		off  int64
		n    int
	}{
		{"crosses end", size - 100, 512},
		{"past end", size + 1, 1},
		{"negative", -1, 1},
	}
	for _, tc := range writes {
		t.Run("write "+tc.name, func(t *testing.T) {
			n, err := d.WriteAt(make([]byte, tc.n), tc.off)
			assert.Equal(t, 0, n)
			require.ErrorIs(t, err, blockdev.ErrOutOfRange)
			var re *blockdev.RangeError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, tc.off, re.Off)
			assert.Equal(t, tc.n, re.NBytes)
			assert.Equal(t, int64(size), re.Size)
		})
	}
	fi, err := os.Stat(img)
	require.NoError(t, err)
	assert.Equal(t, int64(size), fi.Size(), "refused writes must not grow the file")

	reads := []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantErr error
	}{
		{"inside", size - 512, 512, 512, nil},
		{"crosses end", size - 256, 512, 256, io.EOF},
		{"at end", size, 16, 0, io.EOF},
		{"empty at end", size, 0, 0, nil},
	}
	for _, tc := range reads {
		t.Run("read "+tc.name, func(t *testing.T) {
			p := make([]byte, tc.n)
			n, err := d.ReadAt(p, tc.off)
			assert.Equal(t, tc.wantN, n)
			if tc.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.wantErr)
			}
			end := tc.off + int64(n)
			if n > 0 {
				assert.Equal(t, onDisk[tc.off:end], p[:n])
			}
		})
	}
	_, err = d.ReadAt(make([]byte, 1), -1)
	assert.ErrorIs(t, err, blockdev.ErrOutOfRange)
}

func TestSizeFixedAtOpen(t *testing.T) {
	img := blockdevtest.Image(t, 4096)
	d, err := blockdev.Open(img, blockdev.ReadWrite)
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, os.Truncate(img, 8192))
	assert.Equal(t, int64(4096), d.Size())
	n, err := d.ReadAt(make([]byte, 10), 4096)
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, io.EOF)
	_, err = d.WriteAt([]byte{1}, 4096)
	assert.ErrorIs(t, err, blockdev.ErrOutOfRange)
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	d, err := blockdev.Open(blockdevtest.Image(t, 4096), blockdev.ReadOnly)
	require.NoError(t, err)
	defer d.Close()
	n, err := d.WriteAt([]byte{1}, 0)
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, blockdev.ErrReadOnly)
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "write", pe.Op)
	assert.NoError(t, d.Flush(), "fsync of a read-only regular file")
}

func TestCloseTwice(t *testing.T) {
	d, err := blockdev.Open(blockdevtest.Image(t, 4096), blockdev.ReadOnly)
	require.NoError(t, err)
	require.NoError(t, d.Close())
	assert.True(t, errors.Is(d.Close(), os.ErrClosed))
	_, err = d.ReadAt(make([]byte, 1), 0)
	assert.ErrorIs(t, err, os.ErrClosed)
}

func TestModeString(t *testing.T) {
	assert.Equal(t, "ReadOnly", blockdev.ReadOnly.String())
	assert.Equal(t, "ReadWrite", blockdev.ReadWrite.String())
	assert.Equal(t, "Mode(9)", blockdev.Mode(9).String())
}
