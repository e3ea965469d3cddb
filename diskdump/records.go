package diskdump

import "fmt"

// step is what a recordWalk method leaves the walk to do next.
type step int

const (
	stepStop   step = iota // the consumer stopped the iteration
	stepNext               // the current PFN is dealt with: go to the next one
	stepRecord             // a record header whose size is known is at pos
	stepBeyond             // the record at pos is not wholly within written_blocks: validate it
)

// recordWalk walks the record stream of a compressed data area
// (doc/FORMAT.md §6.3, §9.5): record k belongs to the k-th PFN of the
// dumped bitmap. It stops after that many records or at written_blocks.
// After a damaged record header (impossible size, or unreadable) the
// stream is resynchronised (see Partition.resync): the records from the
// point found to the end of the stream are the last pages of the dump.
//
// A dump that is not final (Partition.lookPast) is read past
// written_blocks, record by record while each record validates (see
// validate): written_blocks is where the kernel last recorded its
// progress, not where it stopped writing.
type recordWalk struct {
	p     *Partition
	s     *recordStream
	yield func(*Page, error) bool
	wEnd  int64 // end of the written extent (written_blocks)
	limit int64 // nothing is read at or beyond it: min(wEnd, device size)

	pos  int64 // where the next record header is expected
	prev int64 // start of the record before pos; -1 at a known record start

	done     bool // a run error covered the rest of the expected pages
	damaged  bool // a record header was damaged: the stream after it is not the kernel's order
	resynced bool // the stream was picked up again after damage (once only)

	pending    *LostError // a run of lost pages to report at the next PFN
	pendingN   uint64     // pages of the pending run; 0: every page left
	pendingOff int64      // offset the pending run is reported at
	skipTo     uint64     // PFN indexes below it are covered by the last run

	plan    []resyncSeg // runs of records after the damage, all attributed
	planIdx int         // the run being read

	checked uint64 // past written_blocks: blocks below it are known to be written
	sig     []byte // one block, to look for format signatures past written_blocks
}

// compressedPages yields the pages of a compressed data area.
func (p *Partition) compressedPages(yield func(*Page, error) bool) {
	bs := int64(p.bs)
	start := int64(p.first) * bs
	wEnd := int64(p.hdr.WrittenBlocks) * bs
	limit := min(wEnd, p.size)
	readLimit := limit // the stream is never read at or beyond it
	if p.lookPast {
		readLimit = min(max(wEnd, int64(p.hdr.DeviceBlocks)*bs), p.size)
	}
	p.candidates = 0
	w := &recordWalk{p: p, yield: yield, wEnd: wEnd, limit: limit, pos: start, prev: -1,
		s: &recordStream{r: p.r, buf: p.buffer(readLimit - start), bs: bs, start: start, end: start, limit: readLimit, keep: -1}}
	w.run()
}

// run attributes the records to the dumped PFNs in order, then counts the
// records past the expected ones.
func (w *recordWalk) run() {
	var i uint64 // index of the next PFN: record i belongs to it
	for pfn := range w.p.dumped.All() {
		cur := i
		i++
		if w.done || cur < w.skipTo {
			continue
		}
		if w.next(pfn, cur) == stepStop {
			return
		}
	}
	if !w.done && !w.damaged {
		w.unflushed()
	}
}

// next deals with the PFN pfn, whose record is the cur-th: a pending run
// of lost pages, or its record.
func (w *recordWalk) next(pfn, cur uint64) step {
	if w.pending != nil {
		return w.flushPending(pfn, cur)
	}
	switch st := w.locate(pfn, cur); st {
	case stepRecord:
		return w.record(pfn, cur)
	case stepBeyond:
		return w.beyond(pfn, cur)
	default:
		return st
	}
}

// lost reports n pages lost from pfn on, the first at offset off.
func (w *recordWalk) lost(pfn uint64, off int64, r LossReason, n uint64, cause error) step {
	if !w.yield(nil, w.p.lostErr(pfn, off, r, n, cause)) {
		return stepStop
	}
	return stepNext
}

// lostRest reports every page from the cur-th on lost because data ending
// at end lies beyond the written extent or the device, and ends the walk.
func (w *recordWalk) lostRest(pfn, cur uint64, end int64) step {
	r, cause := LostTruncated, error(ErrTruncated)
	if end > w.wEnd {
		r, cause = LostNotWritten, nil
	}
	w.done = true
	return w.lost(pfn, w.pos, r, w.p.want-cur, cause)
}

// flushPending reports the pending run of lost pages from pfn, the cur-th.
func (w *recordWalk) flushPending(pfn, cur uint64) step {
	le, n := w.pending, w.pendingN
	w.pending = nil
	if n == 0 {
		n, w.done = w.p.want-cur, true
	}
	w.skipTo = cur + n
	return w.lost(pfn, w.pendingOff, le.Reason, n, le.Err)
}

// locate finds the record header of pfn, the cur-th record: at pos, after
// the damaged headers resync stepped over, or after resynchronising.
func (w *recordWalk) locate(pfn, cur uint64) step {
	for { // once per record start tried for pfn
		if st := w.skipPlanned(pfn); st != stepRecord {
			return st
		}
		if w.p.lookPast && w.pos+PageRecordSize > w.wEnd {
			return stepBeyond
		}
		if w.pos+PageRecordSize > w.limit {
			return w.lostRest(pfn, cur, w.pos+PageRecordSize)
		}
		var st step
		if err := w.s.ensure(w.pos, PageRecordSize); err != nil {
			st = w.damage(pfn, cur, LostIOError, err)
		} else if rec := decodePageRecord(w.s.bytes(w.pos, PageRecordSize), w.p.hdr.Layout.Order); !rec.sizeKnown(w.p.bs) {
			st = w.damage(pfn, cur, LostCorrupt, fmt.Errorf(
				"diskdump: record size %d is not in 1..%d, the next record cannot be found: %w", rec.size, w.p.bs, ErrCorrupt))
		} else {
			return stepRecord
		}
		if st != stepRecord {
			return st
		}
	}
}

// skipPlanned steps over a further damaged header that resync stepped
// over, if pos is at one: the record expected there is lost (pfn's),
// unless the header was not a record start (the record before it was too
// long). It returns stepRecord when pfn's record is still to be read.
func (w *recordWalk) skipPlanned(pfn uint64) step {
	for w.planIdx < len(w.plan)-1 && w.pos == w.plan[w.planIdx].bad {
		sg := w.plan[w.planIdx]
		w.planIdx++
		w.pos, w.prev = w.plan[w.planIdx].start, -1
		if sg.certain {
			return w.lost(pfn, sg.bad, sg.reason, 1, sg.cause)
		}
	}
	return stepRecord
}

// record reads the record at pos, whose size is known, and yields it as
// pfn's page, or the page lost.
func (w *recordWalk) record(pfn, cur uint64) step {
	rec := decodePageRecord(w.s.bytes(w.pos, PageRecordSize), w.p.hdr.Layout.Order)
	end := w.pos + PageRecordSize + int64(rec.size)
	if w.p.lookPast && end > w.wEnd {
		return w.beyond(pfn, cur)
	}
	if end > w.limit {
		return w.lostRest(pfn, cur, end)
	}
	recOff := w.pos
	w.prev, w.pos = w.pos, end
	if err := w.s.ensure(recOff, end-recOff); err != nil {
		// The record's length is known: only its data is lost.
		return w.lost(pfn, recOff, LostIOError, 1, err)
	}
	data := w.s.bytes(recOff+PageRecordSize, int64(rec.size))
	if err := rec.check(data, w.p.bs); err != nil {
		return w.lost(pfn, recOff, LostCorrupt, 1, err)
	}
	return w.emit(pfn, recOff, rec, data)
}

// emit yields the record at recOff, checked, as pfn's page.
func (w *recordWalk) emit(pfn uint64, recOff int64, rec pageRecord, data []byte) step {
	pg := &w.p.page
	pg.PFN, pg.Off, pg.Data = pfn, recOff+PageRecordSize, data
	pg.Compressed, pg.PageFlags, pg.Flags = rec.flags&PageCompressed != 0, rec.pageFlags, rec.flags
	w.p.stats.Found++
	if !w.yield(pg, nil) {
		return stepStop
	}
	return stepNext
}

// beyond yields the record at pos, which is not wholly within
// written_blocks, as pfn's page (the cur-th) if it validates; else every
// page from pfn on is lost and the walk ends.
func (w *recordWalk) beyond(pfn, cur uint64) step {
	recOff := w.pos
	rec, end, why := w.validate()
	if why != nil {
		w.done = true
		return w.lost(pfn, recOff, why.Reason, w.p.want-cur, why.Err)
	}
	w.prev, w.pos = recOff, end
	w.p.foundBeyond("records while each one validates, up to the first block still carrying its format signature")
	return w.emit(pfn, recOff, rec, w.s.bytes(recOff+PageRecordSize, int64(rec.size)))
}

// validate checks the record at pos past written_blocks, where the kernel
// may or may not have written it: a plausible header (doc/FORMAT.md §6.3),
// data that inflates to exactly one page and ends with the record, or a raw
// record of one page, and no block of it still carrying its own format
// signature (never written). It returns the record and its end, or why the
// record is not taken (a *LostError without a page count: the pages from pos
// on are then lost).
func (w *recordWalk) validate() (rec pageRecord, end int64, why *LostError) {
	pos, s := w.pos, w.s
	notWritten := &LostError{Reason: LostNotWritten}
	if pos+PageRecordSize > s.limit {
		return rec, 0, notWritten
	}
	if why := w.unwritten(pos, pos+PageRecordSize); why != nil {
		return rec, 0, why
	}
	if err := s.ensure(pos, PageRecordSize); err != nil {
		return rec, 0, &LostError{Reason: LostIOError, Err: err}
	}
	rec = decodePageRecord(s.bytes(pos, PageRecordSize), w.p.hdr.Layout.Order)
	end = pos + PageRecordSize + int64(rec.size)
	if !rec.plausible(w.p.bs) || end > s.limit {
		return rec, 0, notWritten
	}
	if why := w.unwritten(pos, end); why != nil {
		return rec, 0, why
	}
	if err := s.ensure(pos, end-pos); err != nil {
		return rec, 0, &LostError{Reason: LostIOError, Err: err}
	}
	if rec.flags&PageCompressed != 0 {
		if len(w.p.zbuf) != w.p.bs {
			w.p.zbuf = make([]byte, w.p.bs)
		}
		if !inflateExact(w.p.zbuf, s.bytes(pos+PageRecordSize, int64(rec.size))) {
			return rec, 0, notWritten
		}
	}
	return rec, end, nil
}

// unwritten checks that no block holding bytes [from, end) at or past
// written_blocks still carries its own format signature (doc/FORMAT.md
// §3.1): such a block was never written by the dump. Blocks are read once.
// It returns nil, or why the bytes are not taken.
func (w *recordWalk) unwritten(from, end int64) *LostError {
	bs := w.s.bs
	o := w.p.hdr.Layout.Order
	for blk := uint64(max(from, w.wEnd) / bs); blk <= uint64((end-1)/bs); blk++ {
		if blk < w.checked {
			continue
		}
		if w.sig == nil {
			w.sig = make([]byte, bs)
		}
		if err := ReadFull(w.p.r, w.sig, int64(blk)*bs); err != nil {
			return &LostError{Reason: LostIOError, Err: err}
		}
		if IsSignatureBlock(w.sig, blk, o) {
			return &LostError{Reason: LostNeverWritten}
		}
		w.checked = blk + 1
	}
	return nil
}

// damage handles the damaged header at pos where the cur-th record (PFN
// pfn) was expected: it resynchronises and reports pfn lost, unless the
// header turned out not to be a record start (stepRecord: pfn's record is
// at the new pos), and plans what follows: a run of lost pages up to the
// resynchronisation point, or up to the end when the stream cannot be
// attributed.
func (w *recordWalk) damage(pfn, cur uint64, r LossReason, cause error) step {
	w.damaged = true
	at := w.pos
	segs, all, phantom, err := w.resyncAfter(cur, at)
	if phantom {
		// No record was lost: the previous record's size was wrong, and
		// the stream goes on at segs[0].start with record cur.
		w.resynced = true
		w.plan, w.planIdx = segs, 0
		w.pos, w.prev = segs[0].start, -1
		return stepRecord
	}
	if w.lost(pfn, at, r, 1, cause) == stepStop {
		return stepStop
	}
	if cur+1 >= w.p.want {
		return stepNext
	}
	w.pendingOff, w.pendingN = at, 0
	if segs == nil {
		w.pending = &LostError{Reason: LostDesync, Err: err}
		return stepNext
	}
	w.resynced = true
	if all {
		// Every damaged header swallowed exactly one record: each run of
		// records found is attributed.
		w.plan, w.planIdx = segs, 0
		w.pos, w.prev = segs[0].start, -1
		return stepNext
	}
	last := segs[len(segs)-1]
	if lost := w.p.want - (cur + 1) - last.n; lost > 0 {
		w.pending, w.pendingN = &LostError{Reason: LostDesync, Err: fmt.Errorf(
			"diskdump: %d record(s) lost between the damaged header at offset 0x%x and the record stream picked up again at offset 0x%x: %w",
			lost, at, last.start, ErrCorrupt)}, lost
	}
	w.pos, w.prev = last.start, -1
	return stepNext
}

// resyncAfter looks for the record stream after the damaged header at at,
// where the cur-th record was expected (see Partition.resync). phantom:
// every record was found, the previous record's size was what was wrong.
func (w *recordWalk) resyncAfter(cur uint64, at int64) (segs []resyncSeg, all, phantom bool, err error) {
	switch {
	case cur+1 >= w.p.want:
		// The last record: nothing after it to resynchronise.
		return nil, false, false, nil
	case w.resynced:
		return nil, false, false, fmt.Errorf("diskdump: damaged record header at offset 0x%x after resynchronising: %w", at, ErrCorrupt)
	}
	from := at + PageRecordSize + 1
	certain := true // at is known to start a record
	if w.prev >= 0 {
		// The previous record's size may be what is wrong: the next
		// record may start inside what it claimed as data.
		from = w.prev + PageRecordSize + 1
		certain = w.p.recordEndsAt(w.s, w.prev, at)
	}
	segs, all, err = w.p.resync(w.s, from, cur, certain, at, w.wEnd)
	return segs, all, all && !certain, err
}

// unflushed counts the records after the expected ones: pages of an
// interrupted (IN_PROGRESS or INCOMPLETED) dump whose bitmap-2 block was
// never flushed. A complete dump has only 'm' padding here, which reads as
// an impossible record size.
func (w *recordWalk) unflushed() {
	first := w.pos
	var extra uint64
	for w.nextExtra() {
		extra++
	}
	if extra > 0 {
		w.p.stats.Expected += extra
		w.yield(nil, w.p.lostErr(NoPFN, first, LostUnflushed, extra, nil))
	}
}

// nextExtra steps over the record at pos if there is one: within
// written_blocks a header of known size and flags, past it (dumps that are
// not final) a record that validates.
func (w *recordWalk) nextExtra() bool {
	if w.p.lookPast && w.pos+PageRecordSize > w.wEnd {
		return w.skipValid()
	}
	if w.pos+PageRecordSize > w.limit || w.s.ensure(w.pos, PageRecordSize) != nil {
		return false
	}
	rec := decodePageRecord(w.s.bytes(w.pos, PageRecordSize), w.p.hdr.Layout.Order)
	if !rec.sizeKnown(w.p.bs) || rec.flags&^(PageCompressed|PageMappingAnon) != 0 {
		return false
	}
	end := w.pos + PageRecordSize + int64(rec.size)
	if w.p.lookPast && end > w.wEnd {
		return w.skipValid()
	}
	w.pos = end
	return true
}

// skipValid steps over the record at pos if it validates.
func (w *recordWalk) skipValid() bool {
	_, end, why := w.validate()
	if why != nil {
		return false
	}
	w.pos = end
	return true
}
