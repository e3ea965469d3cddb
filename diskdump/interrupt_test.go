package diskdump_test

// Interrupted dumps (issue 15): the kernel-exact writer of diskdump/kernel
// dumps a small synthetic machine and the power is cut after every one of
// its block writes in turn. Whatever the header last said, the reader must
// return exactly the pages whose data is wholly on the disk and whose PFN
// follows from the bitmaps as they are on the disk, byte for byte, and
// nothing else.

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
)

// sweepCase is one machine and one way of dumping it.
type sweepCase struct {
	arch      diskdump.Arch
	memBytes  uint64
	mix       kernel.PageMix
	seed      uint64
	compress  bool
	dumpLevel int
}

func (c sweepCase) String() string {
	mode := "raw"
	if c.compress {
		mode = "compressed"
	}
	return fmt.Sprintf("%v/%dKiB/%s/level%d/seed%d", c.arch, c.memBytes>>10, mode, c.dumpLevel, c.seed)
}

// sweepTotals sums up a sweep for its log line.
type sweepTotals struct {
	cuts        int    // power cuts tried
	pages       uint64 // pages yielded over all cuts
	beyond      uint64 // of them, from past the header's written_blocks
	cutsBeyond  int    // cuts where some were
	overKernel  int    // cuts where the reader found more than kernel.Result.Recoverable
	underKernel int    // cuts where it found less (must stay 0)
}

// sweepMachine is a dump of c's machine onto a freshly formatted device.
type sweepMachine struct {
	c         sweepCase
	src       *kernel.SyntheticMachine
	devBlocks uint64
	formatted []byte
	want      map[uint64][]byte // the machine's pages, by PFN
}

func newSweepMachine(t *testing.T, c sweepCase) *sweepMachine {
	src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: c.arch, MemBytes: c.memBytes, Seed: c.seed,
		Mix: c.mix, NoRandomBad: true})
	bs := c.arch.PageSize()
	devBlocks := src.MaxPFN() + src.MaxPFN()/4 + 16
	img := make([]byte, devBlocks*uint64(bs))
	for blk := range devBlocks {
		diskdump.FillSignature(img[blk*uint64(bs):(blk+1)*uint64(bs)], blk, c.arch.ByteOrder())
	}
	m := &sweepMachine{c: c, src: src, devBlocks: devBlocks, formatted: img, want: map[uint64][]byte{}}
	// The sweep's device is just large enough for the whole dump: every
	// cut copies and writes it.
	_, full := m.dump(t, 0)
	require.Equal(t, kernel.OutcomeCompleted, full.Outcome)
	m.devBlocks = min(devBlocks, full.WrittenBlocks+8)
	m.formatted = img[:m.devBlocks*uint64(bs)]
	for pfn := range src.MaxPFN() {
		if src.IsRAM(pfn) {
			page := make([]byte, bs)
			require.NoError(t, src.ReadPage(pfn, page))
			m.want[pfn] = page
		}
	}
	return m
}

// dump runs the kernel-exact writer, cut after cut block writes (0: none).
func (m *sweepMachine) dump(t *testing.T, cut int64) ([]byte, *kernel.Result) {
	cfg := kernel.DefaultConfig(m.c.arch)
	cfg.Compress, cfg.DumpLevel, cfg.StopAfterBlocks = m.c.compress, m.c.dumpLevel, cut
	cfg.Time = time.Unix(1246291200, 0)
	f := memfile.New(bytes.Clone(m.formatted))
	res, err := kernel.WriteDump(f, m.devBlocks, m.src, cfg)
	require.NoError(t, err)
	return f.Bytes(), res
}

// locatable is the set of pages a reader must recover from img: those
// whose data the writer put wholly on the disk (Result.Saved) and whose
// PFN follows from the bitmaps on the disk. The k-th page of the data area
// belongs to the k-th RAM page whose dense bitmap-2 bit is set, bit k of
// bitmap 2 being the k-th RAM page (doc/FORMAT.md §2); one-bitmap dumps
// hold every RAM page.
func (m *sweepMachine) locatable(img []byte, res *kernel.Result) map[uint64]bool {
	out := map[uint64]bool{}
	g := res.Geometry
	bs := uint64(g.BlockSize)
	var dense []byte
	if g.TwoBitmaps() {
		dense = img[g.DumpBitmapBlock()*bs:][:g.RAMBitmapBlocks*bs]
	}
	var k uint64 // RAM ordinal
	for pfn := range m.src.MaxPFN() {
		if !m.src.IsRAM(pfn) {
			continue
		}
		dumped := dense == nil || dense[k/8]&(1<<(k%8)) != 0
		k++
		if dumped && res.Saved.Test(pfn) {
			out[pfn] = true
		}
	}
	return out
}

// check reads img and compares what it yields with the locatable pages.
func (m *sweepMachine) check(t *testing.T, img []byte, res *kernel.Result, tot *sweepTotals) {
	want := m.locatable(img, res)
	p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		// No header yet, or written_blocks still short of the bitmaps: no
		// data can have been written.
		require.Empty(t, want, "OpenPartition: %v", err)
		return
	}
	got := map[uint64]bool{}
	var dst []byte
	for pg, err := range p.Pages() {
		if err != nil {
			var le *diskdump.LostError
			require.ErrorAs(t, err, &le)
			continue
		}
		require.False(t, got[pg.PFN], "PFN %d twice", pg.PFN)
		require.True(t, want[pg.PFN], "PFN %d yielded but not written and locatable", pg.PFN)
		dst, err = pg.Decompress(dst)
		require.NoError(t, err, "PFN %d", pg.PFN)
		require.True(t, bytes.Equal(m.want[pg.PFN], dst), "PFN %d: content differs", pg.PFN)
		got[pg.PFN] = true
	}
	require.Len(t, got, len(want), "pages yielded / written and locatable")
	st := p.Stats()
	require.Equal(t, uint64(len(got)), st.Found)
	require.Equal(t, st.Expected, st.Found+st.Lost, "%+v", st)
	require.LessOrEqual(t, st.BeyondWritten, st.Found)
	require.Equal(t, st.BeyondWritten > 0, st.BeyondWhy != "", "%+v", st)
	require.True(t, p.Incomplete() || res.Outcome == kernel.OutcomeCompleted)
	tot.pages += st.Found
	tot.beyond += st.BeyondWritten
	if st.BeyondWritten > 0 {
		tot.cutsBeyond++
	}
	switch n := res.Recoverable.Count(); {
	case st.Found > n:
		tot.overKernel++
	case st.Found < n:
		tot.underKernel++
	}
}

// sweep cuts the power after every block write of c's dump.
func sweep(t *testing.T, c sweepCase, tot *sweepTotals) {
	m := newSweepMachine(t, c)
	_, full := m.dump(t, 0)
	require.Equal(t, kernel.OutcomeCompleted, full.Outcome)
	for cut := int64(1); cut <= full.BlocksWritten; cut++ {
		img, res := m.dump(t, cut)
		tot.cuts++
		m.check(t, img, res, tot)
		if t.Failed() {
			t.Fatalf("cut after %d of %d block writes (header %v, written_blocks %d)", cut, full.BlocksWritten, res.Status, res.WrittenBlocks)
		}
	}
}

// sweepCases is every mode and dump level the issue asks for on one
// machine: raw (one bitmap at level 0, else two) and compressed, at dump
// levels 0, 1, 19 and 31.
func sweepCases(a diskdump.Arch, memBytes, seed uint64, mix kernel.PageMix) []sweepCase {
	var cs []sweepCase
	for _, compress := range []bool{false, true} {
		for _, level := range []int{0, 1, 19, 31} {
			cs = append(cs, sweepCase{arch: a, memBytes: memBytes, mix: mix, seed: seed, compress: compress, dumpLevel: level})
		}
	}
	return cs
}

var sweepMix = kernel.PageMix{Zero: 30, Sparse: 20, Text: 20, Pattern: 10, Random: 20}

// TestInterruptedDumpSweep is the CI sweep: a 768 KiB machine (160 RAM
// pages below the legacy hole), little- and big-endian.
func TestInterruptedDumpSweep(t *testing.T) {
	var cs []sweepCase
	cs = append(cs, sweepCases(diskdump.ArchX86_64, 768<<10, 7, sweepMix)...)
	for _, c := range sweepCases(diskdump.ArchPPC64, 768<<10, 8, sweepMix) {
		if c.dumpLevel == 0 || c.dumpLevel == 31 {
			cs = append(cs, c)
		}
	}
	runSweep(t, cs)
}

// TestInterruptedDumpSweepLong (DUMPKIT_LONG_SWEEP=1) sweeps every
// architecture on a larger machine, and a machine of more than 32768 RAM
// pages, mostly zero, whose bitmap 2 spans two blocks: its first block is
// flushed during the pass and followed by an IN_PROGRESS header.
func TestInterruptedDumpSweepLong(t *testing.T) {
	if os.Getenv("DUMPKIT_LONG_SWEEP") == "" {
		t.Skip("set DUMPKIT_LONG_SWEEP=1 for the long sweep")
	}
	var cs []sweepCase
	for i, a := range diskdump.Arches {
		cs = append(cs, sweepCases(a, 4<<20, 100+uint64(i), sweepMix)...)
	}
	sparse := kernel.PageMix{Zero: 97, Sparse: 1, Text: 1, Random: 1}
	for _, c := range sweepCases(diskdump.ArchX86_64, 36000*4096, 11, sparse) {
		if c.dumpLevel == 19 || c.dumpLevel == 31 || (c.compress && c.dumpLevel == 0) {
			cs = append(cs, c)
		}
	}
	runSweep(t, cs)
}

func runSweep(t *testing.T, cs []sweepCase) {
	var all sweepTotals
	ran := 0
	start := time.Now()
	for _, c := range cs {
		t.Run(c.String(), func(t *testing.T) {
			ran++
			var tot sweepTotals
			sweep(t, c, &tot)
			t.Logf("%d cuts, %d pages yielded, %d of them past written_blocks in %d cuts; kernel.Result.Recoverable smaller in %d cuts",
				tot.cuts, tot.pages, tot.beyond, tot.cutsBeyond, tot.overKernel)
			assert.Zero(t, tot.underKernel, "cuts where the reader found less than kernel.Result.Recoverable")
			all.cuts += tot.cuts
			all.pages += tot.pages
			all.beyond += tot.beyond
			all.cutsBeyond += tot.cutsBeyond
			all.overKernel += tot.overKernel
		})
	}
	t.Logf("sweep: %d cases, %d cuts, %d pages yielded (%d past written_blocks, in %d cuts), %v",
		ran, all.cuts, all.pages, all.beyond, all.cutsBeyond, time.Since(start).Round(time.Millisecond))
}

// fuzzBase is a complete dump of a small machine and where each page's
// data is in it.
type fuzzBase struct {
	m      *sweepMachine
	img    []byte
	geo    diskdump.Geometry
	writ   uint64            // written_blocks of the complete dump
	off    map[uint64]int64  // PFN -> offset of its data (record data for compressed dumps)
	length map[uint64]int64  // PFN -> bytes of data
	order  []uint64          // dumped PFNs in data-area order
	ramOrd map[uint64]uint64 // PFN -> RAM ordinal (dense bit index)
}

var fuzzBases struct {
	sync.Mutex
	m map[int]*fuzzBase
}

// fuzzBaseCases: compressed levels 0 and 19, raw level 19 (two bitmaps)
// and level 0 (one bitmap), on the CI sweep's machine.
var fuzzBaseCases = []sweepCase{
	{arch: diskdump.ArchX86_64, memBytes: 768 << 10, mix: sweepMix, seed: 7, compress: true},
	{arch: diskdump.ArchX86_64, memBytes: 768 << 10, mix: sweepMix, seed: 7, compress: true, dumpLevel: 19},
	{arch: diskdump.ArchPPC64, memBytes: 768 << 10, mix: sweepMix, seed: 8, dumpLevel: 19},
	{arch: diskdump.ArchX86_64, memBytes: 768 << 10, mix: sweepMix, seed: 7},
}

func getFuzzBase(t *testing.T, i int) *fuzzBase {
	fuzzBases.Lock()
	defer fuzzBases.Unlock()
	if b := fuzzBases.m[i]; b != nil {
		return b
	}
	m := newSweepMachine(t, fuzzBaseCases[i])
	img, res := m.dump(t, 0)
	require.Equal(t, kernel.OutcomeCompleted, res.Outcome)
	b := &fuzzBase{m: m, img: img, geo: res.Geometry, writ: res.WrittenBlocks,
		off: map[uint64]int64{}, length: map[uint64]int64{}, ramOrd: map[uint64]uint64{}}
	var k uint64
	for pfn := range m.src.MaxPFN() {
		if m.src.IsRAM(pfn) {
			b.ramOrd[pfn] = k
			k++
		}
	}
	// The complete dump, read by the rules for final dumps, is the
	// reference; its pages are checked against the machine.
	p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	for pg, err := range p.Pages() {
		require.NoError(t, err)
		page, err := pg.Decompress(nil)
		require.NoError(t, err)
		require.Equal(t, m.want[pg.PFN], page)
		b.off[pg.PFN], b.length[pg.PFN] = pg.Off, int64(len(pg.Data))
		b.order = append(b.order, pg.PFN)
	}
	require.Equal(t, res.Saved.Count(), uint64(len(b.order)))
	if fuzzBases.m == nil {
		fuzzBases.m = map[int]*fuzzBase{}
	}
	fuzzBases.m[i] = b
	return b
}

// FuzzInterruptedDump cuts a complete dump of the kernel-exact writer
// at a block (every block from there on keeps its format signature, as on
// a freshly formatted device), rewinds the header to a non-final status and
// a written_blocks at or before the cut, clears the dense bitmap 2 from
// some RAM ordinal on (a bitmap block flushed in part, or not again since
// it was cleared), then damages what lies past the cut: bytes, zeroed
// ranges, values a record header could hold, blocks replaced by another
// block's signature (stale data) or by a written block (record-like data),
// a bitmap-2 block left with its own signature. What the reader yields must
// keep to the on-disk bitmaps, never come from a block that still carries
// its own signature, and a page whose data lies before the cut must come
// from exactly its own record with exactly the machine's content: never a
// page under a wrong PFN.
func FuzzInterruptedDump(f *testing.F) {
	f.Add(uint8(0), uint16(9000), uint16(0), uint16(0xffff), []byte{})
	f.Add(uint8(1), uint16(65535), uint16(0), uint16(0xffff), []byte{})
	f.Add(uint8(2), uint16(30000), uint16(7), uint16(100), []byte{0, 0, 0, 0, 7})
	f.Add(uint8(3), uint16(20000), uint16(0), uint16(0xffff), []byte{3, 0, 0x10, 0, 1})
	f.Add(uint8(4), uint16(50000), uint16(3), uint16(90), []byte{2, 0x10, 0, 0, 0, 4, 0x20, 0x20, 0, 1})
	f.Add(uint8(5), uint16(65535), uint16(1), uint16(0xffff), []byte{5, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, sel uint8, cutFrac, hdrW, keepBits uint16, ops []byte) {
		b := getFuzzBase(t, int(sel)%len(fuzzBaseCases))
		img := bytes.Clone(b.img)
		bs := int64(b.geo.BlockSize)
		o := b.m.c.arch.ByteOrder()
		first := b.geo.FirstDataBlock()
		cut := first + uint64(cutFrac)*(b.writ-first+1)/65536 // first unwritten block
		copy(img[cut*uint64(bs):], b.m.formatted[cut*uint64(bs):])
		// The header: non-final, written_blocks at or before the cut.
		hdr := bs
		l := diskdump.LayoutOf(b.m.c.arch)
		st := diskdump.StatusIncompleted
		if sel&0x10 != 0 {
			st = diskdump.StatusInProgress
		}
		if b.m.c.compress {
			st |= diskdump.StatusCompressed
		}
		o.PutUint32(img[hdr+int64(l.FieldOffset("status")):], uint32(st))
		o.PutUint32(img[hdr+int64(l.FieldOffset("written_blocks")):], uint32(first+uint64(hdrW)%(cut-first+1)))
		// Bitmap 2 on the disk: bits of RAM ordinals >= keep are zero.
		var keep uint64
		if b.geo.TwoBitmaps() {
			keep = uint64(keepBits) * uint64(len(b.ramOrd)+1) / 65536
			if keepBits == 0xffff {
				keep = uint64(len(b.ramOrd))
			}
			dense := diskdump.NewBitmap(img[b.geo.DumpBitmapBlock()*uint64(bs):][:b.geo.RAMBitmapBlocks*uint64(bs)])
			for k := keep; k < dense.Len(); k++ {
				dense.Clear(k)
			}
		}
		denseSig := fuzzDamage(img, b, cut, ops)
		if denseSig {
			keep = 0
		}

		p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
		require.NoError(t, err)
		var last uint64
		var found, lost uint64
		var dst []byte
		for pg, err := range p.Pages() {
			if err != nil {
				var le *diskdump.LostError
				require.ErrorAs(t, err, &le)
				lost += le.Pages
				continue
			}
			found++
			require.True(t, found == 1 || pg.PFN > last, "PFN order")
			last = pg.PFN
			_, dumped := b.off[pg.PFN]
			require.True(t, dumped && (!b.geo.TwoBitmaps() || b.ramOrd[pg.PFN] < keep),
				"PFN %d yielded without its bit in the bitmaps on the disk", pg.PFN)
			start, end := pg.Off, pg.Off+int64(len(pg.Data))
			if b.m.c.compress {
				start -= diskdump.PageRecordSize
			}
			for blk := start / bs; blk <= (end-1)/bs; blk++ {
				require.False(t, diskdump.IsSignatureBlock(img[blk*bs:(blk+1)*bs], uint64(blk), o),
					"PFN %d yielded from block %d, which still carries its format signature", pg.PFN, blk)
			}
			if end <= int64(cut)*bs {
				require.Equal(t, b.off[pg.PFN], pg.Off, "PFN %d yielded from another page's data", pg.PFN)
				dst, err = pg.Decompress(dst)
				require.NoError(t, err)
				require.True(t, bytes.Equal(b.m.want[pg.PFN], dst), "PFN %d: content", pg.PFN)
			}
		}
		s := p.Stats()
		require.Equal(t, found, s.Found)
		require.Equal(t, lost, s.Lost)
		require.Equal(t, s.Expected, s.Found+s.Lost, "%+v", s)
		require.LessOrEqual(t, s.BeyondWritten, s.Found)
	})
}

// fuzzDamage applies ops (5-byte groups: kind, 24-bit offset, value) to img
// past the block cut. It reports whether a bitmap-2 block was given back
// its own format signature.
func fuzzDamage(img []byte, b *fuzzBase, cut uint64, ops []byte) (denseSig bool) {
	bs := int64(b.geo.BlockSize)
	o := b.m.c.arch.ByteOrder()
	start := int64(cut) * bs
	span := int64(len(img)) - start
	if span <= 0 {
		return false
	}
	for n := 0; len(ops) >= 5 && n < 16; n++ {
		kind, v := ops[0]%6, ops[4]
		off := start + int64(uint32(ops[1])|uint32(ops[2])<<8|uint32(ops[3])<<16)%span
		ops = ops[5:]
		blk := off / bs
		switch kind {
		case 0: // one byte
			img[off] = v
		case 1: // a zeroed range
			clear(img[off:min(off+int64(v)*16+1, int64(len(img)))])
		case 2: // a 32-bit value a record header could hold
			var w [4]byte
			switch v % 4 {
			case 0:
				o.PutUint32(w[:], uint32(bs))
			case 1:
				o.PutUint32(w[:], diskdump.PageCompressed)
			case 2:
				o.PutUint32(w[:], uint32(v)<<4)
			}
			copy(img[off:min(off+4, int64(len(img)))], w[:])
		case 3: // stale data: another block's signature
			diskdump.FillSignature(img[blk*bs:(blk+1)*bs], uint64(blk)+1+uint64(v), o)
		case 4: // record-like data: a block of the complete dump
			src := int64(b.geo.FirstDataBlock()) + int64(v)%int64(b.writ-b.geo.FirstDataBlock())
			copy(img[blk*bs:(blk+1)*bs], b.img[src*bs:(src+1)*bs])
		case 5: // a bitmap-2 block never cleared
			if b.geo.TwoBitmaps() {
				db := b.geo.DumpBitmapBlock() + uint64(v)%b.geo.RAMBitmapBlocks
				diskdump.FillSignature(img[int64(db)*bs:int64(db+1)*bs], db, o)
				denseSig = true
			}
		}
	}
	return denseSig
}
