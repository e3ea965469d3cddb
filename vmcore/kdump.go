package vmcore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"

	kzlib "github.com/klauspost/compress/zlib"

	"github.com/dumpkit/dumpkit/diskdump"
)

// KDUMP (makedumpfile) header values (doc/FORMAT.md §10.3).
const (
	// KdumpHeaderVersion is the header_version Write writes: 6,
	// with 64-bit PFN fields in the sub-header.
	KdumpHeaderVersion = 6
	// KdumpStatusZlib is status bit 0x1 of a KDUMP file: pages are zlib
	// compressed (DUMP_DH_COMPRESSED_ZLIB).
	KdumpStatusZlib diskdump.Status = 0x1
	// KdumpStatusIncomplete is status bit 0x8 of a KDUMP file
	// (DUMP_DH_COMPRESSED_INCOMPLETE): not every page could be saved.
	KdumpStatusIncomplete diskdump.Status = 0x8

	kdumpSubHeader64Size = 104
	kdumpSubHeader32Size = 80
)

// rawKdumpSubHeader64 mirrors struct kdump_sub_header on 64-bit targets.
type rawKdumpSubHeader64 struct {
	PhysBase         uint64 // 0 phys_base
	DumpLevel        int32  // 8 dump_level
	Split            int32  // 12 split
	StartPFN         uint64 // 16 start_pfn
	EndPFN           uint64 // 24 end_pfn
	OffsetVmcoreinfo uint64 // 32 offset_vmcoreinfo
	SizeVmcoreinfo   uint64 // 40 size_vmcoreinfo
	OffsetNote       uint64 // 48 offset_note
	SizeNote         uint64 // 56 size_note
	OffsetEraseinfo  uint64 // 64 offset_eraseinfo
	SizeEraseinfo    uint64 // 72 size_eraseinfo
	StartPFN64       uint64 // 80 start_pfn_64
	EndPFN64         uint64 // 88 end_pfn_64
	MaxMapnr64       uint64 // 96 max_mapnr_64
}

// rawKdumpSubHeader32 mirrors struct kdump_sub_header on i386, where
// 64-bit members are 4-byte aligned (doc/FORMAT.md §10.3).
type rawKdumpSubHeader32 struct {
	PhysBase         uint32 // 0 phys_base
	DumpLevel        int32  // 4 dump_level
	Split            int32  // 8 split
	StartPFN         uint32 // 12 start_pfn
	EndPFN           uint32 // 16 end_pfn
	OffsetVmcoreinfo uint64 // 20 offset_vmcoreinfo
	SizeVmcoreinfo   uint32 // 28 size_vmcoreinfo
	OffsetNote       uint64 // 32 offset_note
	SizeNote         uint32 // 40 size_note
	OffsetEraseinfo  uint64 // 44 offset_eraseinfo
	SizeEraseinfo    uint32 // 52 size_eraseinfo
	StartPFN64       uint64 // 56 start_pfn_64
	EndPFN64         uint64 // 64 end_pfn_64
	MaxMapnr64       uint64 // 72 max_mapnr_64
}

// KdumpSubHeader is the decoded kdump_sub_header of a KDUMP vmcore.
type KdumpSubHeader struct {
	PhysBase         uint64
	DumpLevel        int32
	Split            int32
	StartPFN, EndPFN uint64 // start_pfn_64/end_pfn_64 when set, else the 32-bit fields
	OffsetVmcoreinfo uint64
	SizeVmcoreinfo   uint64
	OffsetNote       uint64
	SizeNote         uint64
	OffsetEraseinfo  uint64
	SizeEraseinfo    uint64
	MaxMapnr64       uint64
}

// Encode writes the sub-header in layout l into b.
func (k *KdumpSubHeader) Encode(b []byte, l diskdump.Layout) error {
	var err error
	if l.Is64 {
		r := rawKdumpSubHeader64{PhysBase: k.PhysBase, DumpLevel: k.DumpLevel, Split: k.Split,
			StartPFN: k.StartPFN, EndPFN: k.EndPFN, OffsetVmcoreinfo: k.OffsetVmcoreinfo, SizeVmcoreinfo: k.SizeVmcoreinfo,
			OffsetNote: k.OffsetNote, SizeNote: k.SizeNote, OffsetEraseinfo: k.OffsetEraseinfo, SizeEraseinfo: k.SizeEraseinfo,
			StartPFN64: k.StartPFN, EndPFN64: k.EndPFN, MaxMapnr64: k.MaxMapnr64}
		_, err = binary.Encode(b, l.Order, &r)
	} else {
		r := rawKdumpSubHeader32{PhysBase: uint32(k.PhysBase), DumpLevel: k.DumpLevel, Split: k.Split,
			StartPFN: uint32(k.StartPFN), EndPFN: uint32(k.EndPFN), OffsetVmcoreinfo: k.OffsetVmcoreinfo,
			SizeVmcoreinfo: uint32(k.SizeVmcoreinfo), OffsetNote: k.OffsetNote, SizeNote: uint32(k.SizeNote),
			OffsetEraseinfo: k.OffsetEraseinfo, SizeEraseinfo: uint32(k.SizeEraseinfo),
			StartPFN64: k.StartPFN, EndPFN64: k.EndPFN, MaxMapnr64: k.MaxMapnr64}
		_, err = binary.Encode(b, l.Order, &r)
	}
	if err != nil {
		return fmt.Errorf("diskdump: encoding kdump sub-header: %w", err)
	}
	return nil
}

// DecodeKdumpSubHeader decodes a kdump_sub_header in layout l.
func DecodeKdumpSubHeader(b []byte, l diskdump.Layout) (*KdumpSubHeader, error) {
	k := &KdumpSubHeader{}
	if l.Is64 {
		var r rawKdumpSubHeader64
		if _, err := binary.Decode(b, l.Order, &r); err != nil {
			return nil, formatErr(int64(len(b)), -1, "kdump_sub_header", diskdump.ErrTruncated, "needs %d bytes, have %d", kdumpSubHeader64Size, len(b))
		}
		*k = KdumpSubHeader{PhysBase: r.PhysBase, DumpLevel: r.DumpLevel, Split: r.Split, StartPFN: r.StartPFN, EndPFN: r.EndPFN,
			OffsetVmcoreinfo: r.OffsetVmcoreinfo, SizeVmcoreinfo: r.SizeVmcoreinfo, OffsetNote: r.OffsetNote, SizeNote: r.SizeNote,
			OffsetEraseinfo: r.OffsetEraseinfo, SizeEraseinfo: r.SizeEraseinfo, MaxMapnr64: r.MaxMapnr64}
		if r.StartPFN64 != 0 || r.EndPFN64 != 0 {
			k.StartPFN, k.EndPFN = r.StartPFN64, r.EndPFN64
		}
	} else {
		var r rawKdumpSubHeader32
		if _, err := binary.Decode(b, l.Order, &r); err != nil {
			return nil, formatErr(int64(len(b)), -1, "kdump_sub_header", diskdump.ErrTruncated, "needs %d bytes, have %d", kdumpSubHeader32Size, len(b))
		}
		*k = KdumpSubHeader{PhysBase: uint64(r.PhysBase), DumpLevel: r.DumpLevel, Split: r.Split,
			StartPFN: uint64(r.StartPFN), EndPFN: uint64(r.EndPFN), OffsetVmcoreinfo: r.OffsetVmcoreinfo,
			SizeVmcoreinfo: uint64(r.SizeVmcoreinfo), OffsetNote: r.OffsetNote, SizeNote: uint64(r.SizeNote),
			OffsetEraseinfo: r.OffsetEraseinfo, SizeEraseinfo: uint64(r.SizeEraseinfo), MaxMapnr64: r.MaxMapnr64}
		if r.StartPFN64 != 0 || r.EndPFN64 != 0 {
			k.StartPFN, k.EndPFN = r.StartPFN64, r.EndPFN64
		}
	}
	return k, nil
}

// fixedBuffer is an io.Writer into a fixed slice that fails when full.
type fixedBuffer struct {
	b []byte
}

var errBufferFull = errors.New("diskdump: buffer full")

func (f *fixedBuffer) Write(p []byte) (int, error) {
	if len(f.b)+len(p) > cap(f.b) {
		return 0, errBufferFull
	}
	f.b = append(f.b, p...)
	return len(p), nil
}

// kdumpLevel is the deflate level of the KDUMP writer, with
// github.com/klauspost/compress (its levels 1-6 are its own fast
// encoders, not zlib's). [REC] Level 5, not the kernel's and
// makedumpfile's 1. On the non-zero pages of the synthetic machine
// (16 MiB, seed 7, 2825 pages; instructions per page from callgrind,
// size against C zlib level 1, which makedumpfile uses):
//
//	level                   instr/page  size
//	C zlib 1 (Python)       330k        3666982 bytes
//	compress/flate 1        460k        +1.7%
//	klauspost 1             179k        +5.0%
//	klauspost 3             210k        +1.4%
//	klauspost 4             222k        +0.3%
//	klauspost 5             249k        -1.0%
//	klauspost 6             275k        -2.6%
//
// Level 5 is the fastest level whose file is not larger than
// makedumpfile's (issue 8, benchmark 3: 0.981 of its size for 1 GiB).
const kdumpLevel = 5

// pageCodec compresses pages with reused state; one per goroutine.
type pageCodec struct {
	b       int
	zw      *kzlib.Writer
	sink    fixedBuffer // where zw writes, a window of the caller's buffer
	scratch []byte      // output of deflate and compress
	// zero is the zlib stream of a zero page, made once: zero pages are
	// common (a third of a freshly booted machine) and cost deflate as
	// much as any other page. The stream is the same bytes deflate would
	// produce.
	zero []byte
}

func newPageCodec(b int) *pageCodec {
	c := &pageCodec{b: b}
	// NewWriterLevel fails only for an invalid level.
	c.zw, _ = kzlib.NewWriterLevel(nil, kdumpLevel)
	return c
}

// deflate compresses a page into a buffer of the codec; ok is false when
// the result would not be smaller than the page (it is then stored raw).
// The result is valid until the next call.
func (c *pageCodec) deflate(src []byte) (out []byte, ok bool) {
	if len(src) == c.b && isZero(src) {
		return c.zeroStream()
	}
	return c.compress(src)
}

// zeroStream is the cached zlib stream of a zero page (never modified).
func (c *pageCodec) zeroStream() ([]byte, bool) {
	if c.zero == nil {
		out, ok := c.compressTo(make([]byte, 0, c.b-1), zeroPage[:c.b])
		if !ok {
			return nil, false
		}
		c.zero = out
	}
	return c.zero, true
}

// compress deflates src into the codec's scratch buffer, at most a page
// minus one byte.
func (c *pageCodec) compress(src []byte) (out []byte, ok bool) {
	if c.scratch == nil {
		c.scratch = make([]byte, 0, c.b-1)
	}
	return c.compressTo(c.scratch[:0], src)
}

// compressTo deflates src into dst[len(dst):cap(dst)] and returns dst
// extended by the stream; ok is false when the stream does not fit in
// the capacity (the caller gives it less than a page).
func (c *pageCodec) compressTo(dst, src []byte) (out []byte, ok bool) {
	c.sink.b = dst
	defer func() { c.sink.b = nil }() // the codec keeps no alias of dst
	c.zw.Reset(&c.sink)
	if _, err := c.zw.Write(src); err != nil {
		return nil, false
	}
	if err := c.zw.Close(); err != nil {
		return nil, false
	}
	return c.sink.b, true
}

// zeroCandidate is the largest zlib record inflated to look for a zero
// page: a zero page compresses to about 1/100 of its size (41 bytes at
// 4 KiB), so larger records are not zero pages from any sane compressor
// and are copied without decompression.
func zeroCandidate(n, b int) bool { return n <= b/32 }

var zeroPage = make([]byte, 1<<16)

func isZero(p []byte) bool { return bytes.Equal(p, zeroPage[:len(p)]) }

// kdumpBatchBytes is about the record data of one batch of the KDUMP
// pipeline: 64 pages of 4 KiB, 4 of 64 KiB. Pages travel between the
// reader, the compressing workers and the writer in batches, so that the
// goroutines synchronise once per batch, not once per page.
const kdumpBatchBytes = 256 << 10

// kdumpMaxBatches bounds the batches in flight (32 MiB of buffers).
const kdumpMaxBatches = 64

// kdumpEntry is one element of a batch: a page (with its result once the
// batch is processed) or a page the sequence reported lost.
type kdumpEntry struct {
	pfn        uint64
	off        int64
	in         []byte // record data, a slice of kdumpBatch.in
	compressed bool   // in is a zlib stream
	forceRaw   bool   // -P: store uncompressed

	data  []byte // result: bytes to store (in, kdumpBatch.out or the codec's zero stream)
	flags uint32 // result: page_desc.flags
	zero  bool   // result: all-zero page, shares the zero page
	err   error  // the page is lost (from the sequence or from processing)
	bad   bool   // err is a zlib record rejected by verification
}

// kdumpBatch is a run of consecutive entries of the page sequence, in
// PFN order, with buffers for their data: in holds the copied records,
// out the compressed or inflated results, at most one page each.
type kdumpBatch struct {
	ents  []kdumpEntry
	in    []byte
	out   []byte
	pages int    // entries that are pages (the rest are errors)
	seq   uint64 // position in the sequence of batches
}

func newKdumpBatch(b, n int) *kdumpBatch {
	return &kdumpBatch{
		ents: make([]kdumpEntry, 0, n), in: make([]byte, 0, n*b), out: make([]byte, 0, n*b),
	}
}

// kdumpBatchPages is the number of pages per batch for page size b.
func kdumpBatchPages(b int) int { return max(1, kdumpBatchBytes/b) }

func (bt *kdumpBatch) reset() {
	clear(bt.ents) // drop references to errors and codec buffers
	bt.ents, bt.in, bt.out, bt.pages = bt.ents[:0], bt.in[:0], bt.out[:0], 0
}

// full reports whether the batch takes no more entries. Errors count
// too, so that a run of lost pages cannot grow a batch.
func (bt *kdumpBatch) full() bool { return len(bt.ents) == cap(bt.ents) }

func (bt *kdumpBatch) addErr(err error) { bt.ents = append(bt.ents, kdumpEntry{err: err}) }

// addPage copies the page's record into the batch. The filter has
// checked that the record is at most a page.
func (bt *kdumpBatch) addPage(pg *vpage, mask uint64) {
	n := len(bt.in)
	bt.in = append(bt.in, pg.Data...)
	bt.ents = append(bt.ents, kdumpEntry{
		pfn: pg.PFN, off: pg.Off, in: bt.in[n:len(bt.in):len(bt.in)], compressed: pg.Compressed,
		forceRaw: mask != 0 && pg.PageFlags&mask != 0,
	})
	bt.pages++
}

// kdumpProcess says how pages are turned into their stored form.
type kdumpProcess struct {
	shareZero bool
	// rawAsIs stores raw records as they are. [REC] For a compressed
	// dump: its raw records are the pages the kernel's deflate could not
	// shrink, and deflating them again is all the CPU this conversion
	// would spend while never paying: on the samples and fixtures (1826
	// raw records of compressed dumps) and on the synthetic machine (1639
	// incompressible pages of 11473) no level of deflate, 1 to 9, made a
	// single one smaller than a page. doc/FORMAT.md §10.3 allows raw pages
	// (page_desc.flags 0) in a KDUMP file.
	rawAsIs bool
	// verify (Options.VerifyRecords) inflates every zlib record
	// before it is copied: a damaged one is not stored, its page is lost.
	verify bool
}

// batch computes the stored form of every page of bt.
func (c *pageCodec) batch(bt *kdumpBatch, how kdumpProcess) {
	for i := range bt.ents {
		if e := &bt.ents[i]; e.err == nil {
			c.process(bt, e, how)
		}
	}
}

// process computes the stored form of a page (doc/FORMAT.md §10.3): zlib records
// are copied as they are, raw pages compressed and stored raw when that
// does not shrink them.
func (c *pageCodec) process(bt *kdumpBatch, e *kdumpEntry, how kdumpProcess) {
	if e.compressed {
		if how.verify || e.forceRaw || (how.shareZero && zeroCandidate(len(e.in), c.b)) {
			n := len(bt.out)
			page := bt.out[n : n+c.b]
			if err := diskdump.Inflate(page, e.in); err != nil {
				e.err, e.bad = &diskdump.PageError{PFN: e.pfn, Off: e.off, Err: err}, how.verify
				return
			}
			if how.shareZero && isZero(page) {
				e.zero = true
				return
			}
			if e.forceRaw {
				e.data = page
				bt.out = bt.out[:n+c.b]
				return
			}
		}
		e.data, e.flags = e.in, PageDescCompressed
		return
	}
	if isZero(e.in) {
		if how.shareZero {
			e.zero = true
			return
		}
		if !e.forceRaw {
			if z, ok := c.zeroStream(); ok {
				e.data, e.flags = z, PageDescCompressed
				return
			}
		}
	}
	if !e.forceRaw && !how.rawAsIs {
		n := len(bt.out)
		if out, ok := c.compressTo(bt.out[n:n:n+c.b-1], e.in); ok {
			e.data, e.flags = out, PageDescCompressed
			bt.out = bt.out[:n+len(out)]
			return
		}
	}
	e.data = e.in
}

// kdumpPipe runs the KDUMP conversion on one or more goroutines, the
// workers, with no reader or writer goroutine of its own: each worker
// takes a free batch, fills it from the page sequence (one worker at a
// time), processes it, and hands it to the in-order writer: the worker
// that completes the oldest batch in flight writes it and every later one
// already done, in PFN order. No goroutine waits for another one to be
// scheduled before it can go on (a reader or writer goroutine readied by
// a busy worker waits for the scheduler to preempt it, up to 10 ms,
// while the workers drain the queue); memory is bounded by the batches.
type kdumpPipe struct {
	b    int
	how  kdumpProcess
	mask uint64           // -P: Options.UncompressedMask
	free chan *kdumpBatch // batches not in flight

	fillMu   sync.Mutex
	next     func() (*vpage, error, bool)
	filter   pageFilter
	seq      uint64 // sequence number of the next batch filled
	eof      bool
	consumed atomic.Int64 // bytes of the partition read (progress)

	writeMu   sync.Mutex
	pending   []*kdumpBatch // done batches waiting for their turn, by seq modulo len
	nextWrite uint64
	write     func(*kdumpBatch) error
	err       error // the first error of write; no batch is written after it
	failed    atomic.Bool
}

func newKdumpPipe(b, workers int, next func() (*vpage, error, bool), write func(*kdumpBatch) error) *kdumpPipe {
	// Enough batches that a worker rarely waits for a free one while
	// another finishes the oldest batch: 2·workers+2 batches of
	// 2·kdumpBatchBytes, 3 MiB for two workers, at most 32 MiB (more
	// workers then wait for batches).
	nbatch := min(2*workers+2, kdumpMaxBatches)
	if workers == 1 {
		nbatch = 1
	}
	p := &kdumpPipe{b: b, next: next, write: write, free: make(chan *kdumpBatch, nbatch), pending: make([]*kdumpBatch, nbatch)}
	for range nbatch {
		p.free <- newKdumpBatch(b, kdumpBatchPages(b))
	}
	return p
}

// work is the loop of one worker; onBatch, if not nil, is called after
// each batch it processed.
func (p *kdumpPipe) work(c *pageCodec, onBatch func()) {
	for !p.failed.Load() {
		bt := <-p.free
		if !p.fill(bt) {
			p.free <- bt
			return
		}
		c.batch(bt, p.how)
		p.put(bt)
		if onBatch != nil {
			onBatch()
		}
	}
}

// fill puts the next entries of the page sequence into bt and gives it
// the next sequence number; it reports false, with bt empty, at the end
// of the sequence or after a write error.
func (p *kdumpPipe) fill(bt *kdumpBatch) bool {
	p.fillMu.Lock()
	defer p.fillMu.Unlock()
	bt.reset()
	for !p.eof && !p.failed.Load() && !bt.full() {
		pg, err, ok := p.next()
		switch {
		case !ok:
			p.eof = true
		case err != nil:
			bt.addErr(err)
		default:
			p.consumed.Store(pg.Off + int64(len(pg.Data)))
			if err := p.filter.accept(pg); err != nil {
				bt.addErr(err)
			} else {
				bt.addPage(pg, p.mask)
			}
		}
	}
	if len(bt.ents) == 0 {
		return false
	}
	bt.seq = p.seq
	p.seq++
	return true
}

// put hands over a processed batch and writes, in sequence order, the
// batches whose turn has come. A batch always goes back to the free list,
// also after a write error, so that no worker waits for one forever.
func (p *kdumpPipe) put(bt *kdumpBatch) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	n := uint64(len(p.pending))
	// At most len(pending) batches are in flight, all with sequence
	// numbers from nextWrite on: their slots are distinct.
	p.pending[bt.seq%n] = bt
	for {
		w := p.pending[p.nextWrite%n]
		if w == nil {
			return
		}
		p.pending[p.nextWrite%n] = nil
		p.nextWrite++
		if p.err == nil {
			if err := p.write(w); err != nil {
				p.err = err
				p.failed.Store(true)
			}
		}
		p.free <- w
	}
}

// writeKdump writes a makedumpfile kdump-compressed vmcore (doc/FORMAT.md §10.3).
func writeKdump(w io.WriterAt, s *vmSource, opt Options, res *Result) error {
	b := s.blockSize()
	rb := s.ramBlocks()
	const sb = 1
	nmax := s.dumpable.Count()
	t := newTableWriter(w, s.hdr.Layout.Order, (1+sb+2*rb)*int64(b), nmax, rb*int64(b))

	var zeroOff int64
	var zeroData []byte
	var zeroFlags uint32
	codec := newPageCodec(b) // this goroutine's
	if opt.ShareZeroPage {
		zeroData = zeroPage[:b]
		if out, ok := codec.zeroStream(); ok {
			zeroData, zeroFlags = out, PageDescCompressed
		}
		off, err := t.appendData(zeroData)
		if err != nil {
			return err
		}
		zeroOff = off
	}

	var (
		errs errCollector // lost pages, in the order of the sequence
		prog = progress{fn: opt.Progress, total: s.total}
		how  = kdumpProcess{shareZero: opt.ShareZeroPage, rawAsIs: s.hdr.Status.Compressed(), verify: opt.VerifyRecords}
		werr error
	)
	// consume writes the entries of a processed batch in their order
	// (called by one worker at a time, batches in PFN order).
	consume := func(bt *kdumpBatch) error {
		for i := range bt.ents {
			e := &bt.ents[i]
			var err error
			switch {
			case e.err != nil:
				errs.add(e.err)
				if e.bad {
					res.BadRecords++
				}
				continue
			case e.zero:
				err = t.addDesc(e.pfn, zeroOff, uint32(len(zeroData)), zeroFlags, 0)
				res.ZeroPages++
			default:
				err = t.add(e.pfn, e.data, e.flags, 0)
			}
			if err != nil {
				return err
			}
			res.Pages++
		}
		return nil
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	next, stop := iter.Pull2(s.pages)
	defer stop()
	p := newKdumpPipe(b, workers, next, consume)
	p.how, p.mask, p.filter = how, opt.UncompressedMask, pageFilter{s: s, b: b}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(func() { p.work(newPageCodec(b), nil) })
	}
	// This goroutine is a worker too, and the one that reports progress
	// (Options.Progress is called from the caller's goroutine).
	var at vpage
	p.work(codec, func() {
		at.Off = p.consumed.Load()
		prog.page(&at)
	})
	wg.Wait()
	werr = p.err
	if werr != nil {
		return werr
	}
	if err := t.flush(); err != nil {
		return err
	}
	res.Errors = errs.err()
	res.Lost = nmax - res.Pages
	res.Incomplete = s.incomplete() || res.Lost > 0 || res.Errors != nil

	hdr := kdumpHeader(s, rb, res.Incomplete)
	sub := make([]byte, b)
	ksub := KdumpSubHeader{MaxMapnr64: s.maxPFN()}
	// [REC] A VMCOREINFO made of what the header knows, right after the
	// sub-header struct in block 1, so that tools that insist on one
	// (crash --osrelease, --log) find the release and page size.
	info := kdumpVmcoreinfo(s.hdr)
	subSize := kdumpSubHeader64Size
	if !hdr.Layout.Is64 {
		subSize = kdumpSubHeader32Size
	}
	if subSize+len(info) <= b {
		ksub.OffsetVmcoreinfo, ksub.SizeVmcoreinfo = uint64(b+subSize), uint64(len(info))
		copy(sub[subSize:], info)
	}
	if err := ksub.Encode(sub, hdr.Layout); err != nil {
		return err
	}
	if err := writeMeta(w, hdr, sub, sb, rb, s.ram, t.stored); err != nil {
		return err
	}
	res.Size = max(t.end, (1+sb+2*rb)*int64(b))
	if err := extendTo(w, res.Size, res.Pages > 0 || opt.ShareZeroPage); err != nil {
		return err
	}
	prog.finish()
	return nil
}

// kdumpVmcoreinfo is the VMCOREINFO text of a KDUMP file made from a
// diskdump partition: the kernel release, the page size and the crash
// time, the only vmcoreinfo facts the partition records.
func kdumpVmcoreinfo(h *diskdump.Header) string {
	return fmt.Sprintf("OSRELEASE=%s\nPAGESIZE=%d\nCRASHTIME=%d\n", h.Utsname.Release, h.BlockSize, h.Sec)
}

// kdumpHeader is the disk_dump_header of a KDUMP file made from a
// partition: signature "KDUMP   ", header_version 6, µs timestamp, status
// zlib (+ INCOMPLETE), two PFN-indexed bitmaps, one sub-header block.
func kdumpHeader(s *vmSource, rb int64, incomplete bool) *diskdump.Header {
	src := s.hdr
	h := &diskdump.Header{
		Layout: src.Layout, Signature: diskdump.KdumpSignature, Version: KdumpHeaderVersion, Utsname: src.Utsname,
		Sec: src.Sec, Frac: src.Frac, Status: KdumpStatusZlib, BlockSize: src.BlockSize, SubHdrSize: 1,
		BitmapBlocks: uint32(2 * rb), MaxMapnr: src.MaxMapnr, TotalRAMBlocks: uint32(s.ram.Count()),
		CurrentCPU: src.CurrentCPU, NrCPUs: src.NrCPUs, Tasks: src.Tasks,
	}
	if !src.FracIsMicro() {
		h.Frac = src.Frac / 1000 // struct timespec (RHEL4) to struct timeval
	}
	if incomplete {
		h.Status |= KdumpStatusIncomplete
	}
	return h
}
