package diskdump

// Resynchronisation of the compressed record stream after a damaged record
// header (doc/FORMAT.md §6.3, §9.5): dumps written by the kernel-exact writer are
// damaged (header fields, zeroed blocks, unreadable blocks), and every page
// the reader yields must be byte-for-byte the synthetic machine's page for
// that PFN, while the pages lost must be exactly the damaged span.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

// rsRec is one record of a pristine compressed dump.
type rsRec struct {
	pfn   uint64
	off   int64 // record header offset
	size  uint32
	flags uint32
}

func (r rsRec) end() int64 { return r.off + PageRecordSize + int64(r.size) }

// rsBase is a pristine compressed dump written by the kernel-exact writer
// and the pages it must give.
type rsBase struct {
	arch Arch
	img  []byte
	bs   int
	recs []rsRec
	want map[uint64][]byte
	wEnd int64
}

type rsKey struct {
	a     Arch
	pages uint64
}

var rsBases struct {
	sync.Mutex
	m map[rsKey]*rsBase
}

// rsGet builds (once per test binary) a 512-page machine of mixed content
// dumped compressed with dump_level 0.
func rsGet(t testing.TB, a Arch) *rsBase { return rsGetN(t, a, 512) }

func rsGetN(t testing.TB, a Arch, pages uint64) *rsBase {
	t.Helper()
	rsBases.Lock()
	defer rsBases.Unlock()
	if b := rsBases.m[rsKey{a, pages}]; b != nil {
		return b
	}
	bs := a.PageSize()
	devBlocks := int(pages + pages/3 + 20)
	img := make([]byte, devBlocks*bs)
	for blk := range uint64(devBlocks) {
		FillSignature(img[blk*uint64(bs):(blk+1)*uint64(bs)], blk, a.ByteOrder())
	}
	img, completed, err := writeTestDump(img, uint64(devBlocks), TestDump{Arch: a, MemBytes: pages * uint64(bs), Seed: 29, NoHoles: true,
		Mix: [5]int{20, 20, 20, 20, 20}, BadPFNs: []uint64{pages * 300 / 512}, Compress: true, Time: time.Unix(1246291200, 0)})
	require.NoError(t, err)
	require.True(t, completed)
	p, err := OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	b := &rsBase{arch: a, img: img, bs: bs, want: map[uint64][]byte{}, wEnd: int64(p.Header().WrittenBlocks) * int64(bs)}
	o := a.ByteOrder()
	for pg, err := range p.Pages() {
		require.NoError(t, err)
		off := pg.Off - PageRecordSize
		rec := decodePageRecord(img[off:], o)
		b.recs = append(b.recs, rsRec{pfn: pg.PFN, off: off, size: rec.size, flags: rec.flags})
		// The undamaged dump, read in full, is the reference for every
		// damaged copy (the writer round trip checks it against the source).
		page, err := pg.Decompress(nil)
		require.NoError(t, err)
		b.want[pg.PFN] = page
	}
	require.Greater(t, uint64(len(b.recs)), pages*3/4)
	var raw, crossing int
	for _, r := range b.recs {
		if r.flags&PageCompressed == 0 {
			raw++
		}
		if r.off/int64(bs) != (r.off+PageRecordSize-1)/int64(bs) {
			crossing++
		}
	}
	require.Greater(t, raw, int(pages/25), "the dump needs raw records")
	if pages >= 512 {
		require.Positive(t, crossing, "the dump needs record headers crossing a block boundary")
	}
	if rsBases.m == nil {
		rsBases.m = map[rsKey]*rsBase{}
	}
	rsBases.m[rsKey{a, pages}] = b
	return b
}

// rsDamage is a damaged copy of a base dump and what reading it must give
// (indices into rsBase.recs).
type rsDamage struct {
	img  []byte
	fail [2]int64 // reads touching [fail[0], fail[1]) fail with EIO
	// lost: the records the iteration must report lost, exactly.
	lost []int
	// dataHit: records whose data (not header) is damaged: each may be
	// reported lost, fail Decompress, or (raw pages) hold wrong bytes,
	// but is never attributed to another PFN's slot.
	dataHit []int
	// decErr: records yielded whose Decompress must fail.
	decErr []int
	// desync: the error of the first lost record must say why the
	// records after it cannot be attributed (contains this text).
	desync string
}

func span(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// putRec changes the header fields of record i in img.
func (b *rsBase) putRec(img []byte, i int, f func(*pageRecord)) {
	o := b.arch.ByteOrder()
	r := decodePageRecord(img[b.recs[i].off:], o)
	f(&r)
	putRecord(img[b.recs[i].off:], o, r)
}

// rec returns the index of the first record from i on satisfying ok.
func (b *rsBase) rec(t testing.TB, i int, ok func(rsRec) bool) int {
	t.Helper()
	for ; i < len(b.recs); i++ {
		if ok(b.recs[i]) {
			return i
		}
	}
	t.Fatal("no record for the damage")
	return -1
}

// blockLoss is the expected outcome of an unreadable (or, for a block no
// record header straddles the edges of, zeroed) byte range [a, e): the
// records whose header it touches from the first one (j) up to the first
// record starting at or after e are lost; records before j whose data it
// touches are data hits.
func (b *rsBase) blockLoss(a, e int64) (lost, hit []int) {
	j, r := -1, len(b.recs)
	for i, rec := range b.recs {
		switch {
		case j < 0 && rec.off < e && rec.off+PageRecordSize > a:
			j = i
		case j < 0 && rec.off+PageRecordSize < e && rec.end() > a:
			hit = append(hit, i)
		case j >= 0 && rec.off >= e:
			r = i
		}
		if r < len(b.recs) {
			break
		}
	}
	if j < 0 {
		return nil, hit
	}
	return span(j, r), hit
}

// cleanBlock returns the first block from the one holding record i's
// header whose edges no record header straddles and that holds a record
// header.
func (b *rsBase) cleanBlock(t testing.TB, i int) int64 {
	t.Helper()
	bs := int64(b.bs)
	for blk := b.recs[i].off / bs; blk*bs < b.wEnd; blk++ {
		a, e := blk*bs, (blk+1)*bs
		ok, holds := true, false
		for _, r := range b.recs {
			if (r.off < a && r.off+PageRecordSize > a) || (r.off < e && r.off+PageRecordSize > e) {
				ok = false
			}
			holds = holds || (r.off >= a && r.off < e)
		}
		if ok && holds {
			return blk
		}
	}
	t.Fatal("no clean block")
	return -1
}

func rsHeaderCases() []struct {
	name string
	mod  func(t *testing.T, b *rsBase, img []byte) rsDamage
} {
	sizeTo := func(pick func(t *testing.T, b *rsBase) int, v uint32) func(t *testing.T, b *rsBase, img []byte) rsDamage {
		return func(t *testing.T, b *rsBase, img []byte) rsDamage {
			i := pick(t, b)
			b.putRec(img, i, func(r *pageRecord) { r.size = v })
			return rsDamage{img: img, lost: []int{i}}
		}
	}
	first := func(*testing.T, *rsBase) int { return 0 }
	middle := func(_ *testing.T, b *rsBase) int { return len(b.recs) / 2 }
	last := func(_ *testing.T, b *rsBase) int { return len(b.recs) - 1 }
	crossing := func(t *testing.T, b *rsBase) int {
		return b.rec(t, 50, func(r rsRec) bool { return r.off/int64(b.bs) != (r.off+PageRecordSize-1)/int64(b.bs) })
	}
	beforeRaw := func(t *testing.T, b *rsBase) int {
		return b.rec(t, 50, func(r rsRec) bool { return r.flags&PageCompressed == 0 })
	}
	type c = struct {
		name string
		mod  func(t *testing.T, b *rsBase, img []byte) rsDamage
	}
	return []c{
		{"size 0 at the first record", sizeTo(first, 0)},
		{"size 0 at a middle record", sizeTo(middle, 0)},
		{"size 0 at the last record", sizeTo(last, 0)},
		{"size B+1 at a middle record", sizeTo(middle, 4097)},
		{"size max at a raw record", sizeTo(beforeRaw, math.MaxUint32)},
		{"size 0 in a header crossing a block boundary", sizeTo(crossing, 0)},
		{"header zeroed", func(_ *testing.T, b *rsBase, img []byte) rsDamage {
			i := len(b.recs) / 3
			clear(img[b.recs[i].off : b.recs[i].off+PageRecordSize])
			return rsDamage{img: img, lost: []int{i}}
		}},
		{"header 0xff", func(_ *testing.T, b *rsBase, img []byte) rsDamage {
			i := len(b.recs) / 3
			for k := range int64(PageRecordSize) {
				img[b.recs[i].off+k] = 0xff
			}
			return rsDamage{img: img, lost: []int{i}}
		}},
		{"unknown flags, size intact: skipped by its size", func(_ *testing.T, b *rsBase, img []byte) rsDamage {
			i := len(b.recs) / 3
			b.putRec(img, i, func(r *pageRecord) { r.flags |= 0x100 })
			return rsDamage{img: img, lost: []int{i}}
		}},
		{"unknown flags and size 0", func(_ *testing.T, b *rsBase, img []byte) rsDamage {
			i := len(b.recs) / 3
			b.putRec(img, i, func(r *pageRecord) { r.flags, r.size = 0x80000000, 0 })
			return rsDamage{img: img, lost: []int{i}}
		}},
		{"zlib record one byte short: the next header is misread, nothing else lost", func(t *testing.T, b *rsBase, img []byte) rsDamage {
			i := b.rec(t, 60, func(r rsRec) bool { return r.flags&PageCompressed != 0 && r.size > 100 })
			b.putRec(img, i, func(r *pageRecord) { r.size-- })
			return rsDamage{img: img, decErr: []int{i}}
		}},
		{"zlib record 40 bytes long: the previous record was too long, nothing lost", func(t *testing.T, b *rsBase, img []byte) rsDamage {
			i := b.rec(t, 60, func(r rsRec) bool { return r.flags&PageCompressed != 0 && r.size > 100 && r.size < 3000 })
			b.putRec(img, i, func(r *pageRecord) { r.size += 40 })
			return rsDamage{img: img}
		}},
		{"two damaged records", func(_ *testing.T, b *rsBase, img []byte) rsDamage {
			i, j := len(b.recs)/4, len(b.recs)/2
			b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
			b.putRec(img, j, func(r *pageRecord) { r.size = 1 << 20 })
			return rsDamage{img: img, lost: []int{i, j}}
		}},
		{"two adjacent damaged records", func(_ *testing.T, b *rsBase, img []byte) rsDamage {
			i := len(b.recs) / 4
			b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
			b.putRec(img, i+1, func(r *pageRecord) { r.size = 0 })
			return rsDamage{img: img, lost: []int{i, i + 1}}
		}},
		{"three damaged records", func(_ *testing.T, b *rsBase, img []byte) rsDamage {
			i, j, k := 10, len(b.recs)/2, len(b.recs)-3
			for _, x := range []int{i, j, k} {
				b.putRec(img, x, func(r *pageRecord) { r.size = 0 })
			}
			return rsDamage{img: img, lost: []int{i, j, k}}
		}},
		{"IN_PROGRESS: nothing after the damage is attributed", func(_ *testing.T, b *rsBase, img []byte) rsDamage {
			i := len(b.recs) / 2
			b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
			rsSetStatus(b, img, StatusInProgress|StatusCompressed)
			return rsDamage{img: img, lost: span(i, len(b.recs)), desync: "IN_PROGRESS"}
		}},
		{"INCOMPLETED: nothing after the damage is attributed", func(_ *testing.T, b *rsBase, img []byte) rsDamage {
			i := len(b.recs) / 2
			b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
			rsSetStatus(b, img, StatusIncompleted|StatusCompressed)
			return rsDamage{img: img, lost: span(i, len(b.recs)), desync: "INCOMPLETED"}
		}},
		{"SHORT_AREA: final like COMPLETED", func(_ *testing.T, b *rsBase, img []byte) rsDamage {
			i := len(b.recs) / 2
			b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
			rsSetStatus(b, img, StatusShortArea|StatusCompressed)
			return rsDamage{img: img, lost: []int{i}}
		}},
		{"padding damaged: the end cannot be established", func(t *testing.T, b *rsBase, img []byte) rsDamage {
			i := len(b.recs) / 2
			b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
			last := b.recs[len(b.recs)-1].end()
			require.Less(t, last, b.wEnd, "the dump needs 'm' padding")
			img[b.wEnd-1] = 'x'
			return rsDamage{img: img, lost: span(i, len(b.recs)), desync: "no record start"}
		}},
		{"adversarial: a fake raw header at the start of the damaged raw record's data", func(t *testing.T, b *rsBase, img []byte) rsDamage {
			i := b.rec(t, 60, func(r rsRec) bool { return r.flags&PageCompressed == 0 })
			b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
			putRecord(img[b.recs[i].off+PageRecordSize:], b.arch.ByteOrder(), pageRecord{pageFlags: 1, size: uint32(b.bs)})
			return rsDamage{img: img, lost: []int{i}}
		}},
		{"adversarial: a chain of valid zlib records inside the damaged raw record's data", func(t *testing.T, b *rsBase, img []byte) rsDamage {
			i := b.rec(t, 60, func(r rsRec) bool { return r.flags&PageCompressed == 0 })
			b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
			data := img[b.recs[i].off+PageRecordSize : b.recs[i].end()]
			clear(data)
			rsFakeChain(t, b, data, 6)
			// The fake records and the true ones after them are more
			// records than pages remain: the fake run is dropped, the last
			// run (the true records) fits after the damage.
			return rsDamage{img: img, lost: []int{i}}
		}},
		{"adversarial: a fake chain that ends exactly where the next record starts: nothing attributed", func(t *testing.T, b *rsBase, img []byte) rsDamage {
			i := b.rec(t, 60, func(r rsRec) bool { return r.flags&PageCompressed == 0 })
			b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
			data := img[b.recs[i].off+PageRecordSize : b.recs[i].end()]
			clear(data)
			n := rsFakeChain(t, b, data, 6)
			// A last fake raw-sized record cannot fit: stretch the chain
			// with one zlib record padded by a too-long size instead.
			o := b.arch.ByteOrder()
			r := decodePageRecord(data[n-rsLastFake:], o)
			r.size += uint32(len(data) - n)
			putRecord(data[n-rsLastFake:], o, r)
			return rsDamage{img: img, lost: span(i, len(b.recs)), desync: "more records than pages remain"}
		}},
	}
}

// rsLastFake is the length of the last fake record rsFakeChain writes.
var rsLastFake int

// rsFakeChain writes n records of zlib-compressed zero pages at the start
// of data and returns the bytes used.
func rsFakeChain(t *testing.T, b *rsBase, data []byte, n int) int {
	z := rdrZlib(t, math.MaxUint64, make([]byte, b.bs))
	pos := 0
	for range n {
		putRecord(data[pos:], b.arch.ByteOrder(), pageRecord{pageFlags: 7, size: uint32(len(z)), flags: PageCompressed})
		copy(data[pos+PageRecordSize:], z)
		pos += PageRecordSize + len(z)
	}
	rsLastFake = PageRecordSize + len(z)
	return pos
}

func rsSetStatus(b *rsBase, img []byte, st Status) {
	off := b.bs + LayoutOf(b.arch).FieldOffset("status")
	b.arch.ByteOrder().PutUint32(img[off:], uint32(st))
}

func rsBlockCases() []struct {
	name string
	mod  func(t *testing.T, b *rsBase, img []byte) rsDamage
} {
	type c = struct {
		name string
		mod  func(t *testing.T, b *rsBase, img []byte) rsDamage
	}
	eio := func(at func(b *rsBase) int64) func(t *testing.T, b *rsBase, img []byte) rsDamage {
		return func(t *testing.T, b *rsBase, img []byte) rsDamage {
			a := at(b) / int64(b.bs) * int64(b.bs)
			e := a + int64(b.bs)
			lost, hit := b.blockLoss(a, e)
			return rsDamage{img: img, fail: [2]int64{a, e}, lost: lost, dataHit: hit}
		}
	}
	zero := func(i func(b *rsBase) int) func(t *testing.T, b *rsBase, img []byte) rsDamage {
		return func(t *testing.T, b *rsBase, img []byte) rsDamage {
			blk := b.cleanBlock(t, i(b))
			a, e := blk*int64(b.bs), (blk+1)*int64(b.bs)
			clear(img[a:e])
			lost, hit := b.blockLoss(a, e)
			return rsDamage{img: img, lost: lost, dataHit: hit}
		}
	}
	return []c{
		{"EIO on the first data block", eio(func(b *rsBase) int64 { return b.recs[0].off })},
		{"EIO on a middle block", eio(func(b *rsBase) int64 { return b.recs[len(b.recs)/2].off })},
		{"EIO on the block holding the end of a crossing header", func(t *testing.T, b *rsBase, img []byte) rsDamage {
			i := b.rec(t, 50, func(r rsRec) bool { return r.off/int64(b.bs) != (r.off+PageRecordSize-1)/int64(b.bs) })
			return eio(func(b *rsBase) int64 { return b.recs[i].off + PageRecordSize - 1 })(t, b, img)
		}},
		{"EIO on the last block", eio(func(b *rsBase) int64 { return b.wEnd - 1 })},
		{"EIO on two blocks", func(t *testing.T, b *rsBase, img []byte) rsDamage {
			a := b.recs[len(b.recs)/3].off / int64(b.bs) * int64(b.bs)
			lost, hit := b.blockLoss(a, a+2*int64(b.bs))
			return rsDamage{img: img, fail: [2]int64{a, a + 2*int64(b.bs)}, lost: lost, dataHit: hit}
		}},
		{"zeroed first block", zero(func(*rsBase) int { return 0 })},
		{"zeroed middle block", zero(func(b *rsBase) int { return len(b.recs) / 2 })},
		{"zeroed block near the end", zero(func(b *rsBase) int { return len(b.recs) - 8 })},
		{"a damaged header and a zeroed block: only the tail is attributed", func(t *testing.T, b *rsBase, img []byte) rsDamage {
			i := 20
			b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
			blk := b.cleanBlock(t, len(b.recs)/2)
			a, e := blk*int64(b.bs), (blk+1)*int64(b.bs)
			clear(img[a:e])
			lost, hit := b.blockLoss(a, e)
			require.Greater(t, len(lost), 1, "the zeroed block must swallow two records")
			// The counts cannot say how many records each damage
			// swallowed: the records between them are lost too.
			return rsDamage{img: img, lost: span(i, lost[len(lost)-1]+1), dataHit: hit}
		}},
	}
}

// rsOutcome is what reading a damaged dump gave (record indices).
type rsOutcome struct {
	found, lost, decErr, wrong []int
	errs                       []error
	stats                      Stats
}

func rsRun(t *testing.T, b *rsBase, r io.ReaderAt, size int64) rsOutcome {
	t.Helper()
	p, err := OpenPartition(r, size)
	require.NoError(t, err)
	idx := map[uint64]int{}
	for i, rec := range b.recs {
		idx[rec.pfn] = i
	}
	var out rsOutcome
	var dst []byte
	for pg, err := range p.Pages() {
		if err != nil {
			var pe *PageError
			var le *LostError
			require.ErrorAs(t, err, &pe)
			require.ErrorAs(t, err, &le)
			require.Regexp(t, "^diskdump: ", err.Error())
			i, ok := idx[pe.PFN]
			require.True(t, ok, "lost PFN %d is not a dumped page: %v", pe.PFN, err)
			require.LessOrEqual(t, i+int(le.Pages), len(b.recs), "%v", err)
			out.lost = append(out.lost, span(i, i+int(le.Pages))...)
			out.errs = append(out.errs, err)
			continue
		}
		i, ok := idx[pg.PFN]
		require.True(t, ok, "PFN %d is not a dumped page", pg.PFN)
		out.found = append(out.found, i)
		var derr error
		if dst, derr = pg.Decompress(dst); derr != nil {
			out.decErr = append(out.decErr, i)
			continue
		}
		if !bytes.Equal(b.want[pg.PFN], dst) {
			out.wrong = append(out.wrong, i)
		}
	}
	out.stats = p.Stats()
	return out
}

// rsCheck compares an outcome with the damage's expectations.
func rsCheck(t *testing.T, b *rsBase, d rsDamage, out rsOutcome) {
	t.Helper()
	hit := func(i int) bool { return slices.Contains(d.dataHit, i) }
	// Never a page under another PFN: every yielded page outside the
	// damaged data is the machine's page.
	for _, i := range out.wrong {
		assert.True(t, hit(i), "record %d (PFN %d) yielded with the wrong content", i, b.recs[i].pfn)
	}
	for _, i := range out.decErr {
		assert.True(t, hit(i) || slices.Contains(d.decErr, i), "record %d (PFN %d): Decompress failed", i, b.recs[i].pfn)
	}
	for _, i := range d.decErr {
		assert.Contains(t, out.decErr, i, "record %d must fail Decompress", i)
	}
	lost := slices.DeleteFunc(slices.Clone(out.lost), hit)
	want := slices.DeleteFunc(slices.Clone(d.lost), hit)
	assert.Equal(t, nilIfEmpty(want), nilIfEmpty(lost), "lost records")
	// Every record is found or lost, once.
	all := append(slices.Clone(out.found), out.lost...)
	slices.Sort(all)
	assert.Equal(t, span(0, len(b.recs)), all, "found and lost records")
	st := out.stats
	assert.Equal(t, uint64(len(b.recs)), st.Expected)
	assert.Equal(t, uint64(len(out.found)), st.Found)
	assert.Equal(t, uint64(len(out.lost)), st.Lost)
	var sum uint64
	for _, n := range st.LostBy {
		sum += n
	}
	assert.Equal(t, st.Lost, sum, "LostBy %v", st.LostBy)
	if len(d.lost) > 0 && len(d.dataHit) == 0 && d.fail[1] == 0 {
		// The first damaged record is named with its offset.
		var pe *PageError
		require.ErrorAs(t, out.errs[0], &pe)
		assert.Equal(t, b.recs[d.lost[0]].pfn, pe.PFN)
		assert.Equal(t, b.recs[d.lost[0]].off, pe.Off)
	}
	if d.desync != "" {
		require.GreaterOrEqual(t, len(out.errs), 2, "%v", out.errs)
		var le *LostError
		require.ErrorAs(t, out.errs[1], &le)
		assert.Equal(t, LostDesync, le.Reason)
		assert.Contains(t, out.errs[1].Error(), d.desync)
	}
}

func nilIfEmpty(s []int) []int {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestResync(t *testing.T) {
	cases := rsHeaderCases()
	cases = append(cases, rsBlockCases()...)
	for _, a := range []Arch{ArchX86_64, ArchPPC64} {
		b := rsGet(t, a)
		for _, tc := range cases {
			t.Run(a.String()+"/"+tc.name, func(t *testing.T) {
				d := tc.mod(t, b, bytes.Clone(b.img))
				var r io.ReaderAt = bytes.NewReader(d.img)
				if d.fail[1] > 0 {
					dev := blockdevtest.NewFaultDevice(d.img)
					dev.FailRead = blockdevtest.BadRange(d.fail[0], d.fail[1])
					r = dev
				}
				out := rsRun(t, b, r, int64(len(d.img)))
				rsCheck(t, b, d, out)
				if d.fail[1] > 0 {
					for _, err := range out.errs {
						var le *LostError
						if errors.As(err, &le) && le.Reason == LostIOError {
							assert.ErrorIs(t, err, syscall.EIO)
						}
					}
				}
				t.Logf("%d records: %d found, %d lost, %d with damaged data", len(b.recs), len(out.found), len(out.lost), len(d.dataHit))
			})
		}
	}
}

// TestResyncBoundsWork: a damaged header followed by a long stretch with
// no record (zeros, then an unreadable region) ends in a bounded time and
// without allocating per byte scanned.
func TestResyncBoundsWork(t *testing.T) {
	b := rsGet(t, ArchX86_64)
	img := bytes.Clone(b.img)
	i := 30
	b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
	from := b.recs[i].off + PageRecordSize
	clear(img[from:b.wEnd])
	dev := blockdevtest.NewFaultDevice(img)
	mid := (from + b.wEnd) / 2 / int64(b.bs) * int64(b.bs)
	dev.FailRead = blockdevtest.BadRange(mid, mid+3*int64(b.bs))
	p, err := OpenPartition(dev, int64(len(img)))
	require.NoError(t, err)
	var ms0, ms1 runtimeMem
	ms0.read()
	var found, lost uint64
	for pg, err := range p.Pages() {
		if err != nil {
			var le *LostError
			require.ErrorAs(t, err, &le)
			lost += le.Pages
			continue
		}
		require.Equal(t, b.want[pg.PFN][:16], rsMustDecompress(t, pg)[:16])
		found++
	}
	ms1.read()
	assert.Equal(t, uint64(i), found)
	assert.Equal(t, uint64(len(b.recs)-i), lost)
	assert.Less(t, ms1.mallocs-ms0.mallocs, uint64(1000), "allocations while scanning %d bytes", b.wEnd-from)
}

// TestResyncCandidateBudget: data crafted so that every 16th byte starts
// a plausible zlib record (which then fails to inflate) makes the reader
// give up resynchronising after a bounded number of candidates.
func TestResyncCandidateBudget(t *testing.T) {
	b := rsGetN(t, ArchX86_64, 2048)
	img := bytes.Clone(b.img)
	o := b.arch.ByteOrder()
	i := 30
	b.putRec(img, i, func(r *pageRecord) { r.size = 0 })
	from := b.recs[i].off + PageRecordSize
	var unit [PageRecordSize]byte
	unit[0], unit[1] = 0x78, 0x01
	o.PutUint32(unit[8:], PageRecordSize)
	o.PutUint32(unit[12:], PageCompressed)
	for off := from; off+PageRecordSize <= b.wEnd; off += PageRecordSize {
		copy(img[off:], unit[:])
	}
	require.Greater(t, (b.wEnd-from)/PageRecordSize, int64(resyncMaxCandidates), "the test needs more candidates than the budget")
	p, err := OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	begin := time.Now()
	var errs []error
	for _, err := range p.Pages() {
		if err != nil {
			errs = append(errs, err)
		}
	}
	require.Len(t, errs, 2)
	assert.Contains(t, errs[1].Error(), "gave up resynchronising")
	assert.Equal(t, uint64(len(b.recs)-i), p.Stats().Lost)
	t.Logf("gave up after %v", time.Since(begin))
}

func rsMustDecompress(t *testing.T, pg *Page) []byte {
	d, err := pg.Decompress(nil)
	require.NoError(t, err)
	return d
}

func TestResyncPlausible(t *testing.T) {
	tests := []struct {
		rec  pageRecord
		want bool
	}{
		{pageRecord{size: 4096}, true},
		{pageRecord{size: 4096, flags: PageMappingAnon}, true},
		{pageRecord{size: 4095}, false},
		{pageRecord{size: 100, flags: PageCompressed}, true},
		{pageRecord{size: 100, flags: PageCompressed | PageMappingAnon}, true},
		{pageRecord{size: 4096, flags: PageCompressed}, false},
		{pageRecord{size: 0, flags: PageCompressed}, false},
		{pageRecord{size: 100, flags: PageCompressed | 4}, false},
		{pageRecord{size: 4096, flags: 0x80000000}, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%+v", tc.rec), func(t *testing.T) {
			assert.Equal(t, tc.want, tc.rec.plausible(4096))
		})
	}
}

type runtimeMem struct{ mallocs uint64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.mallocs = ms.Mallocs
}

// rsFaultReader fails every read touching one of its ranges with EIO.
type rsFaultReader struct {
	r   io.ReaderAt
	bad [][2]int64
}

func (f *rsFaultReader) ReadAt(b []byte, off int64) (int, error) {
	for _, r := range f.bad {
		if off < r[1] && off+int64(len(b)) > r[0] {
			return 0, syscall.EIO
		}
	}
	return f.r.ReadAt(b, off)
}

// FuzzResync damages the record stream of small compressed dumps from the
// kernel-exact writer (byte writes, plausible-looking 32-bit values, zeroed
// ranges, unreadable blocks; status COMPLETED, SHORT_AREA or IN_PROGRESS)
// and checks the property resynchronisation must keep: a page whose
// pristine record the damage did not touch is either lost or yielded from
// exactly that record with exactly the machine's content, never another
// page's data; and Stats accounts for every page.
func FuzzResync(f *testing.F) {
	rdrLimitMinimize(f)
	// ops are 5-byte groups: kind, 24-bit offset into the data area, value.
	f.Add(uint8(0), []byte{3, 0x00, 0x40, 0x00, 0x00})
	f.Add(uint8(1), []byte{1, 0x00, 0x80, 0x00, 0x10})
	f.Add(uint8(2), []byte{2, 0x00, 0x20, 0x00, 0x00, 0, 0x00, 0x90, 0x00, 0x00})
	f.Add(uint8(4), []byte{3, 0x10, 0x30, 0x00, 0x01, 3, 0x00, 0x20, 0x01, 0x00})
	f.Add(uint8(3), []byte{0, 0x33, 0x10, 0x00, 0xff, 1, 0x00, 0x00, 0x01, 0x40})
	f.Fuzz(func(t *testing.T, sel uint8, ops []byte) {
		b := rsGetN(t, []Arch{ArchX86_64, ArchPPC64}[sel&1], 48)
		img := bytes.Clone(b.img)
		o := b.arch.ByteOrder()
		start := b.recs[0].off
		area := b.wEnd - start
		var touched [][2]int64
		fr := &rsFaultReader{r: bytes.NewReader(img)}
		for n := 0; len(ops) >= 5 && n < 12; n++ {
			kind, v := ops[0]%4, ops[4]
			off := start + int64(uint32(ops[1])|uint32(ops[2])<<8|uint32(ops[3])<<16)%area
			ops = ops[5:]
			switch kind {
			case 0: // one byte
				img[off] = v
				touched = append(touched, [2]int64{off, off + 1})
			case 1: // a zeroed range
				e := min(off+int64(v)*16+1, b.wEnd)
				clear(img[off:e])
				touched = append(touched, [2]int64{off, e})
			case 2: // an unreadable block
				a := off / int64(b.bs) * int64(b.bs)
				fr.bad = append(fr.bad, [2]int64{a, a + int64(b.bs)})
				touched = append(touched, [2]int64{a, a + int64(b.bs)})
			case 3: // a 32-bit value a record header could hold
				e := min(off+4, b.wEnd)
				var w [4]byte
				switch v % 4 {
				case 0:
					o.PutUint32(w[:], uint32(b.bs))
				case 1:
					o.PutUint32(w[:], PageCompressed)
				case 2:
					o.PutUint32(w[:], uint32(v)<<4)
				}
				copy(img[off:e], w[:])
				touched = append(touched, [2]int64{off, e})
			}
		}
		switch sel >> 1 % 4 {
		case 1:
			rsSetStatus(b, img, StatusShortArea|StatusCompressed)
		case 2:
			rsSetStatus(b, img, StatusInProgress|StatusCompressed)
		}
		p, err := OpenPartition(fr, int64(len(img)))
		require.NoError(t, err)
		idx := map[uint64]int{}
		for i, r := range b.recs {
			idx[r.pfn] = i
		}
		hit := func(r rsRec) bool {
			for _, x := range touched {
				if x[0] < r.end() && x[1] > r.off {
					return true
				}
			}
			return false
		}
		var found, lost uint64
		var dst []byte
		for pg, err := range p.Pages() {
			if err != nil {
				var pe *PageError
				var le *LostError
				require.ErrorAs(t, err, &pe)
				require.ErrorAs(t, err, &le)
				i, ok := idx[pe.PFN]
				require.True(t, ok, "%v", err)
				require.LessOrEqual(t, i+int(le.Pages), len(b.recs))
				lost += le.Pages
				continue
			}
			found++
			i, ok := idx[pg.PFN]
			require.True(t, ok)
			r := b.recs[i]
			if hit(r) {
				continue
			}
			require.Equal(t, r.off+PageRecordSize, pg.Off, "PFN %d (record %d) yielded from another record", pg.PFN, i)
			dst, err = pg.Decompress(dst)
			require.NoError(t, err)
			require.Equal(t, b.want[pg.PFN], dst, "PFN %d", pg.PFN)
		}
		st := p.Stats()
		require.Equal(t, found, st.Found)
		require.Equal(t, lost, st.Lost)
		require.Equal(t, uint64(len(b.recs)), st.Expected)
		require.Equal(t, st.Expected, st.Found+st.Lost, "%+v", st)
	})
}
