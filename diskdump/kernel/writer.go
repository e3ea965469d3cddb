package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/dumpkit/dumpkit/diskdump"
)

// Errors that end a write internally.
var (
	errPowerCut = errors.New("diskdump: power cut")
	errNoRoom   = errors.New("diskdump: no room for a single page")
)

// maxConsoleBadPages is how many "Bad page" lines the console gets.
const maxConsoleBadPages = 64

// pendingPage is a page handed to the data area whose bytes have not all
// reached the partition yet.
type pendingPage struct {
	pfn      uint64
	off, end int64 // byte range in the data area
}

// dumpWriter is the state of one WriteDump run: the kernel's variables
// and the accounting of what reached the partition.
type dumpWriter struct {
	w         ReadWriterAt
	src       MemorySource
	cfg       Config
	bs        int
	order     binary.ByteOrder
	g         diskdump.Geometry
	devBlocks uint64
	strict    bool
	maxPFN    uint64
	hdr       diskdump.Header
	res       *Result
	budget    int64 // block writes left; < 0 means unlimited

	// Dense second bitmap (non-strict mode).
	dmap    []byte // the block being filled
	dbit    int    // next bit in dmap
	dindex  uint64 // block where dmap goes
	flushed bool   // a block was flushed since the last data write

	// Accounting of what reached the partition.
	first          uint64 // first data block
	pending        []pendingPage
	emitted        uint64 // pages handed to the data area
	skipped        uint64 // pages excluded by dump_level
	landed         uint64 // pages wholly on the partition
	landedAtHeader uint64 // landed when the last header landed
	flushedEmitted uint64 // pages the flushed dense bitmap blocks account for
	badLines       int    // "Bad page" console lines so far
}

// WriteDump writes the memory of src onto the partition w of deviceBlocks
// blocks the way the RHEL4 diskdump kernel module does at panic time
// (doc/FORMAT.md §3.2, §3.4, §4.4, §4.5, §6): partition checks, header
// states, bitmaps, raw pages or the compressed record stream, write for
// write in the kernel's order and sizes.
//
// The result is returned whenever the run started; err is non-nil when the
// kernel would report a failure: a refused partition (wrapping
// ErrBadSignature or ErrTooSmall), an abandoned one (write error, no room),
// or a failing memory source. A power cut (StopAfterBlocks) is not an
// error: see Result.Outcome. Invalid configurations return a nil
// result.
func WriteDump(w ReadWriterAt, deviceBlocks uint64, src MemorySource, cfg Config) (*Result, error) {
	d, err := newDumpWriter(w, deviceBlocks, src, cfg)
	if err != nil {
		return nil, err
	}
	err = d.run()
	res := d.res
	if errors.Is(err, errPowerCut) {
		res.Outcome = OutcomePowerCut
		d.console("dumpkit: power cut after %d block writes", res.BlocksWritten)
		err = nil
	}
	res.PagesSaved = d.landed
	res.PagesSkipped = d.skipped
	m := d.landed
	if !d.strict {
		m = min(m, d.flushedEmitted)
	}
	res.Recoverable = diskdump.MakeBitmap(d.maxPFN)
	var k uint64
	for p := range res.Saved.All() {
		if k >= m {
			break
		}
		res.Recoverable.Set(p)
		k++
	}
	return res, err
}

// newDumpWriter checks the configuration and sets up a run: geometry,
// initial header and result.
func newDumpWriter(w ReadWriterAt, deviceBlocks uint64, src MemorySource, cfg Config) (*dumpWriter, error) {
	l, err := cfg.check(src, deviceBlocks)
	if err != nil {
		return nil, err
	}
	maxPFN := src.MaxPFN()
	var ram uint64
	for p := uint64(0); p < maxPFN; p++ {
		if src.IsRAM(p) {
			ram++
		}
	}
	bs := l.blockSize
	strict := cfg.DumpLevel == 0 && !cfg.Compress
	g := diskdump.NewGeometry(bs, maxPFN, ram, !strict)
	if g.TotalBlocks() > math.MaxUint32 {
		return nil, fmt.Errorf("diskdump: writer: total_blocks %d exceeds 32 bits: %w", g.TotalBlocks(), diskdump.ErrCorrupt)
	}
	d := &dumpWriter{w: w, src: src, cfg: cfg, bs: bs, order: cfg.Arch.ByteOrder(), g: g, devBlocks: deviceBlocks,
		strict: strict, maxPFN: maxPFN, budget: -1, first: g.FirstDataBlock()}
	if cfg.StopAfterBlocks > 0 {
		d.budget = cfg.StopAfterBlocks
	}
	d.hdr = cfg.header(l, maxPFN, ram, g)
	d.res = &Result{Geometry: g, TotalBlocks: g.TotalBlocks(), Saved: diskdump.MakeBitmap(maxPFN)}
	return d, nil
}

// console records a line the kernel prints.
func (d *dumpWriter) console(format string, args ...any) {
	d.res.Console = append(d.res.Console, fmt.Sprintf(format, args...))
}

// compressedBit is the COMPRESSED status bit when compress=1.
func (d *dumpWriter) compressedBit() diskdump.Status {
	if d.cfg.Compress {
		return diskdump.StatusCompressed
	}
	return 0
}

// writeBlocks writes whole blocks at blk and returns how many landed. The
// power-cut budget is applied here: a write that crosses it lands its first
// blocks and returns errPowerCut.
func (d *dumpWriter) writeBlocks(blk uint64, buf []byte) (int, error) {
	n := len(buf) / d.bs
	if n == 0 {
		return 0, nil
	}
	cut := false
	if d.budget >= 0 && int64(n) > d.budget {
		n, cut = int(d.budget), true
	}
	if n > 0 {
		if _, err := d.w.WriteAt(buf[:n*d.bs], int64(blk)*int64(d.bs)); err != nil {
			d.console("disk_dump: I/O error %d on block %d", -5, blk)
			return 0, fmt.Errorf("diskdump: write error on block %d: %w", blk, err)
		}
		d.res.Writes++
		d.res.BlocksWritten += int64(n)
		if d.budget >= 0 {
			d.budget -= int64(n)
		}
	}
	if cut {
		return n, errPowerCut
	}
	return n, nil
}

// writeData writes data-area blocks at blk and marks the pages whose data
// is now wholly on the partition.
func (d *dumpWriter) writeData(blk uint64, buf []byte) error {
	n, err := d.writeBlocks(blk, buf)
	d.res.DataBlocks += uint64(n)
	end := int64(blk-d.first+uint64(n)) * int64(d.bs)
	i := 0
	for ; i < len(d.pending) && d.pending[i].end <= end; i++ {
		p := d.pending[i]
		d.res.Saved.Set(p.pfn)
		d.landed++
		if d.cfg.OnSaved != nil {
			d.cfg.OnSaved(p.pfn, int64(d.first)*int64(d.bs)+p.off, int(p.end-p.off))
		}
	}
	d.pending = d.pending[:copy(d.pending, d.pending[i:])]
	return err
}

// run is the kernel's dump sequence (doc/FORMAT.md §4.4, §4.5): check
// the partition, write the INCOMPLETED header, the sub-header and bitmaps,
// the header again, the memory, and the final header.
func (d *dumpWriter) run() error {
	if err := d.checkPartition(); err != nil {
		return err
	}
	maxWritten, strictShort, err := d.writeLayout()
	if err != nil {
		return d.failed(err)
	}
	short, err := d.writeMemory(maxWritten)
	if err != nil {
		return d.failed(err)
	}
	switch {
	case !d.strict && !short, d.strict && !strictShort:
		d.hdr.Status = diskdump.StatusCompleted
		d.res.Outcome = OutcomeCompleted
	case !d.strict:
		d.hdr.Status = diskdump.StatusShortArea
		d.res.Outcome = OutcomeShortArea
	default:
		d.hdr.Status = diskdump.StatusIncompleted
		d.res.Outcome = OutcomeIncomplete
	}
	d.hdr.Status |= d.compressedBit()
	if err := d.writeHeader(); err != nil {
		return d.failed(err)
	}
	d.console("disk_dump: diskdump succeeded")
	return nil
}

// refused logs the kernel's giving up on the partition before writing.
func (d *dumpWriter) refused() {
	d.res.Outcome = OutcomeRefused
	d.console("disk_dump: No more dump device found")
	d.console("disk_dump: diskdump failed, fall back to trying netdump")
}

// failed ends a run that began writing: the outcome, the kernel's console
// lines and the error returned (a power cut is passed through).
func (d *dumpWriter) failed(err error) error {
	if errors.Is(err, errPowerCut) {
		return err
	}
	d.res.Outcome = OutcomeFailed
	if errors.Is(err, errNoRoom) {
		d.console("disk_dump: writing memory failed. error -1")
		err = fmt.Errorf("diskdump: dump partition of %d blocks has no room for a single page: %w", d.devBlocks, diskdump.ErrTooSmall)
	}
	d.console("disk_dump: No more dump device found")
	d.console("disk_dump: diskdump failed, fall back to trying netdump")
	return err
}
