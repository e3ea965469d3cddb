package vmcore

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/dumpkit/dumpkit/diskdump"
)

// page_desc flags of DISKDUMP and KDUMP vmcores.
const (
	// PageDescCompressed is page_desc.flags bit 0: zlib data (DISKDUMP
	// DUMP_DH_COMPRESSED; KDUMP DUMP_DH_COMPRESSED_ZLIB).
	PageDescCompressed = 0x1
	// PageDescMappingAnon is bit 1 in a DISKDUMP vmcore: the kernel's
	// MAPPING_ANON record flag. KDUMP readers take 0x2 for LZO.
	PageDescMappingAnon = 0x2

	pageDescSize = 24
)

// rawPageDesc mirrors struct page_desc (24 bytes, native endian).
type rawPageDesc struct {
	Offset    int64  // 0 offset: file offset of the data
	Size      uint32 // 8 size: bytes of data
	Flags     uint32 // 12 flags
	PageFlags uint64 // 16 page_flags
}

func putPageDesc(b []byte, o binary.ByteOrder, off int64, size, flags uint32, pageFlags uint64) {
	o.PutUint64(b[0:], uint64(off))
	o.PutUint32(b[8:], size)
	o.PutUint32(b[12:], flags)
	o.PutUint64(b[16:], pageFlags)
}

// tableWriter lays out the page_desc table and the page data of a
// DISKDUMP or KDUMP vmcore in one pass: the table is reserved for the
// upper bound of pages at tableOff, descriptors are written at
// tableOff+24*i in batches, and data is appended after the reserved table
// through a fixed buffer.
type tableWriter struct {
	w        io.WriterAt
	o        binary.ByteOrder
	tableOff int64
	nmax     uint64
	n        uint64 // descriptors so far

	desc      []byte // batch of descriptors, starting with number descStart
	descStart uint64

	data    []byte // buffered data, starting at file offset dataOff
	dataOff int64
	end     int64 // file offset after the last data byte added

	stored *diskdump.Bitmap // bitmap 2: PFNs stored
}

const (
	descBatch      = 4096    // descriptors per table write (96 KiB)
	dataBufferSize = 1 << 20 // bytes per data write
)

func newTableWriter(w io.WriterAt, o binary.ByteOrder, tableOff int64, nmax uint64, bitmapBytes int64) *tableWriter {
	end := tableOff + int64(nmax)*pageDescSize
	return &tableWriter{
		w: w, o: o, tableOff: tableOff, nmax: nmax,
		desc: make([]byte, 0, descBatch*pageDescSize), data: make([]byte, 0, dataBufferSize),
		dataOff: end, end: end, stored: diskdump.NewBitmap(make([]byte, bitmapBytes)),
	}
}

// appendData adds data to the data area and returns its file offset.
func (t *tableWriter) appendData(p []byte) (int64, error) {
	off := t.end
	if len(t.data)+len(p) > cap(t.data) {
		if err := t.flushData(); err != nil {
			return 0, err
		}
	}
	if len(p) > cap(t.data) {
		if _, err := t.w.WriteAt(p, off); err != nil {
			return 0, fmt.Errorf("diskdump: writing page data at offset 0x%x: %w", off, err)
		}
		t.dataOff += int64(len(p))
	} else {
		t.data = append(t.data, p...)
	}
	t.end += int64(len(p))
	return off, nil
}

// addDesc records the descriptor of the next page (ascending PFN).
func (t *tableWriter) addDesc(pfn uint64, off int64, size, flags uint32, pageFlags uint64) error {
	if t.n >= t.nmax {
		return fmt.Errorf("diskdump: more pages than the dumpable bitmap allows (%d): %w", t.nmax, diskdump.ErrCorrupt)
	}
	n := len(t.desc)
	t.desc = t.desc[:n+pageDescSize]
	putPageDesc(t.desc[n:], t.o, off, size, flags, pageFlags)
	t.n++
	t.stored.Set(pfn)
	if len(t.desc) == cap(t.desc) {
		return t.flushDesc()
	}
	return nil
}

// add stores one page's data and its descriptor.
func (t *tableWriter) add(pfn uint64, p []byte, flags uint32, pageFlags uint64) error {
	if t.n >= t.nmax {
		return fmt.Errorf("diskdump: more pages than the dumpable bitmap allows (%d): %w", t.nmax, diskdump.ErrCorrupt)
	}
	off, err := t.appendData(p)
	if err != nil {
		return err
	}
	return t.addDesc(pfn, off, uint32(len(p)), flags, pageFlags)
}

func (t *tableWriter) flushDesc() error {
	if len(t.desc) == 0 {
		return nil
	}
	off := t.tableOff + int64(t.descStart)*pageDescSize
	if _, err := t.w.WriteAt(t.desc, off); err != nil {
		return fmt.Errorf("diskdump: writing page_desc table at offset 0x%x: %w", off, err)
	}
	t.descStart = t.n
	t.desc = t.desc[:0]
	return nil
}

func (t *tableWriter) flushData() error {
	if len(t.data) == 0 {
		return nil
	}
	if _, err := t.w.WriteAt(t.data, t.dataOff); err != nil {
		return fmt.Errorf("diskdump: writing page data at offset 0x%x: %w", t.dataOff, err)
	}
	t.dataOff += int64(len(t.data))
	t.data = t.data[:0]
	return nil
}

func (t *tableWriter) flush() error {
	if err := t.flushData(); err != nil {
		return err
	}
	return t.flushDesc()
}

// writeMeta writes the header block, the sub-header blocks and both
// bitmaps (each R blocks) at the start of the file.
func writeMeta(w io.WriterAt, hdr *diskdump.Header, sub []byte, subBlocks, ramBlocks int64, ram, stored *diskdump.Bitmap) error {
	b := int64(hdr.BlockSize)
	blk, err := hdr.EncodeBlock(int(b))
	if err != nil {
		return err
	}
	meta := make([]byte, (1+subBlocks+2*ramBlocks)*b)
	copy(meta, blk)
	copy(meta[b:(1+subBlocks)*b], sub)
	bm1 := meta[(1+subBlocks)*b : (1+subBlocks+ramBlocks)*b]
	copy(bm1, ram.Bytes())
	diskdump.NewBitmap(bm1).Truncate(uint64(hdr.MaxMapnr))
	copy(meta[(1+subBlocks+ramBlocks)*b:], stored.Bytes())
	if _, err := w.WriteAt(meta, 0); err != nil {
		return fmt.Errorf("diskdump: writing vmcore header and bitmaps: %w", err)
	}
	return nil
}

// diskdumpFlags is the page_desc.flags of a DISKDUMP vmcore for a record
// stored as it is (doc/FORMAT.md §10.2): bit 0 as in the record; MAPPING_ANON kept
// only with bit 0, unless strictAnon.
func diskdumpFlags(recFlags uint32, compressed, strictAnon bool) uint32 {
	var f uint32
	if compressed {
		f = PageDescCompressed
	}
	if recFlags&PageDescMappingAnon != 0 && (compressed || strictAnon) {
		f |= PageDescMappingAnon
	}
	return f
}

// writeDiskdump writes a DISKDUMP vmcore (doc/FORMAT.md §10.2): the partition's
// header (header_version 1) and sub-header, bitmap 1, a PFN-indexed
// bitmap 2 of the pages stored, the page_desc table and the records as
// they are (no recompression; only -P pages are decompressed).
//
// [REC] The file always has two bitmaps (bitmap_blocks = 2R), also for a
// partition with one: bitmap 2 then says which pages were recovered, and
// readers need no single-bitmap heuristics (libkdumpfile misreads small
// single-bitmap files, oracle README).
func writeDiskdump(w io.WriterAt, s *vmSource, opt Options, res *Result) error {
	b := s.blockSize()
	sb, rb := s.subBlocks(), s.ramBlocks()
	hdr := *s.hdr
	hdr.Signature = diskdump.DumpSignature
	hdr.Version = diskdump.DiskDumpHeaderVersion // doc/FORMAT.md §13 item 15
	hdr.BitmapBlocks = uint32(2 * rb)

	nmax := s.dumpable.Count()
	t := newTableWriter(w, hdr.Layout.Order, (1+sb+2*rb)*int64(b), nmax, rb*int64(b))
	var (
		errs   errCollector
		page   = make([]byte, b)
		filter = pageFilter{s: s, b: b}
		prog   = progress{fn: opt.Progress, total: s.total}
	)
	if opt.VerifyRecords {
		if err := writeDiskdumpVerified(t, s, opt, res, &filter, &prog, &errs); err != nil {
			return err
		}
	} else {
		for pg, err := range s.pages {
			if err != nil {
				errs.add(err)
				continue
			}
			prog.page(pg)
			if err := filter.accept(pg); err != nil {
				errs.add(err)
				continue
			}
			data, compressed := pg.Data, pg.Compressed
			if compressed && opt.UncompressedMask != 0 && pg.PageFlags&opt.UncompressedMask != 0 {
				if err := diskdump.Inflate(page, pg.Data); err != nil {
					errs.add(&diskdump.PageError{PFN: pg.PFN, Off: pg.Off, Err: err})
					continue
				}
				data, compressed = page, false
			}
			if err := t.add(pg.PFN, data, diskdumpFlags(pg.Flags, compressed, opt.StrictAnon), pg.PageFlags); err != nil {
				return err
			}
			res.Pages++
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	res.Errors = errs.err()
	res.Lost = nmax - res.Pages
	res.Incomplete = s.incomplete() || res.Lost > 0 || res.Errors != nil
	var sub []byte
	if s.sub != nil {
		sub = s.sub.Raw
	}
	if err := writeMeta(w, &hdr, sub, sb, rb, s.ram, t.stored); err != nil {
		return err
	}
	res.Size = max(t.end, (1+sb+2*rb)*int64(b))
	if err := extendTo(w, res.Size, res.Pages > 0); err != nil {
		return err
	}
	prog.finish()
	return nil
}

// writeDiskdumpVerified is the page loop of writeDiskdump with
// VerifyRecords: every zlib record is inflated (on every core, PFN order
// kept, see verifyPages) and must give exactly one page with a matching
// Adler-32. A record that does not is not copied: its page is lost
// (bitmap 2 clear, a *PageError in the result) like a page the partition
// lost.
func writeDiskdumpVerified(t *tableWriter, s *vmSource, opt Options, res *Result,
	filter *pageFilter, prog *progress, errs *errCollector) error {
	var cerrs errCollector // from the consumer goroutine
	accept := func(pg *vpage, err error) bool {
		if err != nil {
			errs.add(err)
			return false
		}
		prog.page(pg)
		if err := filter.accept(pg); err != nil {
			errs.add(err)
			return false
		}
		return true
	}
	consume := func(r *verifyRec) error {
		if r.err != nil {
			cerrs.add(r.err)
			res.BadRecords++
			return nil
		}
		if err := t.add(r.pfn, r.data, diskdumpFlags(r.flags, r.storedCompressed(), opt.StrictAnon), r.pageFlags); err != nil {
			return err
		}
		res.Pages++
		return nil
	}
	err := verifyPages(s.pages, s.blockSize(), opt.Workers, opt.UncompressedMask, accept, consume)
	errs.errs = append(errs.errs, cerrs.errs...)
	errs.dropped += cerrs.dropped
	return err
}
