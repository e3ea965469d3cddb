package vmcore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The architecture matrix: partitions written by the kernel-exact writer
// (WriteDump on a synthetic machine), read back by the partition reader,
// converted to every vmcore format, and checked with Open and the
// independent readers.

type matrixCase struct {
	name     string
	arch     diskdump.Arch
	mem      uint64 // bytes of the synthetic machine
	compress bool
	level    int
	devExtra int64 // device blocks beyond total_blocks (negative: short)
	stop     int64 // StopAfterBlocks
}

// i386 machines avoid max_mapnr = 4096: vmcore_pages.py's own bounds
// check looks for block_size at offset 428 before 416, which in the 32-bit
// header is max_mapnr, and takes a max_mapnr equal to the page size for it.
var matrixCases = []matrixCase{
	{name: "i386 raw", arch: diskdump.ArchI386, mem: 6 << 20, devExtra: 64},
	{name: "i386 compressed dl31", arch: diskdump.ArchI386, mem: 6 << 20, compress: true, level: 31, devExtra: 64},
	{name: "x86_64 compressed dl19", arch: diskdump.ArchX86_64, mem: 5 << 20, compress: true, level: 19, devExtra: 64},
	{name: "x86_64 raw partial dl1", arch: diskdump.ArchX86_64, mem: 4 << 20, level: 1, devExtra: 64},
	// Compressed and cut before the first bitmap-2 flush: nothing can be
	// attributed, the vmcores hold no page.
	{name: "x86_64 compressed interrupted", arch: diskdump.ArchX86_64, mem: 4 << 20, compress: true, devExtra: 64, stop: 200},
	// Strict raw dump cut before its final header: the reader's signature
	// rule finds the pages written.
	{name: "x86_64 raw interrupted", arch: diskdump.ArchX86_64, mem: 4 << 20, devExtra: 64, stop: 500},
	{name: "x86_64 compressed short area", arch: diskdump.ArchX86_64, mem: 4 << 20, compress: true, devExtra: -850},
	{name: "ppc64 compressed", arch: diskdump.ArchPPC64, mem: 4 << 20, compress: true, devExtra: 64},
	{name: "ia64 compressed 16k", arch: diskdump.ArchIA64, mem: 8 << 20, compress: true, level: 19, devExtra: 64},
}

// matrixPartition writes the case's dump and returns the partition image,
// the recovered pages (PFN -> SHA-256, checked against the machine) and
// the open partition.
func matrixPartition(t *testing.T, tc matrixCase) ([]byte, map[uint64]string, *diskdump.Partition) {
	t.Helper()
	bs := tc.arch.PageSize()
	src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: tc.arch, MemBytes: tc.mem, Seed: 77})
	cfg := kernel.DefaultConfig(tc.arch)
	cfg.Compress, cfg.DumpLevel, cfg.SampleRate = tc.compress, tc.level, -1
	cfg.Time = time.Unix(1246291200, 123456789)
	cfg.NrCPUs, cfg.CurrentCPU = 2, 1
	cfg.Tasks = []uint64{0xc0100000, 0xc0200000}
	if tc.arch.Is64() {
		cfg.Tasks = []uint64{0xffff810001000000, 0xffff810002000000}
	}
	cfg.StopAfterBlocks = tc.stop
	maxPFN := tc.mem / uint64(bs)
	g := diskdump.NewGeometry(bs, maxPFN, maxPFN, tc.compress || tc.level != 0)
	dev := uint64(int64(g.TotalBlocks()+g.RAMBitmapBlocks) + tc.devExtra)
	img := make([]byte, dev*uint64(bs))
	for blk := range dev {
		diskdump.FillSignature(img[blk*uint64(bs):(blk+1)*uint64(bs)], blk, tc.arch.ByteOrder())
	}
	mf := memfile.New(img)
	res, err := kernel.WriteDump(mf, dev, src, cfg)
	require.NoError(t, err)
	switch {
	case tc.stop != 0:
		require.Equal(t, kernel.OutcomePowerCut, res.Outcome)
	case tc.devExtra < 0:
		require.Equal(t, kernel.OutcomeShortArea, res.Outcome)
	default:
		require.Equal(t, kernel.OutcomeCompleted, res.Outcome)
	}
	img = mf.Bytes()

	p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	got := map[uint64]string{}
	var dst []byte
	for pg, err := range p.Pages() {
		if err != nil {
			continue
		}
		dst, err = pg.Decompress(dst)
		require.NoError(t, err)
		require.True(t, res.Saved.Test(pg.PFN), "PFN %d recovered but not saved", pg.PFN)
		require.Equal(t, expectedPage(t, src, pg.PFN, bs, tc.arch.Is64()), dst, "PFN %d", pg.PFN)
		got[pg.PFN] = sha(dst)
	}
	if tc.stop == 0 || !tc.compress {
		require.NotEmpty(t, got)
	}
	if tc.stop == 0 && tc.devExtra > 0 {
		assert.Equal(t, res.PagesSaved, uint64(len(got)), "complete dump: every saved page recovered")
	}
	return img, got, p
}

func TestMatrix(t *testing.T) {
	oracle := true
	if testing.Short() {
		oracle = false
	}
	for _, tc := range matrixCases {
		t.Run(tc.name, func(t *testing.T) {
			_, want, p := matrixPartition(t, tc)
			for _, f := range allFormats {
				t.Run(f.String(), func(t *testing.T) {
					path := filepath.Join(t.TempDir(), "vmcore")
					out, err := os.Create(path)
					require.NoError(t, err)
					res, err := Write(out, p, Options{Format: f, ShareZeroPage: true})
					require.NoError(t, err)
					require.NoError(t, out.Close())
					assert.Equal(t, uint64(len(want)), res.Pages)
					assert.Equal(t, p.Incomplete(), res.Incomplete)
					assert.Equal(t, tc.stop != 0 || tc.devExtra < 0 || tc.level != 0, res.Incomplete)
					img, err := os.ReadFile(path)
					require.NoError(t, err)
					assert.Equal(t, res.Size, int64(len(img)))
					checkPages(t, img, f, want, p.RAMBitmap(), uint64(p.Header().MaxMapnr))
					v, err := Open(bytes.NewReader(img), int64(len(img)))
					require.NoError(t, err)
					// A KDUMP file is INCOMPLETE only when pages are missing,
					// not for a partial dump's level (as makedumpfile -d).
					assert.Equal(t, tc.stop != 0 || tc.devExtra < 0, res.PagesMissing)
					if f == FormatKdump {
						assert.Equal(t, res.PagesMissing, v.Partial())
					} else {
						assert.Equal(t, res.Incomplete, v.Partial())
					}
					if !oracle {
						return
					}
					requireOracle(t, true)
					if oracleReads(tc.arch, f) {
						checkOracle(t, path, f, want, uint64(p.Header().MaxMapnr), p.BlockSize())
					}
					if crashReads(tc.arch, f) {
						checkCrash(t, path, f, v.Header(), res.Pages)
					}
				})
			}
		})
	}
}
