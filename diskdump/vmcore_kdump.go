package diskdump

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// KDUMP (makedumpfile) header values (spec §10.3).
const (
	// KdumpHeaderVersion is the header_version WriteVmcore writes: 6,
	// with 64-bit PFN fields in the sub-header.
	KdumpHeaderVersion = 6
	// KdumpStatusZlib is status bit 0x1 of a KDUMP file: pages are zlib
	// compressed (DUMP_DH_COMPRESSED_ZLIB).
	KdumpStatusZlib Status = 0x1
	// KdumpStatusIncomplete is status bit 0x8 of a KDUMP file
	// (DUMP_DH_COMPRESSED_INCOMPLETE): not every page could be saved.
	KdumpStatusIncomplete Status = 0x8

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
// 64-bit members are 4-byte aligned (spec §10.3).
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
func (k *KdumpSubHeader) Encode(b []byte, l Layout) error {
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
func DecodeKdumpSubHeader(b []byte, l Layout) (*KdumpSubHeader, error) {
	k := &KdumpSubHeader{}
	if l.Is64 {
		var r rawKdumpSubHeader64
		if _, err := binary.Decode(b, l.Order, &r); err != nil {
			return nil, fieldErr(int64(len(b)), -1, "kdump_sub_header", ErrTruncated, "needs %d bytes, have %d", kdumpSubHeader64Size, len(b))
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
			return nil, fieldErr(int64(len(b)), -1, "kdump_sub_header", ErrTruncated, "needs %d bytes, have %d", kdumpSubHeader32Size, len(b))
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

// pageCodec compresses and decompresses pages with reused state; one per
// goroutine.
type pageCodec struct {
	b   int
	zw  *zlib.Writer
	out fixedBuffer
	// zero is the zlib stream of a zero page, made once: zero pages are
	// common (a third of a freshly booted machine) and deflate spends
	// most of its time on Huffman tables, as much for a zero page as for
	// any other. The stream is the same bytes deflate would produce.
	zero []byte
}

func newPageCodec(b int) *pageCodec {
	c := &pageCodec{b: b, out: fixedBuffer{b: make([]byte, 0, b-1)}}
	// BestSpeed is the kernel's level (spec §6.3); NewWriterLevel fails
	// only for an invalid level.
	c.zw, _ = zlib.NewWriterLevel(&c.out, zlib.BestSpeed)
	return c
}

// deflate compresses a page; ok is false when the result would not be
// smaller than the page (it is then stored raw). The result is valid
// until the next call.
func (c *pageCodec) deflate(src []byte) (out []byte, ok bool) {
	if len(src) == c.b && isZero(src) {
		if c.zero == nil {
			out, ok := c.compress(src)
			if !ok {
				return nil, false
			}
			c.zero = bytes.Clone(out)
		}
		return c.zero, true
	}
	return c.compress(src)
}

func (c *pageCodec) compress(src []byte) (out []byte, ok bool) {
	c.out.b = c.out.b[:0]
	c.zw.Reset(&c.out)
	if _, err := c.zw.Write(src); err != nil {
		return nil, false
	}
	if err := c.zw.Close(); err != nil {
		return nil, false
	}
	return c.out.b, true
}

// kdumpJob is one page on its way through the KDUMP pipeline.
type kdumpJob struct {
	pfn        uint64
	off        int64
	in         []byte // copy of the record data (cap B)
	compressed bool   // in is a zlib stream
	forceRaw   bool   // -P: store uncompressed
	page       []byte // scratch page (cap B)
	cmp        []byte // scratch compressed output (cap B)

	data  []byte // result: bytes to store
	flags uint32 // result: page_desc.flags
	zero  bool   // result: all-zero page, shares the zero page
	err   error  // result: page lost
	done  chan struct{}
}

func newKdumpJob(b int) *kdumpJob {
	return &kdumpJob{in: make([]byte, 0, b), page: make([]byte, b), cmp: make([]byte, 0, b), done: make(chan struct{}, 1)}
}

func (j *kdumpJob) fill(pg *vpage, mask uint64) {
	j.pfn, j.off, j.compressed = pg.PFN, pg.Off, pg.Compressed
	j.in = append(j.in[:0], pg.Data...)
	j.forceRaw = mask != 0 && pg.PageFlags&mask != 0
	j.data, j.flags, j.zero, j.err = nil, 0, false, nil
}

// zeroCandidate is the largest zlib record inflated to look for a zero
// page: a zero page compresses to about 1/100 of its size (41 bytes at
// 4 KiB), so larger records are not zero pages from any sane compressor
// and are copied without decompression.
func zeroCandidate(n, b int) bool { return n <= b/32 }

var zeroPage = make([]byte, 1<<16)

func isZero(p []byte) bool { return bytes.Equal(p, zeroPage[:len(p)]) }

// process computes the stored form of a page (spec §10.3): zlib records
// are copied as they are, raw pages compressed at BestSpeed and stored
// raw when that does not shrink them.
func (c *pageCodec) process(j *kdumpJob, shareZero bool) {
	if j.compressed {
		if j.forceRaw || (shareZero && zeroCandidate(len(j.in), c.b)) {
			if err := inflatePage(j.page, j.in); err != nil {
				j.err = &PageError{PFN: j.pfn, Off: j.off, Err: err}
				return
			}
			if shareZero && isZero(j.page) {
				j.zero = true
				return
			}
			if j.forceRaw {
				j.data = j.page
				return
			}
		}
		j.data, j.flags = j.in, PageDescCompressed
		return
	}
	if shareZero && isZero(j.in) {
		j.zero = true
		return
	}
	if !j.forceRaw {
		if out, ok := c.deflate(j.in); ok {
			j.cmp = append(j.cmp[:0], out...)
			j.data, j.flags = j.cmp, PageDescCompressed
			return
		}
	}
	j.data = j.in
}

// writeKdump writes a makedumpfile kdump-compressed vmcore (spec §10.3).
func writeKdump(w io.WriterAt, s *vmSource, opt VmcoreOptions, res *VmcoreResult) error {
	b := s.blockSize()
	rb := s.ramBlocks()
	const sb = 1
	nmax := s.dumpable.Count()
	t := newTableWriter(w, s.hdr.Layout.Order, (1+sb+2*rb)*int64(b), nmax, rb*int64(b))

	var zeroOff int64
	var zeroData []byte
	var zeroFlags uint32
	if opt.ShareZeroPage {
		c := newPageCodec(b)
		zeroData = zeroPage[:b]
		if out, ok := c.deflate(zeroData); ok {
			zeroData, zeroFlags = bytes.Clone(out), PageDescCompressed
		}
		off, err := t.appendData(zeroData)
		if err != nil {
			return err
		}
		zeroOff = off
	}

	var (
		perrs  errCollector // from the page sequence (this goroutine)
		cerrs  errCollector // from the consumer
		filter = pageFilter{s: s, b: b}
		prog   = progress{fn: opt.Progress, total: s.total}
		werr   error
		failed atomic.Bool
	)
	consume := func(j *kdumpJob) {
		if werr != nil {
			return
		}
		var err error
		switch {
		case j.err != nil:
			cerrs.add(j.err)
			return
		case j.zero:
			err = t.addDesc(j.pfn, zeroOff, uint32(len(zeroData)), zeroFlags, 0)
			res.ZeroPages++
		default:
			err = t.add(j.pfn, j.data, j.flags, 0)
		}
		if err != nil {
			werr = err
			failed.Store(true)
			return
		}
		res.Pages++
	}

	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers == 1 {
		c := newPageCodec(b)
		j := newKdumpJob(b)
		for pg, err := range s.pages {
			if err != nil {
				perrs.add(err)
				continue
			}
			prog.page(pg)
			if err := filter.accept(pg); err != nil {
				perrs.add(err)
				continue
			}
			j.fill(pg, opt.UncompressedMask)
			c.process(j, opt.ShareZeroPage)
			consume(j)
			if werr != nil {
				break
			}
		}
	} else {
		// Bounded pipeline: nslots jobs circulate; the producer (this
		// goroutine) fills them in PFN order and queues them both to
		// the workers and, in the same order, to the consumer, which
		// waits for each to be done and writes it.
		nslots := 4 * workers
		free := make(chan *kdumpJob, nslots)
		for range nslots {
			free <- newKdumpJob(b)
		}
		work := make(chan *kdumpJob, nslots)
		order := make(chan *kdumpJob, nslots)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				c := newPageCodec(b)
				for j := range work {
					c.process(j, opt.ShareZeroPage)
					j.done <- struct{}{}
				}
			})
		}
		consumed := make(chan struct{})
		go func() {
			defer close(consumed)
			for j := range order {
				<-j.done
				consume(j)
				free <- j
			}
		}()
		for pg, err := range s.pages {
			if failed.Load() {
				break
			}
			if err != nil {
				perrs.add(err)
				continue
			}
			prog.page(pg)
			if err := filter.accept(pg); err != nil {
				perrs.add(err)
				continue
			}
			j := <-free
			j.fill(pg, opt.UncompressedMask)
			order <- j
			work <- j
		}
		close(work)
		close(order)
		<-consumed
		wg.Wait()
	}
	if werr != nil {
		return werr
	}
	if err := t.flush(); err != nil {
		return err
	}
	perrs.errs = append(perrs.errs, cerrs.errs...)
	perrs.dropped += cerrs.dropped
	res.Errors = perrs.err()
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
func kdumpVmcoreinfo(h *Header) string {
	return fmt.Sprintf("OSRELEASE=%s\nPAGESIZE=%d\nCRASHTIME=%d\n", h.Utsname.Release, h.BlockSize, h.Sec)
}

// kdumpHeader is the disk_dump_header of a KDUMP file made from a
// partition: signature "KDUMP   ", header_version 6, µs timestamp, status
// zlib (+ INCOMPLETE), two PFN-indexed bitmaps, one sub-header block.
func kdumpHeader(s *vmSource, rb int64, incomplete bool) *Header {
	src := s.hdr
	h := &Header{
		Layout: src.Layout, Signature: KdumpSignature, Version: KdumpHeaderVersion, Utsname: src.Utsname,
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
