package vmcore

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/internal/zero"
)

func TestDumpLevelSplit(t *testing.T) {
	for _, tc := range []struct {
		level                 DumpLevel
		flags                 bool
		applied, unapplied    DumpLevel
		makedumpfile          int
		makedumpfileUnapplied int
	}{
		{0, true, 0, 0, 0, 0},
		{1, true, 1, 0, 6, 0},
		{17, true, 17, 0, 2, 0},
		{19, true, 19, 0, 3, 0},
		{21, true, 17, 4, 2, 16},
		{31, true, 27, 4, 11, 16},
		{31, false, 2, 29, 1, 26},
		{19, false, 2, 17, 1, 2},
		{8, false, 0, 8, 0, 8},
	} {
		t.Run(fmt.Sprintf("%d/flags %v", tc.level, tc.flags), func(t *testing.T) {
			a, u := tc.level.Split(tc.flags)
			assert.Equal(t, tc.applied, a)
			assert.Equal(t, tc.unapplied, u)
			assert.Equal(t, tc.makedumpfile, a.Makedumpfile())
			assert.Equal(t, tc.makedumpfileUnapplied, u.Makedumpfile())
		})
	}
	require.NoError(t, checkDumpLevel(31))
	require.ErrorIs(t, checkDumpLevel(32), diskdump.ErrUnsupportedVersion)
	require.ErrorIs(t, checkDumpLevel(-1), diskdump.ErrUnsupportedVersion)
}

// keptByRules is the test's own statement of the dump_level rules
// (doc/FORMAT.md §6.4) on the synthetic machine's struct page attributes
// and the content the dump holds, for a dump taken at level 0 and
// filtered afterwards: without records (a raw dump) only the zero-page
// rule can be applied, free pages cannot be told apart, and a bad or
// unmapped page stays (the dump holds its text page, the struct page is
// gone). anonKnown is false for a page whose MAPPING_ANON flag the input
// may have dropped (a raw page of a DISKDUMP vmcore): neither the cache
// nor the anonymous rule can decide it.
func keptByRules(at kernel.PageAttrs, content []byte, level int, records, anonKnown bool) bool {
	switch {
	case level == 0:
		return true
	case records && level&1 != 0 && level&16 != 0 && at.Private:
		return true
	case records && level&1 != 0 && anonKnown && !at.Anon && (at.LRU || at.SwapCache):
		return false
	case level&2 != 0 && bytes.Equal(content, make([]byte, len(content))):
		return false
	case records && level&8 != 0 && anonKnown && at.Anon:
		return false
	}
	return true
}

var testLevels = []int{0, 1, 2, 8, 9, 19, 27, 31}

// TestDumpLevel filters raw and compressed dumps of the kernel-exact
// writer, taken at level 0, with each level into each format: the pages
// kept are exactly those keptByRules keeps, byte for byte; the others are
// absent (DISKDUMP, KDUMP) or read as zeros (ELF). libkdumpfile judges the
// files.
func TestDumpLevel(t *testing.T) {
	const mem = 4 << 20
	a := diskdump.ArchX86_64
	bs := a.PageSize()
	src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: a, MemBytes: mem, Seed: 77}) // matrixPartition's machine
	why := oracleMissing(false)
	if why != "" {
		requireOracleUnderCI(t, why)
		t.Log("libkdumpfile does not judge the files: " + why)
	}
	judge := why == ""
	for _, compress := range []bool{false, true} {
		tc := matrixCase{name: "x86_64", arch: a, mem: mem, compress: compress, devExtra: 64}
		_, saved, p := matrixPartition(t, tc)
		// Every rule has pages to decide on.
		var privateCache, cache, anon, zeros int
		for pfn := range saved {
			at := src.Attrs(pfn)
			switch {
			case at.Anon:
				anon++
			case at.LRU || at.SwapCache:
				cache++
				if at.Private {
					privateCache++
				}
			}
			if zero.Is(expectedPage(t, src, pfn, bs, true)) {
				zeros++
			}
		}
		require.Positive(t, privateCache)
		require.Greater(t, cache, privateCache)
		require.Positive(t, anon)
		require.Positive(t, zeros)
		for _, level := range testLevels {
			want := map[uint64]string{}
			for pfn := range saved {
				if content := expectedPage(t, src, pfn, bs, true); keptByRules(src.Attrs(pfn), content, level, compress, true) {
					want[pfn] = sha(content)
				}
			}
			if level != 0 && (compress || level&2 != 0) {
				require.Less(t, len(want), len(saved), "level %d excludes pages", level)
			}
			for _, f := range allFormats {
				for _, c := range levelCompressions(f, level) {
					name := fmt.Sprintf("compressed %v/level %d/%v", compress, level, f)
					if f == FormatKdump {
						name += "-" + c.String()
					}
					t.Run(name, func(t *testing.T) {
						checkFiltered(t, p, f, c, DumpLevel(level), compress, want, len(saved), judge)
					})
				}
			}
		}
	}
}

// levelCompressions are the KDUMP compressions TestDumpLevel tries: zlib
// always, zstd at the levels the speed targets name.
func levelCompressions(f Format, level int) []Compression {
	if f == FormatKdump && (level == 19 || level == 31) {
		return []Compression{CompressZlib, CompressZstd}
	}
	return []Compression{CompressZlib}
}

// checkFiltered writes p in format f at level, then compares the file
// with want (PFN -> SHA-256 of the pages kept); judge has libkdumpfile
// read it too.
func checkFiltered(t *testing.T, p *diskdump.Partition, f Format, c Compression, level DumpLevel, records bool, want map[uint64]string, saved int, judge bool) {
	mf := memfile.New(nil)
	opt := Options{Format: f, Compression: c, DumpLevel: level, Workers: 2}
	res, err := Write(mf, p, opt)
	require.NoError(t, err)
	require.NoError(t, res.Errors)
	applied, unapplied := level.Split(records)
	assert.Equal(t, applied, res.DumpLevel)
	assert.Equal(t, unapplied, res.DumpLevelUnapplied)
	assert.Equal(t, uint64(len(want)), res.Pages)
	assert.Equal(t, uint64(saved-len(want)), res.Excluded)
	assert.Zero(t, res.Lost)
	assert.Equal(t, res.Excluded > 0, res.Incomplete, "a filtered dump is partial")
	if f == FormatDiskdump {
		// The verifying pipeline applies the same level.
		mf2 := memfile.New(nil)
		opt.VerifyRecords = true
		res2, err := Write(mf2, p, opt)
		require.NoError(t, err)
		assert.Equal(t, res.Excluded, res2.Excluded)
		require.True(t, bytes.Equal(mf.Bytes(), mf2.Bytes()), "VerifyRecords gives the same file")
	}
	img := mf.Bytes()
	v, err := Open(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	if f == FormatKdump {
		assert.Equal(t, int32(applied.Makedumpfile()), v.KdumpSubHeader().DumpLevel)
	}
	buf := make([]byte, v.PageSize())
	zeroSum := sha(zero.Page(v.PageSize()))
	for pfn := range uint64(p.Header().MaxMapnr) {
		got, err := v.ReadPage(pfn, buf)
		w, kept := want[pfn]
		switch {
		case kept:
			require.NoError(t, err, "PFN %d", pfn)
			require.Equal(t, w, sha(got), "PFN %d", pfn)
		case f == FormatELF:
			require.NoError(t, err, "PFN %d", pfn)
			require.Equal(t, zeroSum, sha(got), "PFN %d: an excluded page is a hole", pfn)
		default:
			require.Error(t, err, "PFN %d is not in the file", pfn)
		}
	}
	if judge && (f != FormatELF || level == 31) {
		checkOracle(t, writeTemp(t, "vmcore", img), f, want, uint64(p.Header().MaxMapnr), p.BlockSize())
	}
}
