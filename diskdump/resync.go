package diskdump

import "fmt"

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
//   - count the records from there, headers only, the way recordWalk
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
// way recordWalk steps over them, to the end of the stream or to a
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
