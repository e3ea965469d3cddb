package vmcore

import (
	"io"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/zero"
)

// kdumpStage is the pipeline stage of the KDUMP writer: it turns pages
// into their stored form with its own codec.
type kdumpStage struct {
	c         *pageCodec
	shareZero bool // Options.ShareZeroPage
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
	level  *levelFilter // Options.DumpLevel, the part applied
}

func (k *kdumpStage) process(bt *batch) {
	for i := range bt.ents {
		e := &bt.ents[i]
		switch {
		case e.err != nil:
		case k.level.excludes(e.in, e.compressed, e.recFlags, e.pageFlags):
			e.excluded = true
		case e.compressed:
			k.record(bt, e)
		default:
			k.raw(bt, e, e.in, true)
		}
	}
}

// record computes the stored form of a zlib record (doc/FORMAT.md
// §10.3): it is copied as it is into a zlib file, unless it must be
// inflated (-P, a zero page to share, verification); in a file of another
// compression it is inflated and compressed again.
func (k *kdumpStage) record(bt *batch, e *entry) {
	b := k.c.b
	recompress := k.c.flag != PageDescZlib
	if !k.verify && !e.forceRaw && !recompress && !(k.shareZero && zeroCandidate(len(e.in), b)) {
		e.data, e.flags = e.in, PageDescZlib
		return
	}
	page := k.c.scratchPage()
	if err := diskdump.Inflate(page, e.in); err != nil {
		e.err, e.bad = &diskdump.PageError{PFN: e.pfn, Off: e.off, Err: err}, k.verify
		return
	}
	switch {
	case k.shareZero && zero.Is(page):
		e.zero = true
	case e.forceRaw:
		e.data = bt.outPage(b)
		copy(e.data, page)
	case recompress:
		k.raw(bt, e, page, false)
	default:
		e.data, e.flags = e.in, PageDescZlib
	}
}

// raw computes the stored form of a page: compressed, and stored raw
// when that does not shrink it. owned says whether page lives in the
// batch (else it is copied there to be stored raw).
func (k *kdumpStage) raw(bt *batch, e *entry, page []byte, owned bool) {
	if zero.Is(page) {
		if k.shareZero {
			e.zero = true
			return
		}
		if !e.forceRaw {
			if z, ok := k.c.zeroStream(); ok {
				e.data, e.flags = z, k.c.flag
				return
			}
		}
	}
	if !e.forceRaw && (!k.rawAsIs || !owned) {
		n := len(bt.out)
		if out, ok := k.c.compressTo(bt.out[n:n:n+k.c.b-1], page); ok {
			e.data, e.flags = out, k.c.flag
			bt.out = bt.out[:n+len(out)]
			return
		}
	}
	if !owned {
		e.data = bt.outPage(k.c.b)
		copy(e.data, page)
		return
	}
	e.data = page
}

// writeKdump writes a makedumpfile kdump-compressed vmcore (doc/FORMAT.md
// §10.3): the pages go through the pipeline, then the header, the
// sub-header and the bitmaps are written.
func writeKdump(w io.WriterAt, s *source, opt Options, res *Result) error {
	b := s.blockSize()
	rb := s.ramBlocks()
	const sb = 1
	nmax := s.dumpable.Count()
	t := newTableWriter(w, s.hdr.Layout.Order, (1+sb+2*rb)*int64(b), nmax, rb*int64(b))
	var (
		errs  errCollector
		prog  = progress{fn: opt.Progress, total: s.total}
		store = batchStore{t: t, res: res, errs: &errs}
	)
	if opt.ShareZeroPage {
		if err := store.addZeroPage(newPageCodec(b, opt.Compression)); err != nil {
			return err
		}
	}
	err := runPipeline(&pipeConfig{
		pages: s.pages, filter: &pageFilter{s: s, b: b}, b: b, workers: opt.Workers, mask: opt.UncompressedMask,
		newStage: func() stage {
			return &kdumpStage{c: newPageCodec(b, opt.Compression), shareZero: opt.ShareZeroPage,
				rawAsIs: s.hdr.Status.Compressed(), verify: opt.VerifyRecords, level: s.levelFilter()}
		},
		write:    store.write,
		progress: prog.consumed,
	})
	if err != nil {
		return err
	}
	if err := t.flush(); err != nil {
		return err
	}
	res.finish(s, nmax, &errs)

	hdr := kdumpHeader(s, rb, res.PagesMissing, opt.Compression)
	sub, err := kdumpSubHeaderBlock(s, hdr.Layout, res.DumpLevel)
	if err != nil {
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

// addZeroPage writes the one zero page that every all-zero page of a
// KDUMP file shares (Options.ShareZeroPage) at the start of the data
// area, compressed when that shrinks it.
func (s *batchStore) addZeroPage(c *pageCodec) error {
	data, flags := zero.Page(c.b), uint32(0)
	if out, ok := c.zeroStream(); ok {
		data, flags = out, c.flag
	}
	off, err := s.t.appendData(data)
	if err != nil {
		return err
	}
	s.zeroOff, s.zeroSize, s.zeroFl = off, uint32(len(data)), flags
	return nil
}
