package kernel

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/dumpkit/dumpkit/internal/zero"
)

// dumpable is page_is_dumpable (doc/FORMAT.md §6.4), in the kernel's order. It
// reads the page into buf when it must look at the content; read reports
// whether it did.
func (d *dumpWriter) dumpable(pfn uint64, at PageAttrs, buf []byte) (ok, read bool, err error) {
	lvl := d.cfg.DumpLevel
	if lvl == 0 {
		return true, false, nil
	}
	if at.BadPage || at.Unmapped {
		return false, false, nil
	}
	if lvl&1 != 0 && lvl&16 != 0 && at.Private {
		return true, false, nil
	}
	if lvl&1 != 0 && !at.Anon && (at.LRU || at.SwapCache) {
		return false, false, nil
	}
	if lvl&2 != 0 {
		if err := d.src.ReadPage(pfn, buf); err != nil {
			return false, false, err
		}
		read = true
		if zero.Is(buf) {
			return false, true, nil
		}
	}
	if lvl&4 != 0 && !d.cfg.FreeListCorrupt && at.Free {
		return false, read, nil
	}
	if lvl&8 != 0 && at.Anon {
		return false, read, nil
	}
	return true, read, nil
}

// content fills buf with what the kernel dumps for a dumpable page: a text
// page for a bad or unmapped page, else the page itself.
func (d *dumpWriter) content(pfn uint64, at PageAttrs, buf []byte, read bool) error {
	switch {
	case at.BadPage:
		clear(buf)
		copy(buf[:len(buf)-1], fmt.Sprintf("Bad page. PFN %d flags %x\n", pfn, d.badFlags(at)))
	case at.Unmapped:
		clear(buf)
		copy(buf[:len(buf)-1], fmt.Sprintf("Unmapped page. PFN %d\n", pfn))
	case !read:
		if err := d.src.ReadPage(pfn, buf); err != nil {
			return err
		}
	}
	return nil
}

// badFlags is page->flags as the kernel prints it (unsigned long).
func (d *dumpWriter) badFlags(at PageAttrs) uint64 {
	if !d.cfg.Arch.Is64() {
		return at.Flags & math.MaxUint32
	}
	return at.Flags
}

// batchPages is the number of RAM pages prepared ahead of the pass.
const batchPages = 128

// job is one RAM page prepared for the pass: attributes, the dump_level
// decision, the content the kernel saves and, in compressed mode, its
// deflated form.
type job struct {
	pfn  uint64
	at   PageAttrs
	ok   bool
	page []byte
	z    []byte // deflated page, when compressing
	err  error
}

// prepare does the per-page work that does not depend on the pass's state.
// It only reads d's configuration and source, so workers run it in
// parallel.
func (d *dumpWriter) prepare(j *job, z *deflater) {
	j.at = d.src.Attrs(j.pfn)
	if d.cfg.DumpLevel&4 != 0 && !d.cfg.FreeListCorrupt && j.at.Free {
		// diskdump_mark_free_pages tags free pages PG_nosave_free.
		j.at.Flags |= 1 << pgNosaveFree
	}
	ok, read, err := d.dumpable(j.pfn, j.at, j.page)
	j.ok, j.err = ok, err
	if err != nil || !ok {
		return
	}
	if j.err = d.content(j.pfn, j.at, j.page, read); j.err != nil {
		return
	}
	switch {
	case d.cfg.Deflate != nil:
		j.z = d.cfg.Deflate(j.page, j.z)
	case z != nil:
		j.z = z.deflate(j.page, j.z)
	}
}

// preparer prepares batches of pages with a fixed set of workers.
type preparer struct {
	d       *dumpWriter
	jobs    []job
	workers int
	defl    []*deflater
	next    uint64 // next PFN to look at
	n, pos  int    // jobs in the batch, next job to hand out
}

func newPreparer(d *dumpWriter) *preparer {
	w := d.cfg.Workers
	if w <= 0 {
		w = runtime.GOMAXPROCS(0)
	}
	w = min(w, 16)
	p := &preparer{d: d, jobs: make([]job, batchPages), workers: w}
	for i := range p.jobs {
		p.jobs[i].page = make([]byte, d.bs)
	}
	p.defl = make([]*deflater, w)
	if d.cfg.Compress {
		for i := range p.defl {
			p.defl[i] = newDeflater(d.bs)
		}
	}
	return p
}

// nextPage returns the next RAM page of the pass, prepared, or nil at the
// end of RAM.
func (p *preparer) nextPage() *job {
	if p.pos == p.n && !p.fill() {
		return nil
	}
	p.pos++
	return &p.jobs[p.pos-1]
}

// fill gathers the next batch of RAM pages and prepares them, in
// parallel when there are workers; it reports whether there was any.
func (p *preparer) fill() bool {
	d := p.d
	p.n, p.pos = 0, 0
	for ; p.next < d.maxPFN && p.n < len(p.jobs); p.next++ {
		if d.src.IsRAM(p.next) {
			p.jobs[p.n].pfn = p.next
			p.n++
		}
	}
	if p.n == 0 {
		return false
	}
	if p.workers == 1 || p.n < 2 {
		for i := range p.n {
			p.d.prepare(&p.jobs[i], p.defl[0])
		}
		return true
	}
	var wg sync.WaitGroup
	per := (p.n + p.workers - 1) / p.workers
	for w := 0; w*per < p.n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w * per; i < min((w+1)*per, p.n); i++ {
				p.d.prepare(&p.jobs[i], p.defl[w])
			}
		}(w)
	}
	wg.Wait()
	return true
}
