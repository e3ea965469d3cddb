package vmcore

import (
	"bytes"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/dumpkit/dumpkit/diskdump"
)

// Verification of zlib records before they are copied into a vmcore
// (Options.VerifyRecords). The DISKDUMP writer copies the kernel's
// records as they are; a record whose zlib stream is damaged would only
// show when crash reads that page. With verification every record is
// inflated, on every core, in batches: a bounded pipeline keeps the PFN
// order of the page sequence.

// verifyBatchPages is the number of records in one batch: large enough
// that the channel hand-offs cost nothing next to inflating, small enough
// that the batches in flight stay a few MiB.
const verifyBatchPages = 64

// verifyRec is one record of a batch and, after check, its outcome.
type verifyRec struct {
	pfn        uint64
	off        int64 // partition offset of the record data
	pageFlags  uint64
	flags      uint32 // record flags
	compressed bool   // the record is a zlib stream
	forceRaw   bool   // -P: store the page uncompressed
	start, end int    // the record data in verifyBatch.buf

	data []byte // result: the bytes to store (zlib stream or raw page)
	err  error  // result: *PageError, the page is lost
}

// storedCompressed reports whether the data to store is a zlib stream.
func (r *verifyRec) storedCompressed() bool { return r.compressed && !r.forceRaw }

// verifyBatch is a batch of consecutive records with its own storage.
type verifyBatch struct {
	b    int
	recs []verifyRec
	buf  []byte // record data, cap verifyBatchPages*b
	raw  []byte // inflated -P pages, cap verifyBatchPages*b (nil without a mask)
	page []byte // scratch page
	// good is the last small zlib record that inflated correctly (in
	// practice the zero page's stream, a third of a typical machine): a
	// record with the same bytes inflates the same way, so it is not
	// inflated again.
	good []byte
	done chan struct{}
}

func newVerifyBatch(b int, mask uint64) *verifyBatch {
	vb := &verifyBatch{
		b: b, recs: make([]verifyRec, 0, verifyBatchPages), buf: make([]byte, 0, verifyBatchPages*b),
		page: make([]byte, b), good: make([]byte, 0, b/32), done: make(chan struct{}, 1),
	}
	if mask != 0 {
		vb.raw = make([]byte, 0, verifyBatchPages*b)
	}
	return vb
}

func (vb *verifyBatch) reset() {
	vb.recs, vb.buf = vb.recs[:0], vb.buf[:0]
	if vb.raw != nil {
		vb.raw = vb.raw[:0]
	}
}

// add copies a page (accepted by pageFilter: at most b bytes) into the
// batch and reports whether the batch is full.
func (vb *verifyBatch) add(pg *vpage, mask uint64) bool {
	start := len(vb.buf)
	vb.buf = append(vb.buf, pg.Data...)
	vb.recs = append(vb.recs, verifyRec{
		pfn: pg.PFN, off: pg.Off, pageFlags: pg.PageFlags, flags: pg.Flags, compressed: pg.Compressed,
		forceRaw: pg.Compressed && mask != 0 && pg.PageFlags&mask != 0, start: start, end: len(vb.buf),
	})
	return len(vb.recs) == cap(vb.recs)
}

// check inflates every zlib record of the batch: it must give exactly b
// bytes and a matching Adler-32 (inflatePage). A -P record keeps its
// inflated page as the data to store; the others keep the stream.
func (vb *verifyBatch) check() {
	for i := range vb.recs {
		r := &vb.recs[i]
		in := vb.buf[r.start:r.end:r.end]
		r.data, r.err = in, nil
		if !r.compressed {
			continue
		}
		small := len(in) <= cap(vb.good)
		if small && !r.forceRaw && len(vb.good) > 0 && bytes.Equal(in, vb.good) {
			continue
		}
		dst := vb.page
		if r.forceRaw {
			n := len(vb.raw)
			vb.raw = vb.raw[:n+vb.b]
			dst = vb.raw[n : n+vb.b : n+vb.b]
		}
		if err := diskdump.Inflate(dst, in); err != nil {
			r.err = &diskdump.PageError{PFN: r.pfn, Off: r.off, Err: err}
			continue
		}
		if small {
			vb.good = append(vb.good[:0], in...)
		}
		if r.forceRaw {
			r.data = dst
		}
	}
}

// verifyPages runs the page sequence through batches checked by workers
// goroutines (0: GOMAXPROCS). accept is called in this goroutine for each
// element of the sequence, in order, and says whether the page goes on
// (errors and filtered pages are its business). consume is called for each
// accepted record, in sequence order, from one goroutine at a time; its
// first error stops the run and is returned.
func verifyPages(pages iter.Seq2[*vpage, error], b, workers int, mask uint64,
	accept func(pg *vpage, err error) bool, consume func(r *verifyRec) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers == 1 {
		vb := newVerifyBatch(b, mask)
		flush := func() error {
			vb.check()
			for i := range vb.recs {
				if err := consume(&vb.recs[i]); err != nil {
					return err
				}
			}
			vb.reset()
			return nil
		}
		for pg, err := range pages {
			if !accept(pg, err) {
				continue
			}
			if vb.add(pg, mask) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	}

	// Bounded pipeline: nbatch batches circulate. This goroutine fills
	// them in sequence order and queues each both to the workers and, in
	// the same order, to the consumer, which waits until it is checked.
	nbatch := 2 * workers
	free := make(chan *verifyBatch, nbatch)
	for range nbatch {
		free <- newVerifyBatch(b, mask)
	}
	work := make(chan *verifyBatch, nbatch)
	order := make(chan *verifyBatch, nbatch)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for vb := range work {
				vb.check()
				vb.done <- struct{}{}
			}
		})
	}
	var (
		werr   error
		failed atomic.Bool
	)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for vb := range order {
			<-vb.done
			for i := range vb.recs {
				if werr != nil {
					break
				}
				if err := consume(&vb.recs[i]); err != nil {
					werr = err
					failed.Store(true)
				}
			}
			vb.reset()
			free <- vb
		}
	}()
	send := func(vb *verifyBatch) {
		order <- vb
		work <- vb
	}
	vb := <-free
	for pg, err := range pages {
		if failed.Load() {
			break
		}
		if !accept(pg, err) {
			continue
		}
		if vb.add(pg, mask) {
			send(vb)
			vb = <-free
		}
	}
	if len(vb.recs) > 0 {
		send(vb)
	}
	close(work)
	close(order)
	<-consumed
	wg.Wait()
	return werr
}
