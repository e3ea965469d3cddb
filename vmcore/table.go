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

// batchStore writes the entries of processed batches of the pipeline
// into the table, in their order: lost pages go to the errors, excluded
// ones are counted, the others go to the file.
type batchStore struct {
	t    *tableWriter
	res  *Result
	errs *errCollector
	// keepPageFlags stores each record's page_flags in its descriptor
	// (DISKDUMP); KDUMP writes 0, as makedumpfile does.
	keepPageFlags bool
	// The descriptor fields of the shared zero page (KDUMP), for entries
	// marked zero.
	zeroOff          int64
	zeroSize, zeroFl uint32
}

func (s *batchStore) write(bt *batch) error {
	for i := range bt.ents {
		e := &bt.ents[i]
		var err error
		switch {
		case e.err != nil:
			s.errs.add(e.err)
			if e.bad {
				s.res.BadRecords++
			}
			continue
		case e.excluded:
			s.res.Excluded++
			continue
		case e.zero:
			err = s.t.addDesc(e.pfn, s.zeroOff, s.zeroSize, s.zeroFl, 0)
			s.res.ZeroPages++
		default:
			var pf uint64
			if s.keepPageFlags {
				pf = e.pageFlags
			}
			err = s.t.add(e.pfn, e.data, e.flags, pf)
		}
		if err != nil {
			return err
		}
		s.res.Pages++
	}
	return nil
}
