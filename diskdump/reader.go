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
	heuristic   bool   // strict dump interrupted before its final header: signature rule (doc/FORMAT.md §9.4 step 8)
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

	// Sub-header, blocks 2 .. 1+S (ParseHeader checked it fits in size).
	raw := make([]byte, int(p.geo.SubHdrBlocks)*bs)
	if err := ReadFull(r, raw, 2*int64(bs)); err != nil {
		return nil, fieldErr(2*int64(bs), 2, "sub_header", readSentinel(err), "reading %d sub-header blocks", p.geo.SubHdrBlocks)
	}
	if p.sub, err = DecodeSubHeader(p.arch, raw); err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Off += 2 * int64(bs)
			fe.Blk = 2
		}
		return nil, err
	}

	// Bitmap 1, PFN-indexed.
	rb := p.geo.RAMBitmapBlock()
	bm := make([]byte, p.geo.RAMBitmapBlocks*uint64(bs))
	if err := ReadFull(r, bm, int64(rb)*int64(bs)); err != nil {
		return nil, fieldErr(int64(rb)*int64(bs), int64(rb), "bitmap", readSentinel(err), "reading %d blocks of bitmap 1", p.geo.RAMBitmapBlocks)
	}
	p.ram = NewBitmap(bm)
	p.ram.Truncate(p.geo.MaxPFN) // bits >= max_mapnr are zero on a sane dump (doc/FORMAT.md §2)
	p.ramPages = p.ram.Count()

	if p.geo.TwoBitmaps() {
		db := p.geo.DumpBitmapBlock()
		p.dense = make([]byte, p.geo.RAMBitmapBlocks*uint64(bs))
		if err := ReadFull(r, p.dense, int64(db)*int64(bs)); err != nil {
			return nil, fieldErr(int64(db)*int64(bs), int64(db), "bitmap", readSentinel(err), "reading %d blocks of bitmap 2", p.geo.RAMBitmapBlocks)
		}
		p.dumped, p.extraDense = DenseToPFN(p.ram, p.dense)
	} else {
		p.dumped = p.ram
	}
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
		// written_blocks, or for a strict dump interrupted before its final
		// header write (status INCOMPLETED, written_blocks still at the
		// first data block) the device, with the signature rule (doc/FORMAT.md §9.4
		// step 8, §9.5).
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
	p.stats = Stats{Expected: p.want, RAMPages: p.ramPages, StrayDenseBits: p.extraDense, LostBy: map[LossReason]uint64{}}
	if p.geo.TwoBitmaps() {
		p.stats.Excluded = p.ramPages - p.want
	}
	return p, nil
}

// rawExtent is the number of data blocks of an uncompressed data area that
// may hold pages, before the device-size limit.
func (p *Partition) rawExtent() uint64 {
	w := uint64(p.hdr.WrittenBlocks) - p.first
	if w == 0 && !p.geo.TwoBitmaps() && p.hdr.Status.State() == StatusIncompleted {
		p.heuristic = true
		dev := uint64(p.hdr.DeviceBlocks)
		if dev < p.first {
			return 0
		}
		return min(p.want, dev-p.first)
	}
	return w
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

// ReadFull reads exactly len(b) bytes at off. A ReaderAt may return io.EOF
// with a full read, which is success; a short read is io.ErrUnexpectedEOF,
// and other errors are returned as they are.
func ReadFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readSentinel maps a short read to ErrTruncated and keeps other errors.
func readSentinel(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ErrTruncated
	}
	return err
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
	return !p.hdr.Status.Complete() || p.staticShort || p.stats.Lost > 0 ||
		(p.geo.TwoBitmaps() && p.want < p.ramPages)
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
// iteration ends. The *Page and its Data are reused: valid until the
// next step. Stats is updated as the iteration goes.
func (p *Partition) Pages() iter.Seq2[*Page, error] {
	return func(yield func(*Page, error) bool) {
		p.stats.Found, p.stats.Lost = 0, 0
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

// rawPages walks an uncompressed data area: page k is block first+k, for
// the k-th PFN of the dumped bitmap.
func (p *Partition) rawPages(yield func(*Page, error) bool) {
	bs := uint64(p.bs)
	o := p.hdr.Layout.Order
	ext := p.rawExtent() // blocks that may hold pages
	n := min(ext, p.want)
	avail := n // pages whose block lies within the device
	if p.devBlocks < p.first+n {
		avail = 0
		if p.devBlocks > p.first {
			avail = p.devBlocks - p.first
		}
	}
	readEnd := avail // pages [0, readEnd) are read; lowered by the signature rule
	buf := p.buffer(int64(avail * bs))
	bufBlocks := uint64(len(buf)) / bs
	var bufK, bufN uint64 // the buffer holds pages [bufK, bufK+bufN)
	var chunkErr error    // read error of the buffered chunk: read its blocks one by one
	var k, skipUntil uint64
	for pfn := range p.dumped.All() {
		if k < skipUntil {
			k++
			continue
		}
		off := int64(p.first+k) * int64(bs)
		var data []byte
		if k < readEnd {
			if k >= bufK+bufN {
				bufK, bufN = k, min(bufBlocks, avail-k)
				chunkErr = ReadFull(p.r, buf[:bufN*bs], int64(p.first+bufK)*int64(bs))
			}
			data = buf[(k-bufK)*bs : (k-bufK+1)*bs]
			if chunkErr != nil {
				if err := ReadFull(p.r, data, off); err != nil {
					k++
					if !yield(nil, p.lostErr(pfn, off, LostIOError, 1, err)) {
						return
					}
					continue
				}
			}
			// Strict dump interrupted before its final header (doc/FORMAT.md §9.4 step
			// 8) [REC]: a block that still carries its own signature was
			// never written. The kernel writes the data area in order, so
			// nothing after it belongs to this dump either: later blocks
			// hold signatures or stale data of an earlier dump.
			if p.heuristic && IsSignatureBlock(data, p.first+k, o) {
				readEnd = k
			}
		}
		if k >= readEnd {
			var r LossReason
			var end uint64
			var cause error
			switch {
			case k < avail:
				r, end = LostNeverWritten, avail
			case k < n:
				r, end, cause = LostTruncated, n, ErrTruncated
			default:
				r, end = LostNotWritten, p.want
			}
			skipUntil = end
			k++
			if !yield(nil, p.lostErr(pfn, off, r, end-(k-1), cause)) {
				return
			}
			continue
		}
		k++
		pg := &p.page
		pg.PFN, pg.Off, pg.Data = pfn, off, data
		p.stats.Found++
		if !yield(pg, nil) {
			return
		}
	}
	if ext > p.want {
		// Written blocks beyond the pages the bitmaps account for: pages of
		// an interrupted dump written after the last bitmap-2 flush (their
		// bits are still zero), or garbage. Their PFNs are unknown.
		extra := ext - p.want
		in := uint64(0)
		if p.devBlocks > p.first+p.want {
			in = min(extra, p.devBlocks-p.first-p.want)
		}
		p.stats.Expected += extra
		if in > 0 && !yield(nil, p.lostErr(NoPFN, int64(p.first+p.want)*int64(bs), LostUnflushed, in, nil)) {
			return
		}
		if extra > in {
			yield(nil, p.lostErr(NoPFN, int64(p.first+p.want+in)*int64(bs), LostTruncated, extra-in, ErrTruncated))
		}
	}
}

// recordStream is a window of the compressed data area in the read
// buffer: bytes [start, end) of the device are in buf[:end-start].
type recordStream struct {
	r          io.ReaderAt
	buf        []byte
	bs         int64
	start, end int64
	limit      int64 // never read at or beyond this offset
	keep       int64 // if >= 0, ensure keeps the bytes from keep on (resync look-ahead)
}

// ensure makes bytes [pos, pos+n) available; pos+n must not exceed limit.
// The window only moves forward: data before pos (before keep while a
// resync candidate is checked) is dropped; asking for dropped data reads
// it again.
func (s *recordStream) ensure(pos, n int64) error {
	if pos >= s.start && pos+n <= s.end {
		return nil
	}
	from := pos
	if s.keep >= 0 && s.keep < pos && pos+n-s.keep <= int64(len(s.buf)) {
		from = s.keep
	}
	if from >= s.start && from < s.end {
		copy(s.buf, s.buf[from-s.start:s.end-s.start])
		s.start = from
	} else {
		s.start, s.end = from, from
	}
	// Fill the buffer up to a block boundary, so that reads stay aligned.
	to := (s.start + int64(len(s.buf))) / s.bs * s.bs
	if to < pos+n {
		to = s.start + int64(len(s.buf))
	}
	to = min(to, s.limit)
	if err := ReadFull(s.r, s.buf[s.end-s.start:to-s.start], s.end); err == nil {
		s.end = to
		return nil
	}
	// Something in the chunk is unreadable (a bad sector): read only the
	// blocks needed, one by one, so that the damage costs as little of
	// the stream as possible. On failure s.end is in the bad block.
	need := min((pos+n+s.bs-1)/s.bs*s.bs, s.limit)
	for off := s.end; off < need; {
		next := min((off/s.bs+1)*s.bs, need)
		if err := ReadFull(s.r, s.buf[off-s.start:next-s.start], off); err != nil {
			s.end = off
			return err
		}
		off = next
		s.end = off
	}
	return nil
}

func (s *recordStream) bytes(pos, n int64) []byte { return s.buf[pos-s.start : pos+n-s.start] }

// compressedPages parses the record stream of a compressed data area (spec
// doc/FORMAT.md §6.3, §9.5): record k belongs to the k-th PFN of the dumped bitmap; stop
// after that many records or at written_blocks. After a damaged record
// header (impossible size, or unreadable) the stream is resynchronised
// (see resync): the records from the point found to the end of the stream
// are the last pages of the dump.
func (p *Partition) compressedPages(yield func(*Page, error) bool) {
	bs := int64(p.bs)
	o := p.hdr.Layout.Order
	start := int64(p.first) * bs
	wEnd := int64(p.hdr.WrittenBlocks) * bs
	limit := min(wEnd, p.size)
	// atLimit says why data ending at end is missing.
	atLimit := func(end int64) (LossReason, error) {
		if end > wEnd {
			return LostNotWritten, nil
		}
		return LostTruncated, ErrTruncated
	}
	s := &recordStream{r: p.r, buf: p.buffer(limit - start), bs: bs, start: start, end: start, limit: limit, keep: -1}
	p.candidates = 0
	pos := start
	prev := int64(-1) // start of the record before pos; -1 at a known record start
	done := false     // a run error covered the rest of the expected pages
	damaged := false  // a record header was damaged: the stream after it is not the kernel's order
	resynced := false // the stream was picked up again after damage (once only)
	var pending *LostError
	var pendingN uint64 // pages of the pending run; 0: every page left
	var pendingOff int64
	var skipTo uint64    // pages below this index are covered by the last run
	var plan []resyncSeg // runs of records after the damage, all attributed
	var planIdx int

	// damage handles the damaged header at offset at where record cur
	// (PFN pfn) was expected: it resynchronises and reports pfn lost,
	// unless the header turned out not to be a record start (retry: pfn is
	// the record at pos), and plans what follows: a run of lost pages up
	// to the resynchronisation point, or up to the end when the stream
	// cannot be attributed.
	const (
		dmgStop = iota
		dmgNext
		dmgRetry
	)
	damage := func(pfn, cur uint64, at int64, r LossReason, cause error) int {
		damaged = true
		var segs []resyncSeg
		all, phantom := false, false
		var err error
		switch {
		case cur+1 >= p.want:
			// The last record: nothing after it to resynchronise.
		case resynced:
			err = fmt.Errorf("diskdump: damaged record header at offset 0x%x after resynchronising: %w", at, ErrCorrupt)
		default:
			from := at + PageRecordSize + 1
			certain := true // at is known to start a record
			if prev >= 0 {
				// The previous record's size may be what is wrong: the next
				// record may start inside what it claimed as data.
				from = prev + PageRecordSize + 1
				certain = p.recordEndsAt(s, prev, at)
			}
			segs, all, err = p.resync(s, from, cur, certain, at, wEnd)
			phantom = all && !certain
		}
		if phantom {
			// No record was lost: the previous record's size was wrong,
			// and the stream goes on at segs[0].start with record cur.
			resynced = true
			plan, planIdx = segs, 0
			pos, prev = segs[0].start, -1
			return dmgRetry
		}
		if !yield(nil, p.lostErr(pfn, at, r, 1, cause)) {
			return dmgStop
		}
		if cur+1 >= p.want {
			return dmgNext
		}
		pendingOff, pendingN = at, 0
		if segs == nil {
			pending = &LostError{Reason: LostDesync, Err: err}
			return dmgNext
		}
		resynced = true
		if all {
			// Every damaged header swallowed exactly one record: each run
			// of records found is attributed.
			plan, planIdx = segs, 0
			pos, prev = segs[0].start, -1
			return dmgNext
		}
		last := segs[len(segs)-1]
		if lost := p.want - (cur + 1) - last.n; lost > 0 {
			pending, pendingN = &LostError{Reason: LostDesync, Err: fmt.Errorf(
				"diskdump: %d record(s) lost between the damaged header at offset 0x%x and the record stream picked up again at offset 0x%x: %w",
				lost, at, last.start, ErrCorrupt)}, lost
		}
		pos, prev = last.start, -1
		return dmgNext
	}

	var i uint64 // index of the next PFN: record i belongs to it
pages:
	for pfn := range p.dumped.All() {
		cur := i
		i++
		if done || cur < skipTo {
			continue
		}
		if pending != nil {
			le, n := pending, pendingN
			pending = nil
			if n == 0 {
				n, done = p.want-cur, true
			}
			skipTo = cur + n
			if !yield(nil, p.lostErr(pfn, pendingOff, le.Reason, n, le.Err)) {
				return
			}
			continue
		}
		for { // once per record start tried for pfn
			for planIdx < len(plan)-1 && pos == plan[planIdx].bad {
				// A further damaged header that resync stepped over: the
				// record expected there is lost, unless the header was not
				// a record start (the record before it was too long).
				sg := plan[planIdx]
				planIdx++
				pos, prev = plan[planIdx].start, -1
				if sg.certain {
					if !yield(nil, p.lostErr(pfn, sg.bad, sg.reason, 1, sg.cause)) {
						return
					}
					continue pages
				}
			}
			if pos+PageRecordSize > limit {
				r, cause := atLimit(pos + PageRecordSize)
				done = true
				if !yield(nil, p.lostErr(pfn, pos, r, p.want-cur, cause)) {
					return
				}
				continue pages
			}
			var act int
			if err := s.ensure(pos, PageRecordSize); err != nil {
				act = damage(pfn, cur, pos, LostIOError, err)
			} else if rec := decodePageRecord(s.bytes(pos, PageRecordSize), o); !rec.sizeKnown(p.bs) {
				act = damage(pfn, cur, pos, LostCorrupt, fmt.Errorf(
					"diskdump: record size %d is not in 1..%d, the next record cannot be found: %w", rec.size, bs, ErrCorrupt))
			} else {
				break
			}
			switch act {
			case dmgStop:
				return
			case dmgNext:
				continue pages
			}
		}
		rec := decodePageRecord(s.bytes(pos, PageRecordSize), o)
		end := pos + PageRecordSize + int64(rec.size)
		if end > limit {
			r, cause := atLimit(end)
			done = true
			if !yield(nil, p.lostErr(pfn, pos, r, p.want-cur, cause)) {
				return
			}
			continue
		}
		recOff := pos
		prev, pos = pos, end
		if err := s.ensure(recOff, end-recOff); err != nil {
			// The record's length is known: only its data is lost.
			if !yield(nil, p.lostErr(pfn, recOff, LostIOError, 1, err)) {
				return
			}
			continue
		}
		data := s.bytes(recOff+PageRecordSize, int64(rec.size))
		if err := rec.check(data, p.bs); err != nil {
			if !yield(nil, p.lostErr(pfn, recOff, LostCorrupt, 1, err)) {
				return
			}
			continue
		}
		pg := &p.page
		pg.PFN, pg.Off, pg.Data = pfn, recOff+PageRecordSize, data
		pg.Compressed, pg.PageFlags, pg.Flags = rec.flags&PageCompressed != 0, rec.pageFlags, rec.flags
		p.stats.Found++
		if !yield(pg, nil) {
			return
		}
	}
	if done || damaged {
		return
	}
	// Records after the expected ones, before written_blocks: pages of an
	// interrupted (IN_PROGRESS) dump whose bitmap-2 block was never
	// flushed. A complete dump has only 'm' padding here, which reads as an
	// impossible record size.
	first := pos
	var extra uint64
	for pos+PageRecordSize <= limit {
		if s.ensure(pos, PageRecordSize) != nil {
			break
		}
		rec := decodePageRecord(s.bytes(pos, PageRecordSize), o)
		if !rec.sizeKnown(p.bs) || rec.flags&^(PageCompressed|PageMappingAnon) != 0 {
			break
		}
		extra++
		pos += PageRecordSize + int64(rec.size)
	}
	if extra > 0 {
		p.stats.Expected += extra
		yield(nil, p.lostErr(NoPFN, first, LostUnflushed, extra, nil))
	}
}

// resyncChain is the number of consecutive plausible records (the
// candidate included) that confirm a resynchronisation point, unless the
// stream ends exactly after fewer.
const resyncChain = 4

// resyncMaxSegs bounds the runs of records resync remembers between
// damaged headers; beyond it only the last run is attributed.
const resyncMaxSegs = 64

// resyncSeg is a run of n records from start found by resync. Unless it
// is the last run, the header at bad, right after it, is damaged too
// (reason and cause say how); certain: the record before bad is verified
// to end there, so bad was a record start.
type resyncSeg struct {
	start   int64
	n       uint64
	bad     int64
	certain bool
	reason  LossReason
	cause   error
}

// resync picks the record stream up again after a damaged record header
// at offset at, where record seen was expected (certain: at is known to
// be a record start). Records carry no PFN: record k belongs to the k-th
// dumped PFN, and how many records the damage swallowed is unknown. The
// stream can only be anchored at its end, so this is done only for a dump
// whose bitmaps and written_blocks are final (COMPLETED or SHORT_AREA, two
// bitmaps without stray bits, the whole written extent within the device):
//
//   - scan forward from from, byte by byte, skipping unreadable blocks, for
//     a record start: a plausible header (known flag bits, size B for a raw
//     page, 1..B-1 for a zlib stream that inflates to exactly B bytes with
//     a valid Adler-32 and ends exactly at the record's end), confirmed by
//     the resyncChain-1 records after it or by the stream ending exactly
//     after it (written_blocks, or 'm' padding up to it);
//   - count the records from there, headers only, the way compressedPages
//     steps over them, to the end of the stream; another damaged header
//     ends the run and restarts the scan after the record before it;
//   - the n records of the last run, which reaches the end, are the last n
//     dumped pages. Each damaged header swallowed at least one record if it
//     is certainly a record start (the record before it is verified to end
//     there), else at least none. If the records seen (before the damage
//     and in every run) plus those minimums equal the expected count, every
//     damaged header swallowed exactly its minimum and every run is
//     attributed (all). If they exceed it, an earlier run was record-like
//     data and only the last run is attributed, if it fits after the first
//     damage; if it does not, nothing is.
//
// It returns the runs (the last one reaches the end of the stream), or an
// error saying why the pages after the damage cannot be attributed. The
// bytes after the damage are read twice (here, then while yielding).
func (p *Partition) resync(s *recordStream, from int64, seen uint64, certain bool, at, wEnd int64) (segs []resyncSeg, all bool, err error) {
	st := p.hdr.Status.State()
	switch {
	case st != StatusCompleted && st != StatusShortArea:
		return nil, false, fmt.Errorf("diskdump: dump status %v: the dumpable bitmap and the stream end are not final, so the records after the damaged header at offset 0x%x cannot be attributed to pages: %w",
			st, at, ErrCorrupt)
	case !p.geo.TwoBitmaps() || p.extraDense != 0:
		return nil, false, fmt.Errorf("diskdump: the dumpable bitmap is missing or damaged, so the records after the damaged header at offset 0x%x cannot be attributed to pages: %w",
			at, ErrCorrupt)
	case s.limit < wEnd:
		return nil, false, fmt.Errorf("diskdump: the device ends before written_blocks, so the end of the record stream after the damaged header at offset 0x%x is unknown: %w",
			at, ErrCorrupt)
	}
	var minLost uint64 // records the damaged headers swallowed at least
	if certain {
		minLost = 1
	}
	seen0, min0 := seen, minLost // up to the first damage
	segs = p.segs[:0]
	overflow := false
	for {
		c, ok := p.findRecord(s, from, wEnd)
		if !ok && p.candidates >= resyncMaxCandidates {
			return nil, false, fmt.Errorf("diskdump: gave up resynchronising after the damaged header at offset 0x%x: %d false record starts: %w", at, p.candidates, ErrCorrupt)
		}
		if !ok {
			return nil, false, fmt.Errorf("diskdump: no record start found after the damaged header at offset 0x%x: %w", at, ErrCorrupt)
		}
		w := p.walkRecords(s, c, wEnd)
		seen += w.n
		if w.ended {
			if seen+minLost > p.want {
				// Too many records: some run before the last one is made
				// of record-like data (a page holding a copy of records).
				// Only the last run can still be attributed, if it fits
				// after the first damage and the record expected there.
				overflow = true
				seen, minLost = seen0+w.n, max(min0, 1)
			}
			if seen+minLost > p.want {
				return nil, false, fmt.Errorf("diskdump: the record stream picked up again at offset 0x%x after the damaged header at offset 0x%x holds more records than pages remain: %w",
					c, at, ErrCorrupt)
			}
			all = seen+minLost == p.want && !overflow
			if !all {
				segs = segs[:0]
			}
			segs = append(segs, resyncSeg{start: c, n: w.n, bad: -1})
			p.segs = segs
			return segs, all, nil
		}
		// Another damaged header right after the last record walked.
		sure := p.recordEndsAt(s, w.last, w.bad)
		if sure {
			minLost++
		}
		if len(segs) < resyncMaxSegs {
			segs = append(segs, resyncSeg{start: c, n: w.n, bad: w.bad, certain: sure, reason: w.reason, cause: w.cause})
		} else {
			overflow = true
		}
		from = w.last + PageRecordSize + 1
	}
}

// recordEndsAt reports whether the record at rec is verified to end at
// end: a zlib record whose stream inflates to exactly a page and ends
// there, or a raw record with a plausible header.
func (p *Partition) recordEndsAt(s *recordStream, rec, end int64) bool {
	if rec < 0 || end-rec <= PageRecordSize || s.ensure(rec, end-rec) != nil {
		return false
	}
	r := decodePageRecord(s.bytes(rec, PageRecordSize), p.hdr.Layout.Order)
	if !r.plausible(p.bs) || rec+PageRecordSize+int64(r.size) != end {
		return false
	}
	if r.flags&PageCompressed == 0 {
		return true
	}
	if len(p.zbuf) != p.bs {
		p.zbuf = make([]byte, p.bs)
	}
	return inflateExact(p.zbuf, s.bytes(rec+PageRecordSize, int64(r.size)))
}

// resyncMaxCandidates bounds the candidate record starts checked (each
// may inflate a page and read a few records ahead) in one run of Pages,
// so that data crafted to look like records everywhere costs at most a
// few hundred MiB of inflating rather than a multiple of the device.
const resyncMaxCandidates = 1 << 16

// findRecord returns the first confirmed record start at or after from.
func (p *Partition) findRecord(s *recordStream, from, wEnd int64) (int64, bool) {
	o := p.hdr.Layout.Order
	for c := from; c+PageRecordSize < s.limit && p.candidates < resyncMaxCandidates; c++ {
		if err := s.ensure(c, PageRecordSize); err != nil {
			// Unreadable: go on after the bad block.
			c = (s.end/s.bs+1)*s.bs - 1
			continue
		}
		b := s.bytes(c, PageRecordSize)
		if o.Uint32(b[12:])&^(PageCompressed|PageMappingAnon) != 0 {
			continue
		}
		if rec := decodePageRecord(b, o); !rec.plausible(p.bs) || c+PageRecordSize+int64(rec.size) > s.limit {
			continue
		}
		p.candidates++
		if p.confirmRecord(s, c, wEnd) {
			return c, true
		}
	}
	return 0, false
}

// confirmRecord checks the candidate record start c and the records
// after it (see resync).
func (p *Partition) confirmRecord(s *recordStream, c, wEnd int64) bool {
	o := p.hdr.Layout.Order
	s.keep = c
	defer func() { s.keep = -1 }()
	if len(p.zbuf) != p.bs {
		p.zbuf = make([]byte, p.bs)
	}
	pos := c
	for j := range resyncChain {
		if j > 0 && p.streamEnd(s, pos, wEnd) {
			return true
		}
		if pos+PageRecordSize > s.limit || s.ensure(pos, PageRecordSize) != nil {
			return false
		}
		rec := decodePageRecord(s.bytes(pos, PageRecordSize), o)
		end := pos + PageRecordSize + int64(rec.size)
		if !rec.plausible(p.bs) || end > s.limit {
			return false
		}
		if rec.flags&PageCompressed != 0 {
			if s.ensure(pos, end-pos) != nil || !inflateExact(p.zbuf, s.bytes(pos+PageRecordSize, int64(rec.size))) {
				return false
			}
		}
		pos = end
	}
	return true
}

// walk is the result of walkRecords.
type walk struct {
	n      uint64     // records counted
	ended  bool       // the stream ends right after them
	last   int64      // start of the last record counted
	bad    int64      // else: the damaged header after them,
	reason LossReason // how it is damaged
	cause  error
}

// walkRecords counts the records from c, by their headers alone and the
// way compressedPages steps over them, to the end of the stream or to a
// header that gives no next position.
func (p *Partition) walkRecords(s *recordStream, c, wEnd int64) walk {
	o := p.hdr.Layout.Order
	w := walk{last: c}
	pos := c
	for {
		if p.streamEnd(s, pos, wEnd) {
			w.ended = true
			return w
		}
		w.bad, w.reason = pos, LostCorrupt
		if pos+PageRecordSize > s.limit {
			w.cause = fmt.Errorf("diskdump: record header cut by written_blocks: %w", ErrCorrupt)
			return w
		}
		if err := s.ensure(pos, PageRecordSize); err != nil {
			w.reason, w.cause = LostIOError, err
			return w
		}
		rec := decodePageRecord(s.bytes(pos, PageRecordSize), o)
		end := pos + PageRecordSize + int64(rec.size)
		if !rec.sizeKnown(p.bs) {
			w.cause = fmt.Errorf("diskdump: record size %d is not in 1..%d, the next record cannot be found: %w", rec.size, s.bs, ErrCorrupt)
			return w
		}
		if end > s.limit {
			w.cause = fmt.Errorf("diskdump: record of %d bytes crosses written_blocks: %w", rec.size, ErrCorrupt)
			return w
		}
		w.n++
		w.last, pos = pos, end
	}
}

// streamEnd reports whether the record stream ends exactly at pos: pos is
// written_blocks, or only 'm' padding lies between pos and
// written_blocks, less than a block (doc/FORMAT.md §6.3).
func (p *Partition) streamEnd(s *recordStream, pos, wEnd int64) bool {
	if pos == wEnd {
		return true
	}
	if pos > wEnd || wEnd-pos >= s.bs || wEnd > s.limit || s.ensure(pos, wEnd-pos) != nil {
		return false
	}
	for _, c := range s.bytes(pos, wEnd-pos) {
		if c != 'm' {
			return false
		}
	}
	return true
}
