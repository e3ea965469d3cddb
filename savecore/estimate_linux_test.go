package savecore

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/vmcore"
)

// TestSpaceByRecords: a compressed dump whose vmcore fits the filesystem
// while its RAM does not is saved: the estimate counts the compressed
// records, and says so.
func TestSpaceByRecords(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, mem: 64 << 20, compress: true}
	img, m, wr := r.fileImage(t)
	root := smallExt4(t, 40<<20)
	free, err := blockdev.FreeSpace(root)
	require.NoError(t, err)
	require.Less(t, free, uint64(64<<20), "the filesystem cannot hold the RAM")
	opt, logs := testOptions(t)
	opt.Dir = root
	opt.Delete = true
	rep := SaveDevices(context.Background(), []string{img}, opt)
	res := rep.Results[0]
	require.NoError(t, res.Err)
	assert.Equal(t, OutcomeSaved, res.Outcome)
	assert.Contains(t, logs.String(), "compressed records on the partition")
	checkVmcore(t, res.Path, m, wr, false)
}

// TestEstimateWithBasis: the estimate bounds the vmcore written, for each
// format, and counts records only where records are copied.
func TestEstimateWithBasis(t *testing.T) {
	for _, tc := range []struct {
		r      rehearsal
		format vmcore.Format
		mask   uint64
		basis  string
	}{
		{rehearsal{arch: diskdump.ArchX86_64, mem: 16 << 20, compress: true}, vmcore.FormatDiskdump, 0, "records"},
		{rehearsal{arch: diskdump.ArchX86_64, mem: 16 << 20, compress: true, dumpLevel: 19}, vmcore.FormatKdump, 0, "records"},
		{rehearsal{arch: diskdump.ArchX86_64, mem: 16 << 20, compress: true}, vmcore.FormatELF, 0, "pages"},
		{rehearsal{arch: diskdump.ArchX86_64, mem: 16 << 20, compress: true}, vmcore.FormatDiskdump, 1, "pages"},
		{rehearsal{arch: diskdump.ArchX86_64, mem: 16 << 20}, vmcore.FormatDiskdump, 0, "pages"},
	} {
		t.Run(tc.format.String()+"/"+tc.basis, func(t *testing.T) {
			dev, _, _ := tc.r.memImage(t)
			p, err := diskdump.OpenPartition(dev, dev.Size())
			require.NoError(t, err)
			opt := vmcore.Options{Format: tc.format, UncompressedMask: tc.mask}
			est := vmcore.EstimateWithBasis(p, opt)
			assert.Equal(t, tc.basis, est.Basis)
			assert.LessOrEqual(t, est.Bytes, vmcore.EstimateSize(p, opt))
			f, err := os.CreateTemp(t.TempDir(), "vmcore")
			require.NoError(t, err)
			defer f.Close()
			p, err = diskdump.OpenPartition(dev, dev.Size())
			require.NoError(t, err)
			_, err = vmcore.Write(f, p, opt)
			require.NoError(t, err)
			require.NoError(t, f.Sync())
			fi, err := f.Stat()
			require.NoError(t, err)
			used := fi.Sys().(*syscall.Stat_t).Blocks * 512
			assert.GreaterOrEqual(t, est.Bytes, used, "an upper bound of the space used")
		})
	}
}
