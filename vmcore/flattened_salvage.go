package vmcore

import (
	"fmt"
	"io"
	"math"
	"math/bits"

	"github.com/dumpkit/dumpkit/diskdump"
)

// Repair of a KDUMP file rebuilt from a torn flattened stream
// (doc/FLATTENED.md §7, doc/FORMAT.md §10.3). The file's pages are found
// through bitmap 2 and the page_desc table: the n-th set bit of bitmap 2
// owns the n-th descriptor. A page is kept when its bitmap bits, its
// descriptor and its data all arrived; every other page is cleared from
// bitmap 2 and the kept descriptors move down to their new ranks, so that no
// reader ever pairs a page with bytes that belong to another one.

// salvageChunk is how many bitmap bytes (and descriptor-table bytes) the
// repair handles at a time, whatever the size of the machine.
const salvageChunk = 64 << 10

// kdumpLayout locates the parts of a KDUMP file (doc/FORMAT.md §10.3).
type kdumpLayout struct {
	h        *diskdump.Header
	b        int64 // block size = page size
	bm1Off   int64 // bitmap 1 (pages present)
	bm2Off   int64 // bitmap 2 (pages stored)
	bmBytes  int64 // bytes of each bitmap that hold bits below max_mapnr
	tableOff int64 // first page_desc
}

// readKdumpLayout parses the header at the start of f; its fixed part must
// have arrived.
func readKdumpLayout(f io.ReaderAt, cov *FlattenedCoverage) (*kdumpLayout, error) {
	buf := make([]byte, 64<<10)
	if err := readZeroFilled(f, buf, 0); err != nil {
		return nil, err
	}
	h, err := diskdump.ParseHeader(buf, diskdump.HeaderCheck{})
	if err != nil {
		return nil, fmt.Errorf("vmcore: torn flattened stream: %w: %w", ErrFlattenedNoHeader, err)
	}
	if !cov.Contains(0, int64(h.Layout.HeaderFixedSize())) {
		return nil, fmt.Errorf("vmcore: torn flattened stream: the KDUMP header did not arrive whole: %w", ErrFlattenedNoHeader)
	}
	b := int64(h.BlockSize)
	rb := int64(diskdump.BitmapBlocksFor(uint64(h.MaxMapnr), int(b)))
	l := &kdumpLayout{h: h, b: b, bm1Off: (1 + int64(h.SubHdrSize)) * b, bmBytes: (int64(h.MaxMapnr) + 7) / 8}
	l.bm2Off = l.bm1Off
	if int64(h.BitmapBlocks) == 2*rb {
		l.bm2Off += rb * b
	}
	l.tableOff = (1 + int64(h.SubHdrSize) + int64(h.BitmapBlocks)) * b
	return l, nil
}

// kdumpSalvage is the state of one repair.
type kdumpSalvage struct {
	l        *kdumpLayout
	f        ReadWriterAt
	cov      *FlattenedCoverage
	size     int64 // bytes the records gave the file
	unknown  uint64
	oldRank  uint64 // descriptors of the arrived bitmap 2 seen
	newRank  uint64 // descriptors kept
	lost     uint64
	inBuf    []byte // descriptors oldRank-inIdx … read ahead
	inBase   uint64 // rank of inBuf[0]
	outBuf   []byte // kept descriptors not written yet
	outBase  uint64 // rank of outBuf[0]
	bm1, bm2 []byte
}

// salvageKdump repairs a KDUMP file rebuilt from a torn stream and marks it
// incomplete.
func salvageKdump(res *UnflattenResult, f ReadWriterAt, limit int64) error {
	l, err := readKdumpLayout(f, res.Rearrange.Coverage)
	if err != nil {
		return err
	}
	if l.tableOff > limit {
		return fmt.Errorf("vmcore: torn flattened stream: the KDUMP header puts the page table at %#x, past the size limit %#x: %w",
			l.tableOff, limit, ErrFlattenedNoHeader)
	}
	s := &kdumpSalvage{l: l, f: f, cov: res.Rearrange.Coverage, size: res.Size, unknown: uint64(l.h.MaxMapnr),
		bm1: make([]byte, salvageChunk), bm2: make([]byte, salvageChunk)}
	for off := int64(0); off < l.bmBytes; off += salvageChunk {
		if err := s.chunk(off, min(salvageChunk, l.bmBytes-off)); err != nil {
			return err
		}
	}
	if err := s.finishTable(); err != nil {
		return err
	}
	st := l.h.Status | KdumpStatusIncomplete
	var b [4]byte
	l.h.Layout.Order.PutUint32(b[:], uint32(st))
	if _, err := f.WriteAt(b[:], int64(l.h.Layout.FieldOffset("status"))); err != nil {
		return fmt.Errorf("vmcore: marking the rebuilt vmcore incomplete: %w", err)
	}
	l.h.Status = st
	res.Header, res.Pages, res.Lost, res.UnknownFromPFN = l.h, s.newRank, s.lost, s.unknown
	res.Size = max(res.Size, l.tableOff+int64(s.newRank)*pageDescSize)
	return nil
}

// chunk repairs the n bitmap bytes at offset off of each bitmap.
func (s *kdumpSalvage) chunk(off, n int64) error {
	l := s.l
	if l.bm2Off+off >= s.size {
		// Nothing of this part of bitmap 2 arrived, and past the end of
		// the file there is nothing to clear.
		s.unknown = min(s.unknown, uint64(off)*8)
		return nil
	}
	bm1, bm2 := s.bm1[:n], s.bm2[:n]
	if err := readZeroFilled(s.f, bm1, l.bm1Off+off); err != nil {
		return err
	}
	if err := readZeroFilled(s.f, bm2, l.bm2Off+off); err != nil {
		return err
	}
	known := n
	if !s.cov.Contains(l.bm2Off+off, n) {
		known = 0
		for known < n && s.cov.Contains(l.bm2Off+off+known, 1) {
			known++
		}
		s.unknown = min(s.unknown, uint64(off+known)*8)
	}
	if uint64(off)*8 >= s.unknown {
		known = 0
	}
	changed := false
	for i := range n {
		if bm2[i] == 0 {
			continue
		}
		if i < known && s.pastTable(uint64(off+i+1)*8) {
			// The descriptors of this byte's pages lie past the end of the
			// file: every page is lost, no need to look at each.
			c := uint64(bits.OnesCount8(bm2[i]))
			s.oldRank, s.lost, bm2[i], changed = s.oldRank+c, s.lost+c, 0, true
			continue
		}
		was := bm2[i]
		for bit := range 8 {
			if bm2[i]&(1<<bit) == 0 {
				continue
			}
			pfn := uint64(off+i)*8 + uint64(bit)
			keep, err := s.page(pfn, i < known, bm1[i]&(1<<bit) != 0)
			if err != nil {
				return err
			}
			if !keep {
				bm2[i] &^= 1 << bit
			}
		}
		changed = changed || bm2[i] != was
	}
	if !changed {
		return nil
	}
	if _, err := s.f.WriteAt(bm2, l.bm2Off+off); err != nil {
		return fmt.Errorf("vmcore: repairing bitmap 2 of the rebuilt vmcore at %#x: %w", l.bm2Off+off, err)
	}
	return nil
}

// pastTable reports whether the next descriptor lies past the end of the
// file, for pages all below the PFN end (within max_mapnr).
func (s *kdumpSalvage) pastTable(end uint64) bool {
	return end <= uint64(s.l.h.MaxMapnr) && s.l.tableOff+int64(s.oldRank)*pageDescSize >= s.size
}

// page decides whether the page pfn, set in bitmap 2, is kept, and moves
// its descriptor to its new rank when it is. known says whether every
// bitmap-2 byte up to this one arrived (otherwise the page's rank, and so
// its descriptor, is unknown); ram is its bit in bitmap 1.
func (s *kdumpSalvage) page(pfn uint64, known, ram bool) (bool, error) {
	if !known || pfn >= uint64(s.l.h.MaxMapnr) {
		return false, nil
	}
	rank := s.oldRank
	s.oldRank++
	desc, err := s.desc(rank)
	if err != nil {
		return false, err
	}
	if !ram || !s.arrived(rank, desc) {
		s.lost++
		return false, nil
	}
	return true, s.keep(desc)
}

// desc returns the descriptor of old rank r; ranks are asked in ascending
// order, so the table is read ahead in chunks.
func (s *kdumpSalvage) desc(r uint64) ([]byte, error) {
	const per = salvageChunk / pageDescSize
	if s.inBuf == nil || r < s.inBase || r >= s.inBase+per {
		if s.inBuf == nil {
			s.inBuf = make([]byte, per*pageDescSize)
		}
		s.inBase = r
		if err := readZeroFilled(s.f, s.inBuf, s.l.tableOff+int64(r)*pageDescSize); err != nil {
			return nil, err
		}
	}
	i := (r - s.inBase) * pageDescSize
	return s.inBuf[i : i+pageDescSize], nil
}

// arrived reports whether the descriptor of old rank r and the data it
// points to arrived and make sense for a page of the file.
func (s *kdumpSalvage) arrived(r uint64, desc []byte) bool {
	l := s.l
	if !s.cov.Contains(l.tableOff+int64(r)*pageDescSize, pageDescSize) {
		return false
	}
	o := l.h.Layout.Order
	off, size, flags := int64(o.Uint64(desc[0:])), int64(o.Uint32(desc[8:])), o.Uint32(desc[12:])
	switch {
	case size <= 0 || size > l.b:
		return false
	case flags == 0 && size != l.b:
		return false
	case off < l.tableOff || off > math.MaxInt64-size || off+size > s.size:
		return false
	}
	return s.cov.Contains(off, size)
}

// keep appends a descriptor at the next new rank. New ranks never pass old
// ones, so the table is rewritten in place behind the read-ahead.
func (s *kdumpSalvage) keep(desc []byte) error {
	if s.outBuf == nil {
		s.outBuf = make([]byte, 0, salvageChunk/pageDescSize*pageDescSize)
	}
	s.outBuf = append(s.outBuf, desc...)
	s.newRank++
	if len(s.outBuf) == cap(s.outBuf) {
		return s.flush()
	}
	return nil
}

// flush writes the kept descriptors not written yet.
func (s *kdumpSalvage) flush() error {
	if len(s.outBuf) == 0 {
		return nil
	}
	off := s.l.tableOff + int64(s.outBase)*pageDescSize
	if _, err := s.f.WriteAt(s.outBuf, off); err != nil {
		return fmt.Errorf("vmcore: repairing the page_desc table of the rebuilt vmcore at %#x: %w", off, err)
	}
	s.outBase += uint64(len(s.outBuf) / pageDescSize)
	s.outBuf = s.outBuf[:0]
	return nil
}

// finishTable writes the last kept descriptors and zeroes the entries the
// dropped pages left behind, up to the end of what arrived.
func (s *kdumpSalvage) finishTable() error {
	if err := s.flush(); err != nil {
		return err
	}
	from := s.l.tableOff + int64(s.newRank)*pageDescSize
	to := min(s.l.tableOff+int64(s.oldRank)*pageDescSize, s.size)
	zero := make([]byte, min(salvageChunk, max(to-from, 0)))
	for off := from; off < to; off += int64(len(zero)) {
		if _, err := s.f.WriteAt(zero[:min(int64(len(zero)), to-off)], off); err != nil {
			return fmt.Errorf("vmcore: clearing dropped page descriptors of the rebuilt vmcore at %#x: %w", off, err)
		}
	}
	return nil
}

// flattenedKdumpLimit bounds the rebuilt file of a stream whose first record
// is a KDUMP header, as makedumpfile writes it (doc/FLATTENED.md §2): the
// headers, bitmaps and table for max_mapnr pages and every page stored raw,
// plus the shared zero page. Any other stream gets
// DefaultFlattenedMaxFileSize.
func flattenedKdumpLimit(src io.ReaderAt, size int64) int64 {
	def := DefaultFlattenedMaxFileSize(size)
	fr, err := NewFlattenedReader(src, size, def)
	if err != nil || !fr.Next() {
		return def
	}
	rec := fr.Record()
	if rec.Off != 0 {
		return def
	}
	buf := make([]byte, 4096)
	if err := readFlattenedAt(src, buf[:min(rec.Size, int64(len(buf)))], rec.DataOff()); err != nil {
		return def
	}
	h, err := diskdump.ParseHeader(buf, diskdump.HeaderCheck{})
	if err != nil || h.Signature != diskdump.KdumpSignature || h.MaxMapnr == math.MaxUint32 {
		return def
	}
	b, m := int64(h.BlockSize), int64(h.MaxMapnr)
	return min(def, (3+int64(h.SubHdrSize)+int64(h.BitmapBlocks))*b+m*(pageDescSize+b))
}
