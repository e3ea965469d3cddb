package vmcore

import (
	"bytes"
	"compress/zlib"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of Options.VerifyRecords (savecore --verify) on partitions
// of the kernel-exact writer whose record stream carries one damaged zlib
// record, made with WriterConfig.Deflate: the writer packs the records
// with the size of the damaged stream, so the partition is well formed and
// only inflating the record shows the damage.

// verifyTarget is the PFN whose record is damaged: the first PFN from 700
// on whose page is unique in the machine (many pages are zero or repeat).
var verifyTarget uint64

// verifyDeflate is zlib at level 1, as the writer's default.
func verifyDeflate(page []byte) []byte {
	var buf bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&buf, zlib.BestSpeed)
	zw.Write(page)
	zw.Close()
	return buf.Bytes()
}

// verifyCorruptions damage the zlib stream of one page.
var verifyCorruptions = []struct {
	name    string
	corrupt func(page []byte) []byte
}{
	{"bit flip in the deflate body", func(page []byte) []byte {
		z := verifyDeflate(page)
		z[len(z)/2] ^= 0x10
		return z
	}},
	{"bad Adler-32", func(page []byte) []byte {
		z := verifyDeflate(page)
		z[len(z)-1] ^= 0xff
		return z
	}},
	{"truncated stream", func(page []byte) []byte {
		z := verifyDeflate(page)
		return z[:len(z)-7]
	}},
	{"no Adler-32 trailer", func(page []byte) []byte {
		z := verifyDeflate(page)
		return z[:len(z)-4]
	}},
	{"inflates to half a page", func(page []byte) []byte {
		return verifyDeflate(page[:len(page)/2])
	}},
	{"inflates to more than a page", func(page []byte) []byte {
		return verifyDeflate(append(bytes.Clone(page), page[:100]...))
	}},
}

// verifyPartition writes a compressed dump of a 4 MiB x86_64 machine whose
// record of verifyTarget is corrupt(page) (nil: no damage). It returns the
// image, the expected pages of every saved PFN, and the partition offset of
// the target's record data.
func verifyPartition(t *testing.T, corrupt func([]byte) []byte) ([]byte, map[uint64][]byte, int64) {
	t.Helper()
	a := diskdump.ArchX86_64
	bs := a.PageSize()
	const mem = 4 << 20
	src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: a, MemBytes: mem, Seed: 91})
	maxPFN := uint64(mem / bs)
	count := map[string]int{}
	for pfn := range maxPFN {
		if src.IsRAM(pfn) {
			count[sha(expectedPage(t, src, pfn, bs, true))]++
		}
	}
	verifyTarget = 700
	for !src.IsRAM(verifyTarget) || count[sha(expectedPage(t, src, verifyTarget, bs, true))] != 1 {
		verifyTarget++
	}
	target := expectedPage(t, src, verifyTarget, bs, true)
	cfg := kernel.DefaultConfig(a)
	cfg.Compress, cfg.SampleRate = true, -1
	cfg.Time = time.Unix(1246291200, 0)
	var hits int
	cfg.Deflate = func(page, dst []byte) []byte {
		if corrupt != nil && bytes.Equal(page, target) {
			hits++
			return append(dst[:0], corrupt(page)...)
		}
		return append(dst[:0], verifyDeflate(page)...)
	}
	cfg.Workers = 1 // hits is counted without a lock
	g := diskdump.NewGeometry(bs, maxPFN, maxPFN, true)
	dev := g.TotalBlocks() + g.RAMBitmapBlocks + 64
	img := make([]byte, dev*uint64(bs))
	mf := memfile.New(img)
	res, err := kernel.WriteDump(mf, dev, src, cfg)
	require.NoError(t, err)
	require.Equal(t, kernel.OutcomeCompleted, res.Outcome)
	if corrupt != nil {
		require.Equal(t, 1, hits, "the target page is unique")
	}
	img = mf.Bytes()
	want := map[uint64][]byte{}
	for pfn := range res.Saved.All() {
		want[pfn] = expectedPage(t, src, pfn, bs, true)
	}
	p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	off := int64(-1)
	for pg, err := range p.Pages() {
		require.NoError(t, err, "the reader itself finds nothing wrong")
		if pg.PFN == verifyTarget {
			require.True(t, pg.Compressed, "the target record is a zlib stream")
			off = pg.Off
		}
	}
	require.Positive(t, off)
	return img, want, off
}

// writeVerified converts img to a vmcore: DISKDUMP unless opt says KDUMP.
func writeVerified(t *testing.T, img []byte, opt Options) ([]byte, *Result) {
	t.Helper()
	p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	if opt.Format == FormatAuto {
		opt.Format = FormatDiskdump
	}
	mf := memfile.New(nil)
	res, err := Write(mf, p, opt)
	require.NoError(t, err)
	return mf.Bytes(), res
}

// checkVerifiedPages reads every saved PFN back with Open: the pages
// of want, and for lost the page is not stored.
func checkVerifiedPages(t *testing.T, vm []byte, want map[uint64][]byte, lost uint64) {
	t.Helper()
	v, err := Open(bytes.NewReader(vm), int64(len(vm)))
	require.NoError(t, err)
	var dst []byte
	for pfn, w := range want {
		dst, err = v.ReadPage(pfn, dst)
		if pfn == lost {
			assert.ErrorIs(t, err, ErrPageExcluded, "PFN %d", pfn)
			continue
		}
		require.NoError(t, err, "PFN %d", pfn)
		if !bytes.Equal(w, dst) {
			require.Equal(t, w, dst, "PFN %d", pfn)
		}
	}
}

// verifiedFormats are the formats whose writers copy zlib records.
var verifiedFormats = []Format{FormatDiskdump, FormatKdump}

func TestVerifyRecordsCorrupt(t *testing.T) {
	for _, tc := range verifyCorruptions {
		for _, f := range verifiedFormats {
			t.Run(tc.name+"/"+f.String(), func(t *testing.T) { testVerifyCorrupt(t, tc.corrupt, f) })
		}
	}
}

func testVerifyCorrupt(t *testing.T, corrupt func([]byte) []byte, f Format) {
	img, want, off := verifyPartition(t, corrupt)

	// Unverified: the damaged record is copied as it is, and the
	// vmcore fails on that page only when it is read.
	plain, res := writeVerified(t, img, Options{Format: f})
	assert.Zero(t, res.Lost)
	assert.Zero(t, res.BadRecords)
	assert.NoError(t, res.Errors)
	v, err := Open(bytes.NewReader(plain), int64(len(plain)))
	require.NoError(t, err)
	_, err = v.ReadPage(verifyTarget, nil)
	assert.ErrorIs(t, err, diskdump.ErrCorrupt, "the copied record is damaged")

	// Verified, with any number of workers: the page is lost, the
	// rest is identical.
	var first []byte
	for _, workers := range []int{1, 2, 3} {
		vm, res := writeVerified(t, img, Options{Format: f, VerifyRecords: true, Workers: workers})
		assert.Equal(t, uint64(len(want)-1), res.Pages)
		assert.Equal(t, uint64(1), res.Lost)
		assert.Equal(t, uint64(1), res.BadRecords)
		assert.True(t, res.Incomplete)
		var pe *diskdump.PageError
		require.ErrorAs(t, res.Errors, &pe)
		assert.Equal(t, verifyTarget, pe.PFN)
		assert.Equal(t, off, pe.Off, "partition offset of the record data")
		assert.ErrorIs(t, res.Errors, diskdump.ErrCorrupt)
		assert.True(t, strings.HasPrefix(pe.Error(), "diskdump: "), pe.Error())
		checkVerifiedPages(t, vm, want, verifyTarget)
		_, bm1, bm2, _, _ := decodeTable(t, vm)
		assert.True(t, bm1.Test(verifyTarget), "RAM")
		assert.False(t, bm2.Test(verifyTarget), "not dumped")
		if first == nil {
			first = vm
		} else {
			assert.True(t, bytes.Equal(first, vm), "Workers %d gives the same file", workers)
		}
	}

	// The vmcore equals an unverified one of the same partition
	// without the damaged page: the only difference is the lost
	// page.
	assert.Less(t, len(first), len(plain))
}

// TestVerifyRecordsClean: on an undamaged partition the verified vmcore is
// byte-identical to the unverified one, with -P and StrictAnon too.
func TestVerifyRecordsClean(t *testing.T) {
	for _, f := range verifiedFormats {
		t.Run(f.String(), func(t *testing.T) { testVerifyClean(t, f) })
	}
}

func testVerifyClean(t *testing.T, f Format) {
	img, want, _ := verifyPartition(t, nil)
	defaultVmcore, _ := writeVerified(t, img, Options{Format: f})
	for _, tc := range []struct {
		name string
		opt  Options
	}{
		{"default", Options{}},
		{"-P", Options{UncompressedMask: 1 << 5}},
		{"StrictAnon -P", Options{UncompressedMask: 1<<5 | 1<<3, StrictAnon: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Format = f
			plain, res := writeVerified(t, img, tc.opt)
			require.Zero(t, res.Lost)
			if tc.opt.UncompressedMask != 0 {
				require.Greater(t, len(plain), len(defaultVmcore), "the mask stores some pages raw")
			}
			for _, workers := range []int{1, 2, 4} {
				opt := tc.opt
				opt.VerifyRecords, opt.Workers = true, workers
				vm, vres := writeVerified(t, img, opt)
				assert.Equal(t, res.Pages, vres.Pages)
				assert.Zero(t, vres.Lost)
				assert.Zero(t, vres.BadRecords)
				assert.NoError(t, vres.Errors)
				assert.True(t, bytes.Equal(plain, vm), "Workers %d: verified output differs", workers)
			}
			checkVerifiedPages(t, plain, want, diskdump.NoPFN)
		})
	}
}

// TestVerifyRecordsLostPages: pages the reader already reports lost and
// verification failures add up.
func TestVerifyRecordsLostPages(t *testing.T) {
	d := newSynthDump(t, synthConfig{arch: diskdump.ArchX86_64, maxPFN: 400, holes: [][2]uint64{{100, 200}}, compressed: true, seed: 21,
		excluded: func(p uint64) bool { return p%9 == 2 }, lost: func(p uint64) bool { return p == 234 }})
	plain, err := writeSource(memfile.New(nil), d.source(), FormatDiskdump, Options{})
	require.NoError(t, err)
	mf := memfile.New(nil)
	res, err := writeSource(mf, d.source(), FormatDiskdump, Options{VerifyRecords: true, Workers: 2})
	require.NoError(t, err)
	assert.Equal(t, plain.Pages, res.Pages)
	assert.Equal(t, plain.Lost, res.Lost)
	assert.Zero(t, res.BadRecords)
	var pe *diskdump.PageError
	require.ErrorAs(t, res.Errors, &pe)
	assert.Equal(t, uint64(234), pe.PFN)
}

// failAfterWriterAt fails every write after the first n.
type failAfterWriterAt struct {
	mf *memfile.File
	n  int
}

var errVerifyWrite = errors.New("disk full")

func (w *failAfterWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if w.n == 0 {
		return 0, errVerifyWrite
	}
	w.n--
	return w.mf.WriteAt(p, off)
}

// TestVerifyRecordsWriteError: a write error stops the pipeline and is
// returned, whatever the number of workers.
func TestVerifyRecordsWriteError(t *testing.T) {
	img, _, _ := verifyPartition(t, nil)
	for _, workers := range []int{1, 2} {
		p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
		require.NoError(t, err)
		_, err = Write(&failAfterWriterAt{mf: memfile.New(nil), n: 1}, p,
			Options{Format: FormatDiskdump, VerifyRecords: true, Workers: workers})
		assert.ErrorIs(t, err, errVerifyWrite, "Workers %d", workers)
	}
}

func TestVerifyRecordsOracle(t *testing.T) {
	requireOracle(t, true)
	img, want, _ := verifyPartition(t, verifyCorruptions[0].corrupt)
	sums := map[uint64]string{}
	for pfn, w := range want {
		if pfn != verifyTarget {
			sums[pfn] = sha(w)
		}
	}
	p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	h := p.Header()

	// Unverified: libkdumpfile cannot read the copied record.
	plain, _ := writeVerified(t, img, Options{})
	l := runVmcorePages(t, writeTemp(t, "vmcore-plain", plain))
	assert.Equal(t, 1, l.rc, "a page is unreadable")
	assert.True(t, strings.HasPrefix(l.pages[verifyTarget], "ERROR"), "PFN %d: %s", verifyTarget, l.pages[verifyTarget])

	// Verified: every page stored reads, the damaged one is not there.
	vm, res := writeVerified(t, img, Options{VerifyRecords: true})
	path := writeTemp(t, "vmcore", vm)
	checkOracle(t, path, FormatDiskdump, sums, uint64(h.MaxMapnr), p.BlockSize())
	want1 := *h
	want1.Version = diskdump.DiskDumpHeaderVersion
	want1.BitmapBlocks = uint32(2 * diskdump.BitmapBlocksFor(uint64(h.MaxMapnr), p.BlockSize()))
	checkCrash(t, path, FormatDiskdump, &want1, res.Pages)
}
