package diskdump

import (
	"errors"
	"fmt"
	"io"
	"iter"
)

// readBufSize is the size of the sequential reads of the data area.
const readBufSize = 1 << 20

// Partition is an open dump partition (doc/FORMAT.md §2): header, sub-header and
// bitmaps are read by OpenPartition and kept in memory; page data is read
// on demand by Pages with one fixed buffer. A Partition is not safe for
// concurrent use.
type Partition struct {
	r         io.ReaderAt
	size      int64
	hdr       *Header
	sub       *SubHeader
	geo       Geometry
	arch      Arch
	bs        int
	swap      bool
	devBlocks uint64 // whole blocks in the reader (size / B)

	ram      *Bitmap // bitmap 1, PFN-indexed, bits >= max_mapnr cleared
	dense    []byte  // bitmap 2 as on disk (two-bitmap dumps)
	dumped   *Bitmap // pages whose data should be in the data area: bitmap 2 in PFN order, or ram
	dumpable *Bitmap // DumpableBitmap: dumped limited to what may be present
	ramPages uint64
	want     uint64 // pages of dumped: records or blocks expected in the data area

	first       uint64 // first data block
	lookPast    bool   // the dump is not final: written_blocks is a hint, what is on the disk decides (see Pages)
	extraDense  uint64 // bits of the dense bitmap beyond the RAM pages (ignored)
	staticShort bool   // the written extent cannot hold all expected pages

	buf  []byte
	zbuf []byte      // resynchronisation: inflated candidate pages
	segs []resyncSeg // resynchronisation: runs of records found
	// candidates counts the record starts resynchronisation checked in
	// this run of Pages.
	candidates int
	page       Page
	stats      Stats
	ran        bool
}

// Stats counts the pages of the last iteration of Pages. Expected = Found +
// Lost when the iteration ran to its end.
type Stats struct {
	// Expected is the number of pages the header and bitmaps say are in
	// the data area, plus pages found written but not attributable to a
	// PFN (LostUnflushed).
	Expected uint64
	// Found is the number of pages yielded.
	Found uint64
	// Lost is the number of expected pages not yielded: the sum of LostBy.
	Lost uint64
	// LostBy counts lost pages per reason.
	LostBy map[LossReason]uint64
	// RAMPages is the number of RAM pages (set bits of bitmap 1).
	RAMPages uint64
	// Excluded is the number of RAM pages the kernel excluded or did not
	// reach (zero bits of a dumpable bitmap); 0 for one-bitmap dumps.
	Excluded uint64
	// StrayDenseBits counts set bits of the dense bitmap 2 beyond the
	// number of RAM pages: corruption, ignored.
	StrayDenseBits uint64
	// BeyondWritten is the number of pages yielded (counted in Found) whose
	// data lies at or beyond the header's written_blocks. Only a dump that
	// is not final (status INCOMPLETED or IN_PROGRESS) is read past
	// written_blocks: the kernel did not get to record how far it wrote, so
	// what is on the disk decides.
	BeyondWritten uint64
	// BeyondWhy says, when BeyondWritten is not 0, why the pages past
	// written_blocks could be recovered, in words for a warning.
	BeyondWhy string
}

// OpenPartition reads the dump header, sub-header and bitmaps of a dump
// partition of size bytes. It returns an error wrapping ErrNoDump if block 1
// is not a DISKDUMP header, and a *FormatError naming the field for headers
// and bitmaps that cannot be right or do not fit in size. Memory use is
// bounded by the bitmaps, which must fit in size.
func OpenPartition(r io.ReaderAt, size int64) (*Partition, error) {
	if size < 0 {
		size = 0
	}
	hdr, err := findHeader(r, size)
	if err != nil {
		return nil, err
	}
	bs := int(hdr.BlockSize)
	p := &Partition{r: r, size: size, hdr: hdr, bs: bs, arch: hdr.Arch(), devBlocks: uint64(size) / uint64(bs)}
	o := hdr.Layout.Order
	p.geo = Geometry{BlockSize: bs, SubHdrBlocks: uint64(hdr.SubHdrSize), MaxPFN: uint64(hdr.MaxMapnr),
		RAMBlocks: uint64(hdr.TotalRAMBlocks), RAMBitmapBlocks: BitmapBlocksFor(uint64(hdr.MaxMapnr), bs),
		BitmapBlocks: uint64(hdr.BitmapBlocks)}
	p.first = p.geo.FirstDataBlock()

	// Swap mode: block 0 is a swap header (doc/FORMAT.md §3.4). Test 3 compares with
	// the device size the kernel saw, which the header records; an image
	// of a swap partition may be longer or shorter than that.
	block0 := make([]byte, bs)
	if err := ReadFull(r, block0, 0); err == nil {
		p.swap = IsSwapHeader(block0, bs, o, uint64(hdr.DeviceBlocks)) || IsSwapHeader(block0, bs, o, p.devBlocks)
	}

	// written_blocks: at least the first data block once the bitmaps are
	// written (doc/FORMAT.md §4.5); never more than the device the kernel wrote to.
	wOff := int64(bs) + int64(hdr.Layout.FieldOffset("written_blocks"))
	if uint64(hdr.WrittenBlocks) < p.first {
		return nil, fieldErr(wOff, 1, "written_blocks", ErrTruncated,
			"written_blocks %d is below the first data block %d: the dump was interrupted before its bitmaps were written", hdr.WrittenBlocks, p.first)
	}
	if hdr.WrittenBlocks > hdr.DeviceBlocks {
		return nil, fieldErr(wOff, 1, "written_blocks", ErrCorrupt,
			"written_blocks %d exceeds device_blocks %d", hdr.WrittenBlocks, hdr.DeviceBlocks)
	}

	p.lookPast = p.interrupted()
	if err := p.readSubHeader(); err != nil {
		return nil, err
	}
	if err := p.readBitmaps(); err != nil {
		return nil, err
	}
	p.setExtent()
	p.stats = Stats{Expected: p.want, RAMPages: p.ramPages, StrayDenseBits: p.extraDense, LostBy: map[LossReason]uint64{}}
	if p.geo.TwoBitmaps() {
		p.stats.Excluded = p.ramPages - p.want
	}
	return p, nil
}

// readSubHeader reads and decodes the sub-header, blocks 2 .. 1+S
// (ParseHeader checked it fits in the device).
func (p *Partition) readSubHeader() error {
	bs := p.bs
	raw := make([]byte, int(p.geo.SubHdrBlocks)*bs)
	if err := ReadFull(p.r, raw, 2*int64(bs)); err != nil {
		return fieldErr(2*int64(bs), 2, "sub_header", readSentinel(err), "reading %d sub-header blocks", p.geo.SubHdrBlocks)
	}
	sub, err := DecodeSubHeader(p.arch, raw)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Off += 2 * int64(bs)
			fe.Blk = 2
		}
		return err
	}
	p.sub = sub
	return nil
}

// readBitmaps reads bitmap 1 and, for two-bitmap dumps, bitmap 2, and
// derives the dumped bitmap.
func (p *Partition) readBitmaps() error {
	bs := p.bs
	r := p.r
	// Bitmap 1, PFN-indexed.
	rb := p.geo.RAMBitmapBlock()
	bm := make([]byte, p.geo.RAMBitmapBlocks*uint64(bs))
	if err := ReadFull(r, bm, int64(rb)*int64(bs)); err != nil {
		return fieldErr(int64(rb)*int64(bs), int64(rb), "bitmap", readSentinel(err), "reading %d blocks of bitmap 1", p.geo.RAMBitmapBlocks)
	}
	p.ram = NewBitmap(bm)
	p.ram.Truncate(p.geo.MaxPFN) // bits >= max_mapnr are zero on a sane dump (doc/FORMAT.md §2)
	p.ramPages = p.ram.Count()

	if p.geo.TwoBitmaps() {
		db := p.geo.DumpBitmapBlock()
		p.dense = make([]byte, p.geo.RAMBitmapBlocks*uint64(bs))
		if err := ReadFull(r, p.dense, int64(db)*int64(bs)); err != nil {
			return fieldErr(int64(db)*int64(bs), int64(db), "bitmap", readSentinel(err), "reading %d blocks of bitmap 2", p.geo.RAMBitmapBlocks)
		}
		if p.lookPast {
			p.clearUnwrittenDense(db)
		}
		p.dumped, p.extraDense = DenseToPFN(p.ram, p.dense)
	} else {
		p.dumped = p.ram
	}
	return nil
}

// interrupted reports whether the header is not the kernel's last word on
// the dump (doc/FORMAT.md §4.4): status IN_PROGRESS, or INCOMPLETED from the
// first header writes. A strict (one-bitmap, raw) dump also ends INCOMPLETED
// when the device is smaller than total_blocks, but then with written_blocks
// past the first data block: that header is final.
func (p *Partition) interrupted() bool {
	switch p.hdr.Status.State() {
	case StatusInProgress:
		return true
	case StatusIncompleted:
		return p.geo.TwoBitmaps() || p.hdr.Status.Compressed() || uint64(p.hdr.WrittenBlocks) == p.first
	}
	return false
}

// clearUnwrittenDense zeroes the blocks of bitmap 2 (from block db) that
// still carry their own format signature. The kernel clears bitmap 2 before
// it sets written_blocks to the first data block, so on a dump that is not
// final such a block was never written: no page of it was dumped.
func (p *Partition) clearUnwrittenDense(db uint64) {
	o := p.hdr.Layout.Order
	for i := range p.geo.RAMBitmapBlocks {
		b := p.dense[i*uint64(p.bs) : (i+1)*uint64(p.bs)]
		if IsSignatureBlock(b, db+i, o) {
			clear(b)
		}
	}
}

// setExtent works out which dumped pages may be in the data area and
// whether the header alone shows pages missing.
func (p *Partition) setExtent() {
	hdr, bs, size := p.hdr, p.bs, p.size
	p.want = p.dumped.Count()
	p.dumpable = p.dumped
	switch {
	case hdr.Status.Compressed():
		// A record stream (with one bitmap only if the header is damaged:
		// the kernel always writes two when compressing; the records then
		// follow the RAM pages). Its extent is known only by parsing it.
		p.staticShort = uint64(size) < uint64(hdr.WrittenBlocks)*uint64(bs)
	case !p.geo.TwoBitmaps():
		// Full dump: page k is block first+k. The data extent is
		// written_blocks, or for a dump interrupted before its final header
		// write (status INCOMPLETED, written_blocks still at the first data
		// block in strict mode) the device, with the signature rule
		// (doc/FORMAT.md §9.4 step 8, §9.5).
		n := p.rawExtent()
		if n < p.want || p.devBlocks < p.first+n {
			p.staticShort = true
		}
		if n < p.want {
			d := &Bitmap{b: make([]byte, len(p.ram.b))}
			copy(d.b, p.ram.b)
			var k uint64
			for pfn := range p.ram.All() {
				if k == n {
					d.Truncate(pfn)
					break
				}
				k++
			}
			p.dumpable = d
		}
	default:
		n := p.rawExtent()
		p.staticShort = n < p.want || p.devBlocks < p.first+min(n, p.want)
	}
}

// rawExtent is the number of data blocks of an uncompressed data area that
// may hold pages, before the device-size limit: written_blocks, or for a
// dump that is not final at least the dumped pages that fit the device the
// kernel wrote to (read with the signature rule, see rawPages).
func (p *Partition) rawExtent() uint64 {
	w := uint64(p.hdr.WrittenBlocks) - p.first
	if !p.lookPast {
		return w
	}
	dev := uint64(p.hdr.DeviceBlocks)
	if dev < p.first {
		return w
	}
	return max(w, min(p.want, dev-p.first))
}

// findHeader reads block 1 for each possible block size, 4096 first, and
// parses the first DISKDUMP header whose block_size matches.
func findHeader(r io.ReaderAt, size int64) (*Header, error) {
	var firstErr error
	for bs := int64(4096); bs <= 65536; bs <<= 1 {
		if size < bs+8 {
			break
		}
		n := min(bs, size-bs)
		b := make([]byte, n)
		if err := ReadFull(r, b, bs); err != nil {
			return nil, fieldErr(bs, 1, "signature", readSentinel(err), "reading block 1")
		}
		if string(b[:8]) != DumpSignature {
			continue
		}
		h, err := ParseHeader(b, HeaderCheck{DeviceBlocks: uint64(size) / uint64(bs), BaseOff: bs, BaseBlk: 1})
		if err == nil && int64(h.BlockSize) == bs {
			return h, nil
		}
		if err == nil {
			// A header at 4096 whose block size is larger: block 1 of such a
			// partition would be at block_size; the loop tries it next.
			err = fieldErr(bs+int64(LayoutOf(h.Arch()).FieldOffset("block_size")), 1, "block_size", ErrCorrupt,
				"header found at offset %d but its block_size is %d", bs, h.BlockSize)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if size < 4096+8 {
		return nil, fieldErr(4096, 1, "signature", ErrNoDump, "device of %d bytes is too small to hold a dump header", size)
	}
	return nil, fieldErr(4096, 1, "signature", ErrNoDump, "block 1 does not start with %q", DumpSignature)
}

// Header returns the dump header.
func (p *Partition) Header() *Header { return p.hdr }

// SubHeader returns the architecture sub-header.
func (p *Partition) SubHeader() *SubHeader { return p.sub }

// Geometry returns the block layout the header describes.
func (p *Partition) Geometry() Geometry { return p.geo }

// Arch returns the architecture named by utsname.machine (ArchUnknown if
// the header's layout had to be probed).
func (p *Partition) Arch() Arch { return p.arch }

// BlockSize returns the block (and page) size B.
func (p *Partition) BlockSize() int { return p.bs }

// IsSwap reports whether block 0 is a swap header (doc/FORMAT.md §3.4): the dump was
// written to a swap partition, which must be invalidated with zeros.
func (p *Partition) IsSwap() bool { return p.swap }

// RAMBitmap returns bitmap 1, PFN-indexed (bits at or above max_mapnr are
// cleared). Callers must not modify it.
func (p *Partition) RAMBitmap() *Bitmap { return p.ram }

// DumpableBitmap returns a PFN-indexed upper bound of the pages whose data
// may be on the partition: bitmap 2 converted to PFN order for two-bitmap
// dumps, else the RAM pages within the written extent. Pages yields a
// subset of it. Callers must not modify it.
func (p *Partition) DumpableBitmap() *Bitmap { return p.dumpable }

// Incomplete reports whether the dump is partial or incomplete: its status
// is not COMPLETED, pages were lost (known from the header, or found by the
// last run of Pages), or it has two bitmaps and excludes RAM pages.
func (p *Partition) Incomplete() bool {
	return p.PagesMissing() || (p.geo.TwoBitmaps() && p.want < p.ramPages)
}

// PagesMissing reports whether pages the dump was meant to hold are
// missing: its status is not COMPLETED, the device was too small, or pages
// were lost (known from the header, or found by the last run of Pages).
// Unlike Incomplete, it is false for a finished partial dump: the pages
// its dump_level left out were never meant to be there.
func (p *Partition) PagesMissing() bool {
	return !p.hdr.Status.Complete() || p.staticShort || p.stats.Lost > 0
}

// Stats returns the counts of the last run of Pages (Expected, RAMPages and
// Excluded are known before it).
func (p *Partition) Stats() Stats {
	s := p.stats
	s.LostBy = make(map[LossReason]uint64, len(p.stats.LostBy))
	for k, v := range p.stats.LostBy {
		s.LostBy[k] = v
	}
	return s
}

// Pages yields the recoverable pages in PFN order (doc/FORMAT.md §9.5). Lost pages
// are yielded as *PageError wrapping a *LostError; runs of pages lost for
// one reason give one error at the first of them (PFN NoPFN when the pages
// cannot be attributed). Iteration goes on after a corrupt record while its
// length is plausible. When a record header is damaged or unreadable, so
// that the position of the next record is unknown, the record stream of a
// final dump (COMPLETED or SHORT_AREA) is resynchronised: the records from
// the next record start found to the end of the stream are the last pages
// of the dump, the pages in between are lost (LostDesync). When that is
// not possible (the dump is not final, the stream end or the counts do not
// check out), one last error covers the rest, saying why, and the
// iteration ends.
//
// A dump that is not final (IN_PROGRESS, or INCOMPLETED before the kernel's
// last header write) is read past the header's written_blocks, which only
// says how far the kernel had got when it last rewrote the header: raw data
// up to the first block that still carries its own format signature,
// records while each one validates (a plausible header, data that inflates
// to exactly one page or a raw page, no block still carrying its own
// signature). Pages are attributed only as far as the bitmaps on the disk
// account for them; Stats.BeyondWritten counts those found past
// written_blocks.
//
// The *Page and its Data are reused: valid until the next step. Stats is
// updated as the iteration goes.
func (p *Partition) Pages() iter.Seq2[*Page, error] {
	return func(yield func(*Page, error) bool) {
		p.stats.Found, p.stats.Lost = 0, 0
		p.stats.BeyondWritten, p.stats.BeyondWhy = 0, ""
		p.stats.Expected = p.want
		clear(p.stats.LostBy)
		p.page = Page{blockSize: p.bs}
		if p.hdr.Status.Compressed() {
			p.compressedPages(yield)
		} else {
			p.rawPages(yield)
		}
	}
}

// foundBeyond counts a page yielded from past the header's written_blocks;
// how says how such pages are told from unwritten blocks.
func (p *Partition) foundBeyond(how string) {
	p.stats.BeyondWritten++
	if p.stats.BeyondWhy == "" {
		p.stats.BeyondWhy = fmt.Sprintf(
			"status %v: the dump was interrupted after its header last recorded written_blocks %d; "+
				"the data area was read past it (%s) and attributed by the bitmaps as they are on the disk",
			p.hdr.Status, p.hdr.WrittenBlocks, how)
	}
}

func (p *Partition) lose(r LossReason, n uint64) {
	p.stats.Lost += n
	p.stats.LostBy[r] += n
}

func (p *Partition) lostErr(pfn uint64, off int64, r LossReason, n uint64, cause error) error {
	p.lose(r, n)
	return &PageError{PFN: pfn, Off: off, Err: &LostError{Reason: r, Pages: n, Err: cause}}
}

// buffer returns the read buffer: readBufSize bytes, or less (whole
// blocks, at least one) when the data area is smaller.
func (p *Partition) buffer(need int64) []byte {
	bs := int64(p.bs)
	n := min(int64(readBufSize), max((need+bs-1)/bs*bs, bs))
	if int64(len(p.buf)) < n {
		p.buf = make([]byte, n)
	}
	return p.buf
}
