package vmcore

import (
	"bytes"
	"io"

	"github.com/dumpkit/dumpkit/diskdump"
)

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

// writeDiskdump writes a DISKDUMP vmcore (doc/FORMAT.md §10.2): the
// partition's header (header_version 1) and sub-header, bitmap 1, a
// PFN-indexed bitmap 2 of the pages stored, the page_desc table and the
// records as they are (no recompression; only -P pages are decompressed).
//
// [REC] The file always has two bitmaps (bitmap_blocks = 2R), also for a
// partition with one: bitmap 2 then says which pages were recovered, and
// readers need no single-bitmap heuristics (libkdumpfile misreads small
// single-bitmap files, oracle README).
func writeDiskdump(w io.WriterAt, s *source, opt Options, res *Result) error {
	b := s.blockSize()
	sb, rb := s.subBlocks(), s.ramBlocks()
	hdr := *s.hdr
	hdr.Signature = diskdump.DumpSignature
	hdr.Version = diskdump.DiskDumpHeaderVersion // doc/FORMAT.md §13 item 15
	hdr.BitmapBlocks = uint32(2 * rb)

	nmax := s.dumpable.Count()
	t := newTableWriter(w, hdr.Layout.Order, (1+sb+2*rb)*int64(b), nmax, rb*int64(b))
	var (
		errs errCollector
		prog = progress{fn: opt.Progress, total: s.total}
		err  error
	)
	if opt.VerifyRecords {
		err = verifyRecords(t, s, opt, res, &prog, &errs)
	} else {
		err = copyRecords(t, s, opt, res, &prog, &errs)
	}
	if err != nil {
		return err
	}
	if err := t.flush(); err != nil {
		return err
	}
	res.finish(s, nmax, &errs)
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

// copyRecords is the page loop of writeDiskdump without VerifyRecords:
// every record is copied as it is, in this goroutine (copying needs no
// other core); only -P records are inflated.
func copyRecords(t *tableWriter, s *source, opt Options, res *Result, prog *progress, errs *errCollector) error {
	b := s.blockSize()
	page := make([]byte, b)
	filter := pageFilter{s: s, b: b}
	for pg := range s.keptPages(&filter, prog, errs, res) {
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
	return nil
}

// verifyRecords is the page loop of writeDiskdump with VerifyRecords:
// every zlib record is inflated (on every core, PFN order kept, see
// runPipeline) and must give exactly one page with a matching Adler-32.
// A record that does not is not copied: its page is lost (bitmap 2 clear,
// a *PageError in the result) like a page the partition lost.
func verifyRecords(t *tableWriter, s *source, opt Options, res *Result, prog *progress, errs *errCollector) error {
	b := s.blockSize()
	store := batchStore{t: t, res: res, errs: errs, keepPageFlags: true}
	return runPipeline(&pipeConfig{
		pages: s.pages, filter: &pageFilter{s: s, b: b}, b: b, workers: opt.Workers, mask: opt.UncompressedMask,
		newStage: func() stage { return newVerifyStage(b, opt.StrictAnon, s.levelFilter()) },
		write:    store.write,
		progress: prog.consumed,
	})
}

// verifyStage is the pipeline stage of VerifyRecords: it inflates every
// zlib record of a batch. A -P record keeps its inflated page as the data
// to store; the others keep the stream.
type verifyStage struct {
	b          int
	strictAnon bool
	level      *levelFilter // Options.DumpLevel, the part applied
	page       []byte       // scratch page
	// good is the last small zlib record that inflated correctly (in
	// practice the zero page's stream, a third of a typical machine): a
	// record with the same bytes inflates the same way, so it is not
	// inflated again.
	good []byte
}

func newVerifyStage(b int, strictAnon bool, level *levelFilter) *verifyStage {
	return &verifyStage{b: b, strictAnon: strictAnon, level: level, page: make([]byte, b), good: make([]byte, 0, b/32)}
}

func (v *verifyStage) process(bt *batch) {
	for i := range bt.ents {
		e := &bt.ents[i]
		if e.err != nil {
			continue
		}
		if v.level.excludes(e.in, e.compressed, e.recFlags, e.pageFlags) {
			e.excluded = true
			continue
		}
		e.data = e.in
		if e.compressed && !v.inflate(bt, e) {
			continue
		}
		e.flags = diskdumpFlags(e.recFlags, e.compressed && !e.forceRaw, v.strictAnon)
	}
}

// inflate checks a zlib record: it must give exactly b bytes and a
// matching Adler-32 (diskdump.Inflate). It reports false, with e.err set,
// for a damaged record.
func (v *verifyStage) inflate(bt *batch, e *entry) bool {
	small := len(e.in) <= cap(v.good)
	if small && !e.forceRaw && len(v.good) > 0 && bytes.Equal(e.in, v.good) {
		return true
	}
	dst := v.page
	if e.forceRaw {
		dst = bt.outPage(v.b)
	}
	if err := diskdump.Inflate(dst, e.in); err != nil {
		e.err, e.bad = &diskdump.PageError{PFN: e.pfn, Off: e.off, Err: err}, true
		return false
	}
	if small {
		v.good = append(v.good[:0], e.in...)
	}
	if e.forceRaw {
		e.data = dst
	}
	return true
}
