package blockdevtest_test

import (
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

func TestBadRange(t *testing.T) {
	fail := blockdevtest.BadRange(100, 200)
	tests := []struct {
		name   string
		off    int64
		nbytes int
		fails  bool
	}{
		{"before", 0, 100, false},
		{"touches start", 99, 2, true},
		{"inside", 150, 1, true},
		{"covers", 0, 1000, true},
		{"last bad byte", 199, 1, true},
		{"after", 200, 50, false},
		{"empty inside", 150, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := fail(tc.off, tc.nbytes)
			if tc.fails {
				assert.ErrorIs(t, err, syscall.EIO)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestFaultDeviceRead(t *testing.T) {
	data := []byte("0123456789abcdef")
	d := blockdevtest.NewFaultDevice(data)
	d.Path = "/dev/fake"
	d.FailRead = blockdevtest.BadRange(8, 10)
	assert.Equal(t, int64(16), d.Size())

	p := make([]byte, 8)
	n, err := d.ReadAt(p, 0)
	require.NoError(t, err)
	assert.Equal(t, 8, n)
	assert.Equal(t, "01234567", string(p))

	n, err = d.ReadAt(p, 4)
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, syscall.EIO)
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "read", pe.Op)
	assert.Equal(t, "/dev/fake", pe.Path)

	n, err = d.ReadAt(p, 12)
	assert.Equal(t, 4, n)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, "cdef", string(p[:n]))

	_, err = d.ReadAt(p, 16)
	assert.ErrorIs(t, err, io.EOF)
	_, err = d.ReadAt(p, -1)
	assert.ErrorIs(t, err, syscall.EINVAL)
}

func TestFaultDeviceWrite(t *testing.T) {
	data := make([]byte, 16)
	d := blockdevtest.NewFaultDevice(data)
	d.FailWrite = blockdevtest.BadRange(0, 4)

	n, err := d.WriteAt([]byte("xy"), 4)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	buf := make([]byte, 2)
	_, err = d.ReadAt(buf, 4)
	require.NoError(t, err)
	assert.Equal(t, "xy", string(buf))

	_, err = d.WriteAt([]byte("z"), 3)
	assert.ErrorIs(t, err, syscall.EIO)
	_, err = d.WriteAt([]byte("zz"), 15)
	assert.ErrorIs(t, err, syscall.ENOSPC)
	_, err = d.WriteAt([]byte("z"), -1)
	assert.ErrorIs(t, err, syscall.EINVAL)
	assert.Equal(t, int64(16), d.Size(), "writes never grow the device")

	ro := &blockdevtest.FaultDevice{ReaderAt: d.ReaderAt, NBytes: 16}
	_, err = ro.WriteAt([]byte("z"), 0)
	assert.ErrorIs(t, err, syscall.EROFS)
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "faultdev", pe.Path)
}

func TestImage(t *testing.T) {
	img := blockdevtest.Image(t, 1<<30)
	fi, err := os.Stat(img)
	require.NoError(t, err)
	assert.Equal(t, int64(1<<30), fi.Size())
	st := fi.Sys().(*syscall.Stat_t)
	assert.Less(t, st.Blocks*512, int64(1<<20), "the image must be sparse")
}

func TestRequireToolFindsSbin(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	assert.NotEmpty(t, blockdevtest.RequireTool(t, "sh"))
	out := blockdevtest.Run(t, "sh", "-c", "echo hi")
	assert.Equal(t, "hi\n", out)
	out, err := blockdevtest.TryRun(t, "sh", "-c", "echo oops >&2; exit 3")
	assert.Error(t, err)
	assert.Contains(t, out, "oops")
}
