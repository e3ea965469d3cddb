package savecore

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
	"github.com/dumpkit/dumpkit/vmcore"
)

// TestCheck reports a waiting dump, says nothing of a formatted partition
// without one, and reports a device that cannot be opened or read; it
// writes nothing.
func TestCheck(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, compress: true}
	dev, _, _ := r.memImage(t)
	before := append([]byte(nil), dev.Bytes()...)
	p, err := diskdump.OpenPartition(dev, dev.Size())
	require.NoError(t, err)
	h := p.Header()

	empty := memDev{memfile.New(make([]byte, dev.Size()))}
	require.NoError(t, diskdump.FormatInitial(empty, uint64(dev.Size())/uint64(r.blockSize()), r.formatParams(), nil))
	unreadable := blockdevtest.NewFaultDevice(append([]byte(nil), before...))
	unreadable.FailRead = blockdevtest.BadRange(int64(r.blockSize()), int64(2*r.blockSize()))
	openErr := errors.New("open /dev/sdz1: no such file or directory")

	inputs := []Input{
		{Name: "/dev/sdb1", Dev: dev},
		{Name: "/dev/sdc1", Dev: empty},
		{Name: "/dev/sdd1", Dev: unreadable},
		{Name: "/dev/sdz1", Err: openErr},
	}
	res := Check(inputs, Options{Location: time.UTC, Format: "kdump"})
	require.Len(t, res, 4)

	w := res[0].Dump
	require.NotNil(t, w)
	require.NoError(t, res[0].Err)
	assert.Equal(t, "/dev/sdb1", res[0].Device)
	assert.True(t, h.Time().Equal(w.Crashed))
	assert.Equal(t, time.UTC, w.Crashed.Location())
	assert.Equal(t, h.Utsname, w.Utsname)
	assert.Equal(t, h.Status, w.Status)
	assert.Equal(t, int64(h.WrittenBlocks)*int64(h.BlockSize), w.Written)
	assert.Equal(t, vmcore.EstimateSize(p, vmcore.Options{Format: vmcore.FormatKdump}), w.Estimate)

	assert.Nil(t, res[1].Dump)
	assert.NoError(t, res[1].Err, "no dump is not an error")
	assert.Nil(t, res[2].Dump)
	assert.Error(t, res[2].Err)
	assert.Nil(t, res[3].Dump)
	assert.ErrorIs(t, res[3].Err, openErr)
	assert.Equal(t, before, dev.Bytes(), "nothing written")
}

// TestCheckFlattened: --check reports a kdump raw target's dump from its
// KDUMP header, and writes nothing.
func TestCheckFlattened(t *testing.T) {
	_, stream := flattenedVmcore(t)
	path := rawTargetImage(t, stream, 5)
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	inputs, closeAll := OpenDevices([]string{path}, false, DefaultLockWait)
	defer closeAll()
	res := Check(inputs, Options{Location: time.UTC})
	require.Len(t, res, 1)
	require.NoError(t, res[0].Err)
	require.NotNil(t, res[0].Dump)
	assert.Equal(t, "2.6.9-89.ELsmp", res[0].Dump.Utsname.Release)
	assert.Positive(t, res[0].Dump.Estimate)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after)
}
