package vmcore

import (
	"iter"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/dumpkit/dumpkit/diskdump"
)

// The ordered batch pipeline of the DISKDUMP and KDUMP writers. Pages
// travel from the page sequence through the workers to the output in
// batches, so that goroutines synchronise once per batch, not once per
// page, and the pages are stored in the order of the sequence (PFN order)
// whatever the number of workers. There is no reader or writer goroutine:
// each worker takes a free batch, fills it from the sequence (one worker
// at a time), processes it, and hands it to the in-order writer; the
// worker that completes the oldest batch in flight writes it and every
// later one already done. No goroutine waits for another to be scheduled
// before it can go on (a reader or writer goroutine readied by a busy
// worker waits for the scheduler to preempt it, up to 10 ms, while the
// workers drain the queue); memory is bounded by the batches.

// batchBytes is about the record data of one batch: 64 pages of 4 KiB,
// 4 of 64 KiB.
const batchBytes = 256 << 10

// maxBatches bounds the batches in flight (32 MiB of buffers).
const maxBatches = 64

// batchPages is the number of pages per batch for page size b.
func batchPages(b int) int { return max(1, batchBytes/b) }

// entry is one element of a batch: a page with its record and, once the
// batch is processed, its stored form; or a page the sequence reported
// lost.
type entry struct {
	pfn        uint64
	off        int64  // partition offset of the record data
	in         []byte // record data, a slice of batch.in
	compressed bool   // in is a zlib stream
	forceRaw   bool   // -P (Options.UncompressedMask): store uncompressed
	recFlags   uint32 // record flags (bit 0 COMPRESSED, bit 1 MAPPING_ANON)
	pageFlags  uint64 // record page_flags

	data     []byte // result: bytes to store (in, batch.out or a codec's buffer)
	flags    uint32 // result: page_desc.flags
	zero     bool   // result: all-zero page that shares the zero page (KDUMP)
	excluded bool   // result: left out by Options.DumpLevel
	err      error  // the page is lost (from the sequence or from processing)
	bad      bool   // err is a zlib record rejected by verification
}

// batch is a run of consecutive entries of the page sequence, with
// buffers for their data: in holds the copied records, out the results of
// processing, at most one page each.
type batch struct {
	ents []entry
	in   []byte
	out  []byte
	seq  uint64 // position in the sequence of batches
}

func newBatch(b, n int) *batch {
	return &batch{ents: make([]entry, 0, n), in: make([]byte, 0, n*b), out: make([]byte, 0, n*b)}
}

func (bt *batch) reset() {
	clear(bt.ents) // drop references to errors and codec buffers
	bt.ents, bt.in, bt.out = bt.ents[:0], bt.in[:0], bt.out[:0]
}

// full reports whether the batch takes no more entries. Errors count too,
// so that a run of lost pages cannot grow a batch.
func (bt *batch) full() bool { return len(bt.ents) == cap(bt.ents) }

func (bt *batch) addErr(err error) { bt.ents = append(bt.ents, entry{err: err}) }

// addPage copies the page's record into the batch. The filter has checked
// that the record is at most a page.
func (bt *batch) addPage(pg *diskdump.Page, mask uint64) {
	n := len(bt.in)
	bt.in = append(bt.in, pg.Data...)
	bt.ents = append(bt.ents, entry{
		pfn: pg.PFN, off: pg.Off, in: bt.in[n:len(bt.in):len(bt.in)], compressed: pg.Compressed,
		forceRaw: mask != 0 && pg.PageFlags&mask != 0, recFlags: pg.Flags, pageFlags: pg.PageFlags,
	})
}

// outPage reserves one page of bt.out.
func (bt *batch) outPage(b int) []byte {
	n := len(bt.out)
	bt.out = bt.out[:n+b]
	return bt.out[n : n+b : n+b]
}

// stage computes the stored form of every page of a batch. Each worker
// has its own.
type stage interface {
	process(bt *batch)
}

// pipeConfig describes one run of the pipeline.
type pipeConfig struct {
	pages   iter.Seq2[*diskdump.Page, error]
	filter  *pageFilter
	b       int    // page size
	workers int    // 0: GOMAXPROCS
	mask    uint64 // Options.UncompressedMask
	// newStage makes the stage of a worker; it is called once per worker.
	newStage func() stage
	// write stores a processed batch. It is called by one worker at a
	// time, for the batches in sequence order; its first error stops the
	// run.
	write func(bt *batch) error
	// progress, if not nil, is called from the goroutine that called
	// runPipeline after each batch that goroutine processed, with the
	// bytes of the partition consumed so far.
	progress func(consumed int64)
}

// pipeline is the shared state of the workers of one run.
type pipeline struct {
	cfg  *pipeConfig
	free chan *batch // batches not in flight

	fillMu   sync.Mutex
	next     func() (*diskdump.Page, error, bool)
	seq      uint64 // sequence number of the next batch filled
	eof      bool
	consumed atomic.Int64 // bytes of the partition read (progress)

	writeMu   sync.Mutex
	pending   []*batch // done batches waiting for their turn, by seq modulo len
	nextWrite uint64
	err       error // the first error of write; no batch is written after it
	failed    atomic.Bool
}

// runPipeline runs the page sequence through the pipeline and returns the
// first error of cfg.write.
func runPipeline(cfg *pipeConfig) error {
	workers := cfg.workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// Enough batches that a worker rarely waits for a free one while
	// another finishes the oldest batch: 2·workers+2 batches of
	// 2·batchBytes, 3 MiB for two workers, at most 32 MiB (more workers
	// then wait for batches).
	nbatch := min(2*workers+2, maxBatches)
	if workers == 1 {
		nbatch = 1
	}
	next, stop := iter.Pull2(cfg.pages)
	defer stop()
	p := &pipeline{cfg: cfg, next: next, free: make(chan *batch, nbatch), pending: make([]*batch, nbatch)}
	for range nbatch {
		p.free <- newBatch(cfg.b, batchPages(cfg.b))
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(func() { p.work(cfg.newStage(), nil) })
	}
	// This goroutine is a worker too, and the one that reports progress.
	var onBatch func()
	if cfg.progress != nil {
		onBatch = func() { cfg.progress(p.consumed.Load()) }
	}
	p.work(cfg.newStage(), onBatch)
	wg.Wait()
	return p.err
}

// work is the loop of one worker; onBatch, if not nil, is called after
// each batch it processed.
func (p *pipeline) work(st stage, onBatch func()) {
	for !p.failed.Load() {
		bt := <-p.free
		if !p.fill(bt) {
			p.free <- bt
			return
		}
		st.process(bt)
		p.put(bt)
		if onBatch != nil {
			onBatch()
		}
	}
}

// fill puts the next entries of the page sequence into bt and gives it
// the next sequence number; it reports false, with bt empty, at the end
// of the sequence or after a write error.
func (p *pipeline) fill(bt *batch) bool {
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
			if err := p.cfg.filter.accept(pg); err != nil {
				bt.addErr(err)
			} else {
				bt.addPage(pg, p.cfg.mask)
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
func (p *pipeline) put(bt *batch) {
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
			if err := p.cfg.write(w); err != nil {
				p.err = err
				p.failed.Store(true)
			}
		}
		p.free <- w
	}
}
