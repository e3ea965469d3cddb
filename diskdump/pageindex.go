package diskdump

import (
	"bytes"
	"fmt"
)

// scan reads the record headers of the compressed data area once, in
// order, and keeps the offset of every indexStride-th record. It stops at
// the expected number of records, at the end of the written extent or the
// device, or at a header whose size leaves the next record unknown.
func (pr *PageReader) scan() {
	p := pr.p
	bs := int64(p.bs)
	pos := int64(p.first) * bs
	limit := min(int64(p.hdr.WrittenBlocks)*bs, p.size)
	if p.lookPast {
		// The header's written_blocks is only a hint for a dump that is
		// not final: index as far as the record walk, which checks every
		// record past it, finds pages.
		limit = p.walkedExtent()
	}
	var k uint64
	for ; k < p.want; k++ {
		if k%indexStride == 0 {
			pr.index = append(pr.index, pos)
		}
		if pos+PageRecordSize > limit {
			pr.stopAt = &PageError{PFN: NoPFN, Off: pos, Err: fmt.Errorf("%w: record %d of %d lies beyond the written extent", ErrTruncated, k, p.want)}
			break
		}
		hdr, err := pr.bytes(pos, PageRecordSize)
		if err != nil {
			pr.stopAt = &PageError{PFN: NoPFN, Off: pos, Err: err}
			break
		}
		rec := decodePageRecord(hdr, p.hdr.Layout.Order)
		if !rec.sizeKnown(p.bs) {
			pr.stopAt = &PageError{PFN: NoPFN, Off: pos, Err: fmt.Errorf(
				"diskdump: record %d: size %d is not in 1..%d, the records after it cannot be found: %w", k, rec.size, p.bs, ErrCorrupt)}
			break
		}
		pos += PageRecordSize + int64(rec.size)
	}
	pr.nrec = k
	if len(pr.index) > 0 {
		pr.curK, pr.curPos = 0, pr.index[0]
	}
}

// bytes returns device bytes [off, off+n), n at most windowSize, through
// the read window. The slice is valid until the next call.
func (pr *PageReader) bytes(off, n int64) ([]byte, error) {
	if off >= pr.winOff && off+n <= pr.winOff+int64(len(pr.win)) {
		return pr.win[off-pr.winOff : off-pr.winOff+n], nil
	}
	m := min(int64(len(pr.winBuf)), pr.p.size-off)
	if m < n {
		return nil, fmt.Errorf("diskdump: %d bytes at offset 0x%x are beyond the device: %w", n, off, ErrTruncated)
	}
	if err := ReadFull(pr.p.r, pr.winBuf[:m], off); err != nil {
		pr.win = nil
		if m == n {
			return nil, err
		}
		// A read error in the window: try just what is asked.
		if err := ReadFull(pr.p.r, pr.winBuf[:n], off); err != nil {
			return nil, err
		}
		m = n
	}
	pr.win, pr.winOff = pr.winBuf[:m], off
	return pr.win[:n], nil
}

// recordPage reads the k-th record, pfn's page, from a record stream.
func (pr *PageReader) recordPage(pfn, k uint64, dst []byte) ([]byte, error) {
	p := pr.p
	if k >= pr.nrec {
		return nil, &PageError{PFN: pfn, Off: -1, Err: fmt.Errorf("%w: record %d is after the end of the readable record stream (%d records): %w",
			ErrPageAbsent, k, pr.nrec, pr.stopErr())}
	}
	// Walk from the nearest index entry, or from the cursor when it is
	// closer (sequential reads).
	j, pos := k/indexStride*indexStride, pr.index[k/indexStride]
	if pr.curK <= k && pr.curK > j {
		j, pos = pr.curK, pr.curPos
	}
	for ; j < k; j++ {
		hdr, err := pr.bytes(pos, PageRecordSize)
		if err != nil {
			return nil, &PageError{PFN: pfn, Off: pos, Err: err}
		}
		pos += PageRecordSize + int64(decodePageRecord(hdr, p.hdr.Layout.Order).size)
	}
	hdr, err := pr.bytes(pos, PageRecordSize)
	if err != nil {
		return nil, &PageError{PFN: pfn, Off: pos, Err: err}
	}
	rec := decodePageRecord(hdr, p.hdr.Layout.Order)
	pr.curK, pr.curPos = k+1, pos+PageRecordSize+int64(rec.size)
	data, err := pr.bytes(pos+PageRecordSize, int64(rec.size))
	if err != nil {
		return nil, &PageError{PFN: pfn, Off: pos, Err: err}
	}
	if err := rec.check(data, p.bs); err != nil {
		return nil, &PageError{PFN: pfn, Off: pos, Err: err}
	}
	pg := Page{PFN: pfn, Off: pos + PageRecordSize, Data: data, Compressed: rec.flags&PageCompressed != 0, blockSize: p.bs}
	return pr.decompress(&pg, dst)
}

// decompress returns the page of a record; a zlib record equal to zeroRec
// is a zero page without being inflated.
func (pr *PageReader) decompress(pg *Page, dst []byte) ([]byte, error) {
	p, data := pr.p, pg.Data
	if pg.Compressed && pr.zeroRec != nil && bytes.Equal(data, pr.zeroRec) {
		if cap(dst) < p.bs {
			dst = make([]byte, p.bs)
		}
		dst = dst[:p.bs]
		clear(dst)
		return dst, nil
	}
	out, err := pg.Decompress(dst)
	if err == nil && pg.Compressed && pr.zeroRec == nil && len(data) <= maxZeroRec {
		if pr.zeroPage == nil {
			pr.zeroPage = make([]byte, p.bs)
		}
		if bytes.Equal(out, pr.zeroPage) {
			pr.zeroRec = bytes.Clone(data)
		}
	}
	return out, err
}

// stopErr is why the record index ends early, ErrTruncated if not known.
func (pr *PageReader) stopErr() error {
	if pr.stopAt != nil {
		return pr.stopAt
	}
	return ErrTruncated
}

// walkedExtent is the end of the last record Pages yields: how far the
// record stream of a dump that is not final reaches on the disk.
func (p *Partition) walkedExtent() int64 {
	end := int64(p.first) * int64(p.bs)
	for pg, err := range p.Pages() {
		if err == nil {
			end = max(end, pg.Off+int64(len(pg.Data)))
		}
	}
	return end
}
