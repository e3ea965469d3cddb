package vmcore

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/zero"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the batch pipeline (pipeline.go) as the KDUMP writer uses
// it: pages travel in batches of batchPages between the page sequence,
// the workers and the in-order writer. Whatever the number of workers and wherever a batch
// ends, the file must be the same, in PFN order, with every lost page
// accounted for.

// pageErrors lists the *PageError PFNs of a joined error, in order.
func pageErrors(t *testing.T, err error) []uint64 {
	t.Helper()
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "a joined error: %v", err)
	var pfns []uint64
	for _, e := range j.Unwrap() {
		var pe *diskdump.PageError
		require.ErrorAs(t, e, &pe)
		pfns = append(pfns, pe.PFN)
	}
	return pfns
}

// writeKdumpWorkers writes d as KDUMP with 1, 2 and 5 workers, checks
// that every file is the same and returns it with its result.
func writeKdumpWorkers(t *testing.T, d *synthDump, shareZero bool) ([]byte, *Result) {
	t.Helper()
	var img []byte
	var res *Result
	for _, w := range []int{1, 2, 5} {
		mf := memfile.New(nil)
		r, err := writeSource(mf, d.source(), FormatKdump, Options{Workers: w, ShareZeroPage: shareZero})
		require.NoError(t, err, "Workers %d", w)
		if img == nil {
			img, res = mf.Bytes(), r
			continue
		}
		require.True(t, bytes.Equal(img, mf.Bytes()), "Workers %d gives another file than Workers 1", w)
		assert.Equal(t, res.Pages, r.Pages, "Workers %d", w)
		assert.Equal(t, res.Lost, r.Lost, "Workers %d", w)
		assert.Equal(t, res.ZeroPages, r.ZeroPages, "Workers %d", w)
		assert.Equal(t, pageErrors(t, res.Errors), pageErrors(t, r.Errors), "Workers %d: errors in the same order", w)
	}
	return img, res
}

// TestKdumpBatchBoundaries converts dumps whose page count is, or is
// not, a multiple of the batch size, with a shared zero page and
// without: same file for any number of workers, every page back, zero
// pages sharing one copy across batches.
func TestKdumpBatchBoundaries(t *testing.T) {
	for _, a := range []diskdump.Arch{diskdump.ArchX86_64, diskdump.ArchIA64} {
		n := uint64(batchPages(a.PageSize()))
		require.Greater(t, n, uint64(2))
		sizes := []uint64{1, n - 1, n + 1, 2 * n, 5*n + 3}
		if a == diskdump.ArchIA64 {
			sizes = []uint64{n - 1, n, 2*n + 1}
		}
		for _, pages := range sizes {
			for _, compressed := range []bool{false, true} {
				for _, shareZero := range []bool{false, true} {
					t.Run(fmt.Sprintf("%v/%d pages/compressed %v/share zero %v", a, pages, compressed, shareZero), func(t *testing.T) {
						d := newSynthDump(t, synthConfig{arch: a, maxPFN: pages, compressed: compressed, seed: pages})
						img, res := writeKdumpWorkers(t, d, shareZero)
						assert.Equal(t, pages, res.Pages)
						assert.Zero(t, res.Lost)
						assert.NoError(t, res.Errors)
						checkReadBack(t, img, d, FormatKdump)

						_, _, _, ds, tbl := decodeTable(t, img)
						require.Len(t, ds, int(pages))
						dataStart := tbl + int64(pages)*pageDescSize
						var zeros uint64
						zeroOffs := map[int64]bool{}
						for i, e := range ds {
							require.Equal(t, uint64(i), e.pfn, "PFN order")
							if !zero.Is(d.want[e.pfn]) {
								continue
							}
							zeros++
							zeroOffs[e.off] = true
							if shareZero {
								assert.Equal(t, dataStart, e.off, "PFN %d: the zero page is shared", e.pfn)
							}
						}
						require.Positive(t, zeros)
						if shareZero {
							assert.Equal(t, zeros, res.ZeroPages)
						} else {
							assert.Zero(t, res.ZeroPages)
							assert.Len(t, zeroOffs, int(zeros), "each zero page has its own copy")
						}
					})
				}
			}
		}
	}
}

// TestKdumpErrorsMidBatch puts lost pages at and around batch
// boundaries: pages the sequence reports lost, records the filter
// rejects (a raw page of the wrong size, a zlib record larger than a
// page) and records a worker fails to inflate (a short corrupt zlib
// record, inflated to look for a zero page). The lost pages are counted,
// reported in PFN order, and every other page is written in PFN order.
func TestKdumpErrorsMidBatch(t *testing.T) {
	const n = 64 // pages per batch of 4 KiB pages
	require.Equal(t, n, batchPages(4096))
	lost := map[uint64]bool{0: true, n - 2: true, n - 1: true, n: true, 2*n - 1: true, 3 * n: true, 4*n + 5: true}
	for _, tc := range []struct {
		name    string
		corrupt map[uint64]func(pg *diskdump.Page) // records replaced by bad ones
	}{
		{"sequence errors", nil},
		{"filter and inflate errors", map[uint64]func(pg *diskdump.Page){
			n + 1:   func(pg *diskdump.Page) { pg.Data, pg.Compressed = make([]byte, 100), false },       // raw page of 100 bytes
			2 * n:   func(pg *diskdump.Page) { pg.Data, pg.Compressed = make([]byte, 4097), true },       // zlib record > page
			2*n + 1: func(pg *diskdump.Page) { pg.Data, pg.Compressed = []byte{0x78, 0x01, 0xff}, true }, // corrupt zlib
			4*n + 6: func(pg *diskdump.Page) { pg.Data, pg.Compressed = []byte{0x78, 0x01, 0x03}, true }, // corrupt zlib
			5*n - 1: func(pg *diskdump.Page) { pg.Data, pg.Compressed = nil, true },                      // empty record
			5*n + 1: func(pg *diskdump.Page) { pg.Data, pg.Compressed = make([]byte, 4095), false },      // raw page 1 byte short
			5*n + 2: func(pg *diskdump.Page) { pg.Data, pg.Compressed = []byte{0x78, 0x01, 0x4b, 0x04, 0x00}, true },
			5*n + 3: func(pg *diskdump.Page) { pg.Data, pg.Compressed = []byte{0x78, 0x01}, true },
			5*n + 4: func(pg *diskdump.Page) {
				pg.Data, pg.Compressed = []byte{0x78, 0x01, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01}, true
			},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const maxPFN = 6*n + 7
			d := newSynthDump(t, synthConfig{arch: diskdump.ArchX86_64, maxPFN: maxPFN, compressed: true, seed: 5,
				lost: func(p uint64) bool { return lost[p] }})
			var want []uint64
			for i := range d.recs {
				r := &d.recs[i]
				var pe *diskdump.PageError
				if errors.As(r.err, &pe) {
					want = append(want, pe.PFN)
					continue
				}
				if f := tc.corrupt[r.pg.PFN]; f != nil {
					f(&r.pg)
					delete(d.want, r.pg.PFN)
					want = append(want, r.pg.PFN)
				}
			}
			require.Len(t, want, len(lost)+len(tc.corrupt))
			img, res := writeKdumpWorkers(t, d, true)
			assert.Equal(t, want, pageErrors(t, res.Errors), "lost pages reported in PFN order")
			assert.Equal(t, uint64(len(want)), res.Lost)
			assert.Equal(t, uint64(len(d.want)), res.Pages)
			assert.True(t, res.Incomplete)
			_, _, _, ds, _ := decodeTable(t, img)
			require.Len(t, ds, len(d.want))
			for i := 1; i < len(ds); i++ {
				require.Less(t, ds[i-1].pfn, ds[i].pfn, "PFN order")
			}
			d.incomplete = true // the lost records make the file partial
			checkReadBack(t, img, d, FormatKdump)
		})
	}
}

// TestKdumpRawRecordsOfCompressedDump checks the [REC] decision of
// kdumpStage.rawAsIs: a raw record of a compressed dump is stored raw,
// even when deflate would shrink it, while the same page of a raw dump is
// compressed.
func TestKdumpRawRecordsOfCompressedDump(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		t.Run(fmt.Sprintf("compressed %v", compressed), func(t *testing.T) {
			d := newSynthDump(t, synthConfig{arch: diskdump.ArchX86_64, maxPFN: 300, compressed: compressed, seed: 11})
			// PFN 101 holds text (synthPage): the kernel could have
			// stored it raw, e.g. when its deflate did not finish.
			const pfn = 101
			for i := range d.recs {
				if r := &d.recs[i]; r.pg.PFN == pfn {
					r.pg.Data, r.pg.Compressed = d.want[pfn], false
					r.pg.Flags &^= PageDescCompressed
				}
			}
			img, _ := writeKdumpWorkers(t, d, false)
			checkReadBack(t, img, d, FormatKdump)
			_, _, _, ds, _ := decodeTable(t, img)
			for _, e := range ds {
				if e.pfn != pfn {
					continue
				}
				if compressed {
					assert.Zero(t, e.flags, "stored raw")
					assert.Equal(t, uint32(d.b), e.size)
				} else {
					assert.Equal(t, uint32(PageDescCompressed), e.flags, "deflated")
					assert.Less(t, e.size, uint32(d.b/4))
				}
			}
		})
	}
}

// TestKdumpPipeWriteError fails the output at every point of the data
// area: the conversion stops with the error whatever the number of
// workers (no worker waits forever for a batch) and never writes a
// batch after the failed one.
func TestKdumpPipeWriteError(t *testing.T) {
	d := newSynthDump(t, synthConfig{arch: diskdump.ArchX86_64, maxPFN: 1000, seed: 3})
	mf := memfile.New(nil)
	_, err := writeSource(mf, d.source(), FormatKdump, Options{Workers: 1})
	require.NoError(t, err)
	size := int64(len(mf.Bytes()))
	for _, w := range []int{1, 2, 7} {
		for _, at := range []int64{size / 4, size / 2, size - 1} {
			t.Run(fmt.Sprintf("workers %d/at %d", w, at), func(t *testing.T) {
				fw := &failingWriterAt{failAt: at}
				_, err := writeSource(fw, d.source(), FormatKdump, Options{Workers: w})
				require.ErrorIs(t, err, errInjected)
			})
		}
	}
}
