package kernel

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/dumpkit/dumpkit/diskdump"
)

// ReadWriterAt is a dump partition as the writer uses it: it reads blocks to
// check the format signatures and writes the dump.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// Config holds the kernel's module parameters and the crash context
// for WriteDump. Fields are taken literally (SampleRate 0 checks every
// chunk); DefaultConfig gives the module's defaults.
type Config struct {
	Arch       diskdump.Arch
	BlockSize  int  // page size = block size; 0 means Arch.PageSize()
	BlockOrder uint // I/O chunk = 1<<BlockOrder blocks (kernel default 2, at most 10)
	SampleRate int  // signature check skip exponent (default 8); < 0: no check
	Compress   bool // compress=1: zlib record stream
	DumpLevel  int  // partial dump bits (doc/FORMAT.md §6.4)
	// Utsname is system_utsname; the zero value means DefaultUtsname(Arch).
	Utsname diskdump.Utsname
	Time    time.Time // xtime: tv_sec and tv_nsec (RHEL4 struct timespec)
	// NrCPUs is num_online_cpus (0 means 1); CurrentCPU the dumping CPU;
	// Tasks the current task_struct address of each CPU (tasks[]).
	NrCPUs     int
	CurrentCPU int
	Tasks      []uint64
	// Regs are the panic registers in RegNames order (elf_gregset_t);
	// SwitchStacks the ia64 sw[] switch_stack addresses.
	Regs         []uint64
	SwitchStacks []uint64
	// KernelBugs reproduces the published RHEL4 source's sub-header bugs:
	// ppc64 writes an all-zero block, ia64 leaves the registers zero
	// (doc/FORMAT.md §5, §13 item 16). Off by default: registers are written.
	KernelBugs bool
	// FreeListCorrupt makes diskdump_mark_free_pages fail: dump_level bit 4
	// then excludes nothing.
	FreeListCorrupt bool
	// StopAfterBlocks simulates a power cut after that many block writes
	// (every block counts, headers included; a multi-block write that
	// crosses the limit lands its first blocks only). 0 means no cut.
	StopAfterBlocks int64
	// Deflate, when set, replaces compress/zlib level 1 for compressed
	// dumps: it returns the compressed form of page (appended to dst[:0]);
	// a result of a block or more is stored raw. Tests use it to replay the
	// kernel zlib's exact output. It must be safe for concurrent use.
	Deflate func(page, dst []byte) []byte
	// Workers is the number of goroutines that read, check and compress
	// pages ahead of the pass (0 means GOMAXPROCS, 1 none). The pass and
	// every write stay sequential and in the kernel's order.
	Workers int
	// DeviceName appears in "start dumping to NAME"; default "dump".
	DeviceName string
	// OnSaved, when set, is called for every page whose data (raw block or
	// whole record) has reached the partition: its PFN, the byte offset of
	// the block or record on the partition and its length.
	OnSaved func(pfn uint64, off int64, nbytes int)
}

// DefaultConfig returns the module defaults (block_order 2,
// sample_rate 8, dump_level 0, compress 0) for an architecture, one CPU.
func DefaultConfig(a diskdump.Arch) Config {
	return Config{Arch: a, BlockOrder: 2, SampleRate: 8, NrCPUs: 1}
}

// DefaultUtsname is the utsname of a RHEL4 (2.6.9) kernel on a.
func DefaultUtsname(a diskdump.Arch) diskdump.Utsname {
	rel := "2.6.9-89.ELsmp"
	if a == diskdump.ArchIA64 || a == diskdump.ArchPPC64 {
		rel = "2.6.9-89.EL"
	}
	return diskdump.Utsname{Sysname: "Linux", Nodename: "dumpkit.example.com", Release: rel,
		Version: "#1 SMP Mon Jun 22 12:19:40 EDT 2009", Machine: a.Machine(), Domainname: "(none)"}
}

// Outcome is how a WriteDump run ended.
type Outcome int

// Outcomes of WriteDump.
const (
	// OutcomeCompleted: the final header says COMPLETED.
	OutcomeCompleted Outcome = iota
	// OutcomeShortArea: the partition filled up; final header SHORT_AREA.
	OutcomeShortArea
	// OutcomeIncomplete: strict mode on a device smaller than total_blocks;
	// final header INCOMPLETED.
	OutcomeIncomplete
	// OutcomePowerCut: StopAfterBlocks was reached.
	OutcomePowerCut
	// OutcomeRefused: the kernel rejected the partition before writing.
	OutcomeRefused
	// OutcomeFailed: the kernel abandoned the partition after writing
	// began (write error, no room for a single page).
	OutcomeFailed
)

var outcomeNames = [...]string{"completed", "short area", "incomplete", "power cut", "refused", "failed"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result tells what WriteDump did to the partition.
type Result struct {
	Outcome  Outcome
	Geometry diskdump.Geometry // layout at dump time (BitmapBlocks doubled in non-strict mode)
	// TotalBlocks is the module's total_blocks (never counts bitmap 2).
	TotalBlocks uint64
	// Header is the last header that reached the partition (nil if none);
	// Status and WrittenBlocks are its fields.
	Header        *diskdump.Header
	Status        diskdump.Status
	WrittenBlocks uint64
	// BlocksWritten counts every block written (the power-cut clock);
	// Writes the write calls.
	BlocksWritten int64
	Writes        int64
	// DataBlocks is the number of data-area blocks written.
	DataBlocks uint64
	// PagesSaved: pages whose data reached the partition (= Saved.Count()).
	// PagesSkipped: pages excluded by dump_level. PagesDisregarded: RAM
	// pages not reached because the partition was full.
	PagesSaved       uint64
	PagesSkipped     uint64
	PagesDisregarded uint64
	// PagesCompressed counts records stored zlib-compressed.
	PagesCompressed uint64
	// Saved is the PFN-indexed set of pages whose data is wholly on the
	// partition.
	Saved *diskdump.Bitmap
	// Recoverable is the subset of Saved that a reader following spec
	// doc/FORMAT.md §9.5 can attribute: in two-bitmap mode only pages whose dense bit was
	// flushed and whose data lies below the on-disk header's
	// written_blocks; in strict mode every saved page (unwritten blocks
	// keep their format signature).
	Recoverable *diskdump.Bitmap
	// Console holds the kernel's console lines.
	Console []string
}

// Errors that end a write internally.
var (
	errWrPowerCut = errors.New("diskdump: power cut")
	errWrNoRoom   = errors.New("diskdump: no room for a single page")
)

const wrMaxConsoleBadPages = 64

type wrPendingPage struct {
	pfn      uint64
	off, end int64 // byte range in the data area
}

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
	dmap    []byte
	dbit    int
	dindex  uint64
	flushed bool

	// Accounting of what reached the partition.
	first          uint64 // first data block
	pending        []wrPendingPage
	emitted        uint64 // pages handed to the data area
	skipped        uint64 // pages excluded by dump_level
	landed         uint64
	landedAtHeader uint64
	flushedEmitted uint64
	badLines       int
}

// WriteDump writes the memory of src onto the partition w of deviceBlocks
// blocks the way the RHEL4 diskdump kernel module does at panic time (spec
// doc/FORMAT.md §3.2, §3.4, §4.4, §4.5, §6): partition checks, header states, bitmaps,
// raw pages or the compressed record stream, write for write in the
// kernel's order and sizes.
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
	if errors.Is(err, errWrPowerCut) {
		res.Outcome = OutcomePowerCut
		d.console("dumpkit: power cut after %d block writes", res.BlocksWritten)
		err = nil
	}
	res.PagesSaved = d.landed
	res.PagesSkipped = d.skipped
	m := d.landed
	if !d.strict {
		m = min(m, d.landedAtHeader, d.flushedEmitted)
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

func newDumpWriter(w ReadWriterAt, deviceBlocks uint64, src MemorySource, cfg Config) (*dumpWriter, error) {
	a := cfg.Arch
	if a.GRegsSize() == 0 {
		return nil, fmt.Errorf("diskdump: writer: architecture %v: %w", a, diskdump.ErrUnsupportedVersion)
	}
	bs := cfg.BlockSize
	if bs == 0 {
		bs = a.PageSize()
	}
	if !diskdump.ValidBlockSize(int64(bs)) {
		return nil, fmt.Errorf("diskdump: writer: block size %d is not a power of two from 4096 to 65536: %w", bs, diskdump.ErrCorrupt)
	}
	if ps, ok := src.(PageSizer); ok && ps.PageSize() != bs {
		return nil, fmt.Errorf("diskdump: writer: memory source has %d-byte pages, the dump %d-byte blocks: %w", ps.PageSize(), bs, diskdump.ErrCorrupt)
	}
	if cfg.BlockOrder > 10 {
		return nil, fmt.Errorf("diskdump: writer: block_order %d exceeds 10 (MAX_ORDER-1): %w", cfg.BlockOrder, diskdump.ErrCorrupt)
	}
	if cfg.SampleRate >= 0 && int(cfg.BlockOrder)+cfg.SampleRate > 31 {
		return nil, fmt.Errorf("diskdump: writer: block_order %d + sample_rate %d overflow the kernel's 32-bit skip: %w", cfg.BlockOrder, cfg.SampleRate, diskdump.ErrCorrupt)
	}
	maxPFN := src.MaxPFN()
	if maxPFN == 0 || maxPFN > math.MaxUint32 {
		return nil, fmt.Errorf("diskdump: writer: max_pfn %d is not in 1..2^32-1: %w", maxPFN, diskdump.ErrCorrupt)
	}
	if deviceBlocks > math.MaxUint32 {
		return nil, fmt.Errorf("diskdump: writer: %d device blocks exceed the 32-bit device_blocks: %w", deviceBlocks, diskdump.ErrCorrupt)
	}
	nr := cfg.NrCPUs
	if nr == 0 {
		nr = 1
	}
	ncpu := max(nr, cfg.CurrentCPU+1, len(cfg.Tasks))
	l := diskdump.LayoutOf(a)
	if nr < 0 || cfg.CurrentCPU < 0 || l.HeaderFixedSize()+l.WordSize()*ncpu > bs {
		return nil, fmt.Errorf("diskdump: writer: nr_cpus %d, current_cpu %d, %d tasks do not fit the header block: %w", nr, cfg.CurrentCPU, len(cfg.Tasks), diskdump.ErrCorrupt)
	}
	if a == diskdump.ArchIA64 && a.GRegsSize()+8*len(cfg.SwitchStacks) > bs || len(cfg.Regs)*l.WordSize() > a.GRegsSize() {
		return nil, fmt.Errorf("diskdump: writer: %d registers, %d switch stacks do not fit the %v sub-header: %w", len(cfg.Regs), len(cfg.SwitchStacks), a, diskdump.ErrCorrupt)
	}
	var ram uint64
	for p := uint64(0); p < maxPFN; p++ {
		if src.IsRAM(p) {
			ram++
		}
	}
	strict := cfg.DumpLevel == 0 && !cfg.Compress
	g := diskdump.NewGeometry(bs, maxPFN, ram, !strict)
	if g.TotalBlocks() > math.MaxUint32 {
		return nil, fmt.Errorf("diskdump: writer: total_blocks %d exceeds 32 bits: %w", g.TotalBlocks(), diskdump.ErrCorrupt)
	}
	uts := cfg.Utsname
	if uts == (diskdump.Utsname{}) {
		uts = DefaultUtsname(a)
	}
	tasks := make([]uint64, ncpu)
	copy(tasks, cfg.Tasks)
	d := &dumpWriter{w: w, src: src, cfg: cfg, bs: bs, order: a.ByteOrder(), g: g, devBlocks: deviceBlocks,
		strict: strict, maxPFN: maxPFN, budget: -1, first: g.FirstDataBlock()}
	if cfg.StopAfterBlocks > 0 {
		d.budget = cfg.StopAfterBlocks
	}
	var sec, nsec int64
	if !cfg.Time.IsZero() {
		sec, nsec = cfg.Time.Unix(), int64(cfg.Time.Nanosecond())
	}
	d.hdr = diskdump.Header{Layout: l, Signature: diskdump.DumpSignature, Version: 0, Utsname: uts, Sec: sec, Frac: nsec,
		BlockSize: int32(bs), SubHdrSize: int32(g.SubHdrBlocks), MaxMapnr: uint32(maxPFN),
		TotalRAMBlocks: uint32(ram), CurrentCPU: uint32(cfg.CurrentCPU), NrCPUs: int32(nr), Tasks: tasks}
	d.res = &Result{Geometry: g, TotalBlocks: g.TotalBlocks(), Saved: diskdump.MakeBitmap(maxPFN)}
	return d, nil
}

func (d *dumpWriter) console(format string, args ...any) {
	d.res.Console = append(d.res.Console, fmt.Sprintf(format, args...))
}

func (d *dumpWriter) compressedBit() diskdump.Status {
	if d.cfg.Compress {
		return diskdump.StatusCompressed
	}
	return 0
}

// writeBlocks writes whole blocks at blk and returns how many landed. The
// power-cut budget is applied here: a write that crosses it lands its first
// blocks and returns errWrPowerCut.
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
		return n, errWrPowerCut
	}
	return n, nil
}

func (d *dumpWriter) writeHeader() error {
	b := make([]byte, d.bs)
	if err := d.hdr.Encode(b); err != nil {
		return err
	}
	n, err := d.writeBlocks(1, b)
	if n == 1 {
		h := d.hdr
		h.Tasks = append([]uint64(nil), d.hdr.Tasks...)
		d.res.Header = &h
		d.res.Status = h.Status
		d.res.WrittenBlocks = uint64(h.WrittenBlocks)
		d.landedAtHeader = d.landed
	}
	return err
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

func (d *dumpWriter) run() error {
	g, res := d.g, d.res
	d.console("disk_dump: total blocks required: %d (header %d + bitmap %d + memory %d)",
		g.TotalBlocks(), g.HeaderBlocks(), g.RAMBitmapBlocks, g.RAMBlocks)
	name := d.cfg.DeviceName
	if name == "" {
		name = "dump"
	}
	d.console("start dumping to %s", name)
	if d.devBlocks < g.FirstDataBlock() {
		d.console("disk_dump: dump partition is too small. Aborted")
		d.refused()
		return fmt.Errorf("diskdump: dump partition is too small: %d blocks, headers and bitmaps need %d: %w",
			d.devBlocks, g.FirstDataBlock(), diskdump.ErrTooSmall)
	}
	d.console("check dump partition...")
	if !d.checkSwap() {
		if err := d.checkSignatures(); err != nil {
			d.console("disk_dump: check partition failed.")
			d.refused()
			return err
		}
	}
	c := d.compressedBit()
	d.hdr.Status = diskdump.StatusIncompleted | c
	d.hdr.BitmapBlocks = uint32(g.BitmapBlocks)
	d.hdr.DeviceBlocks = uint32(d.devBlocks)
	d.hdr.WrittenBlocks = 2
	if err := d.writeHeader(); err != nil {
		return d.failed(err)
	}
	if err := d.writeSubHeader(); err != nil {
		return d.failed(err)
	}
	if err := d.writeBitmaps(); err != nil {
		return d.failed(err)
	}
	maxWritten := g.RAMBlocks
	strictShort := false
	if d.strict && d.devBlocks < g.TotalBlocks() {
		d.console("disk_dump: dump partition is too small. actual blocks %d. expected blocks %d. whole memory will not be saved",
			d.devBlocks, g.TotalBlocks())
		maxWritten -= g.TotalBlocks() - d.devBlocks
		strictShort = true
	}
	d.dindex = g.DumpBitmapBlock()
	d.hdr.WrittenBlocks += uint32(g.SubHdrBlocks) + uint32(g.BitmapBlocks)
	if err := d.writeHeader(); err != nil {
		return d.failed(err)
	}
	if d.cfg.DumpLevel != 0 {
		d.console("dumping memory(partial dump with dump_level %d)..", d.cfg.DumpLevel)
	} else {
		d.console("dumping memory..")
	}
	short, err := d.writeMemory(maxWritten)
	if err != nil {
		return d.failed(err)
	}
	switch {
	case !d.strict && !short, d.strict && !strictShort:
		d.hdr.Status = diskdump.StatusCompleted
		res.Outcome = OutcomeCompleted
	case !d.strict:
		d.hdr.Status = diskdump.StatusShortArea
		res.Outcome = OutcomeShortArea
	default:
		d.hdr.Status = diskdump.StatusIncompleted
		res.Outcome = OutcomeIncomplete
	}
	d.hdr.Status |= c
	if err := d.writeHeader(); err != nil {
		return d.failed(err)
	}
	d.console("disk_dump: diskdump succeeded")
	return nil
}

func (d *dumpWriter) refused() {
	d.res.Outcome = OutcomeRefused
	d.console("disk_dump: No more dump device found")
	d.console("disk_dump: diskdump failed, fall back to trying netdump")
}

func (d *dumpWriter) failed(err error) error {
	if errors.Is(err, errWrPowerCut) {
		return err
	}
	d.res.Outcome = OutcomeFailed
	if errors.Is(err, errWrNoRoom) {
		d.console("disk_dump: writing memory failed. error -1")
		err = fmt.Errorf("diskdump: dump partition of %d blocks has no room for a single page: %w", d.devBlocks, diskdump.ErrTooSmall)
	}
	d.console("disk_dump: No more dump device found")
	d.console("disk_dump: diskdump failed, fall back to trying netdump")
	return err
}

// readBlocks reads n blocks at blk the way the dump driver does: a block
// past the end of the device fails.
func (d *dumpWriter) readBlocks(blk uint64, buf []byte) error {
	n := uint64(len(buf) / d.bs)
	if blk+n > d.devBlocks {
		return &diskdump.FormatError{Off: int64(blk) * int64(d.bs), Blk: int64(blk), Field: "partition", Err: diskdump.ErrTooSmall,
			Msg: fmt.Sprintf("read of blocks %d..%d past the end of the %d-block device", blk, blk+n-1, d.devBlocks)}
	}
	got, err := d.w.ReadAt(buf, int64(blk)*int64(d.bs))
	if got == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &diskdump.FormatError{Off: int64(blk) * int64(d.bs), Blk: int64(blk), Field: "partition", Msg: "read error", Err: err}
}

// checkSwap is check_swap_partition (doc/FORMAT.md §3.4): block 0 is a swap header
// for exactly this device (and, in strict mode, big enough).
func (d *dumpWriter) checkSwap() bool {
	b := make([]byte, d.bs)
	if d.readBlocks(0, b) != nil {
		return false
	}
	if string(b[d.bs-10:]) != "SWAPSPACE2" {
		return false
	}
	if d.order.Uint32(b[1024:]) != 1 {
		return false
	}
	last := d.order.Uint32(b[1028:])
	if uint64(last+1) != d.devBlocks {
		return false
	}
	if d.strict && uint64(last) < d.g.TotalBlocks() {
		return false
	}
	return true
}

// checkSignatures is check_dump_partition (doc/FORMAT.md §3.2).
func (d *dumpWriter) checkSignatures() error {
	size := d.g.TotalBlocks()
	if !d.strict && d.devBlocks < size {
		size = d.devBlocks
	}
	buf := make([]byte, d.bs<<d.cfg.BlockOrder)
	for c := range diskdump.SampledChunks(size, d.cfg.BlockOrder, d.cfg.SampleRate) {
		b := buf[:c.N*uint64(d.bs)]
		if err := d.readBlocks(c.Blk, b); err != nil {
			d.console("disk_dump: read error on block %d", c.Blk)
			return err
		}
		for i := uint64(0); i < c.N; i++ {
			blk := c.Blk + i
			if blk == 2 {
				continue // the user parameter block is never checked
			}
			if !diskdump.CheckSignature(b[i*uint64(d.bs):(i+1)*uint64(d.bs)], blk, d.order) {
				d.console("disk_dump: bad signature in block %d", blk)
				return &diskdump.FormatError{Off: int64(blk) * int64(d.bs), Blk: int64(blk), Field: "signature",
					Msg: "not a formatted dump partition", Err: diskdump.ErrBadSignature}
			}
		}
	}
	return nil
}

func (d *dumpWriter) writeSubHeader() error {
	a := d.cfg.Arch
	regs, sw := d.cfg.Regs, d.cfg.SwitchStacks
	if d.cfg.KernelBugs && (a == diskdump.ArchIA64 || a == diskdump.ArchPPC64) {
		regs = nil
		if a == diskdump.ArchPPC64 {
			sw = nil
		}
	}
	b, err := diskdump.EncodeSubHeader(a, d.bs, regs, sw)
	if err != nil {
		return err
	}
	_, err = d.writeBlocks(2, b)
	return err
}

// writeBitmaps writes bitmap 1 one block at a time and, in non-strict
// mode, zeroes the blocks of bitmap 2.
func (d *dumpWriter) writeBitmaps() error {
	b := make([]byte, d.bs)
	bitsPerBlock := uint64(d.bs) * 8
	for nr := uint64(0); nr < d.g.RAMBitmapBlocks; nr++ {
		clear(b)
		base := nr * bitsPerBlock
		for i := uint64(0); i < bitsPerBlock && base+i < d.maxPFN; i++ {
			if d.src.IsRAM(base + i) {
				b[i>>3] |= 1 << (i & 7)
			}
		}
		if _, err := d.writeBlocks(d.g.RAMBitmapBlock()+nr, b); err != nil {
			return err
		}
	}
	if d.strict {
		return nil
	}
	clear(b)
	for nr := uint64(0); nr < d.g.RAMBitmapBlocks; nr++ {
		if _, err := d.writeBlocks(d.g.DumpBitmapBlock()+nr, b); err != nil {
			return err
		}
	}
	return nil
}

// setBitmap appends the page's bit to the dense bitmap and flushes a full
// block (set_bitmap).
func (d *dumpWriter) setBitmap(dumpable bool) error {
	if d.strict {
		return nil
	}
	if dumpable {
		d.dmap[d.dbit>>3] |= 1 << (d.dbit & 7)
	}
	d.dbit++
	if d.dbit == d.bs*8 {
		after := d.emitted
		if dumpable {
			after++
		}
		return d.flushBitmap(after)
	}
	return nil
}

func (d *dumpWriter) flushBitmap(emittedAfter uint64) error {
	n, err := d.writeBlocks(d.dindex, d.dmap)
	if n == 1 {
		d.flushedEmitted = emittedAfter
	}
	clear(d.dmap)
	d.dindex++
	d.flushed = true
	d.dbit = 0
	return err
}

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
		if wrIsZero(buf) {
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

// wrZeroBlock is compared against to find zero pages quickly.
var wrZeroBlock [65536]byte

func wrIsZero(b []byte) bool {
	for len(b) > len(wrZeroBlock) {
		if !bytes.Equal(b[:len(wrZeroBlock)], wrZeroBlock[:]) {
			return false
		}
		b = b[len(wrZeroBlock):]
	}
	return bytes.Equal(b, wrZeroBlock[:len(b)])
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

// wrBatch is the number of RAM pages prepared ahead of the pass.
const wrBatch = 128

// wrJob is one RAM page prepared for the pass: attributes, the dump_level
// decision, the content the kernel saves and, in compressed mode, its
// deflated form.
type wrJob struct {
	pfn  uint64
	at   PageAttrs
	ok   bool
	page []byte
	z    []byte // deflated page, when compressing
	err  error
}

// wrDeflater compresses pages the way diskdump_compress_gzip does: a zlib
// stream at level 1 (Z_BEST_SPEED), one Z_FINISH. Deflate is deterministic,
// so the zero page is compressed once.
type wrDeflater struct {
	zw    *zlib.Writer
	out   bytes.Buffer
	zeroZ []byte
}

func newWrDeflater(bs int) *wrDeflater {
	z := &wrDeflater{}
	z.out.Grow(bs + 512)
	z.zw, _ = zlib.NewWriterLevel(&z.out, zlib.BestSpeed)
	return z
}

func (z *wrDeflater) deflate(page, dst []byte) []byte {
	if wrIsZero(page) && z.zeroZ != nil {
		return append(dst[:0], z.zeroZ...)
	}
	z.out.Reset()
	z.zw.Reset(&z.out)
	_, _ = z.zw.Write(page)
	_ = z.zw.Close()
	if wrIsZero(page) {
		z.zeroZ = bytes.Clone(z.out.Bytes())
	}
	return append(dst[:0], z.out.Bytes()...)
}

// prepare does the per-page work that does not depend on the pass's state.
// It only reads d's configuration and source, so workers run it in
// parallel.
func (d *dumpWriter) prepare(j *wrJob, z *wrDeflater) {
	j.at = d.src.Attrs(j.pfn)
	if d.cfg.DumpLevel&4 != 0 && !d.cfg.FreeListCorrupt && j.at.Free {
		// diskdump_mark_free_pages tags free pages PG_nosave_free.
		j.at.Flags |= 1 << PGNosaveFree
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

// wrPrep prepares batches of pages with a fixed set of workers.
type wrPrep struct {
	d       *dumpWriter
	jobs    []wrJob
	workers int
	defl    []*wrDeflater
	next    uint64 // next PFN to look at
	n, pos  int    // jobs in the batch, next job to hand out
}

func newWrPrep(d *dumpWriter) *wrPrep {
	w := d.cfg.Workers
	if w <= 0 {
		w = runtime.GOMAXPROCS(0)
	}
	w = min(w, 16)
	p := &wrPrep{d: d, jobs: make([]wrJob, wrBatch), workers: w}
	for i := range p.jobs {
		p.jobs[i].page = make([]byte, d.bs)
	}
	p.defl = make([]*wrDeflater, w)
	if d.cfg.Compress {
		for i := range p.defl {
			p.defl[i] = newWrDeflater(d.bs)
		}
	}
	return p
}

// nextPage returns the next RAM page of the pass, prepared, or nil at the
// end of RAM.
func (p *wrPrep) nextPage() *wrJob {
	if p.pos == p.n && !p.fill() {
		return nil
	}
	p.pos++
	return &p.jobs[p.pos-1]
}

func (p *wrPrep) fill() bool {
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

// writeMemory is write_memory: the pass over RAM. It reports whether it
// stopped because the partition was full.
func (d *dumpWriter) writeMemory(maxWritten uint64) (short bool, err error) {
	bs := uint64(d.bs)
	c := d.compressedBit()
	d.hdr.Status = diskdump.StatusInProgress | c
	if !d.strict {
		d.dmap = make([]byte, d.bs)
	}
	remaining := d.devBlocks - d.g.FirstDataBlock()
	var blocks uint64
	processed := false
	dataBlk := d.first
	rewrite := false

	// Raw mode: a chunk of 1<<block_order pages.
	var chunk []byte
	inChunk := uint64(0)
	chunkPages := uint64(1) << d.cfg.BlockOrder
	// Compressed mode: a buffer of 2^cbo pages, flushed NR_BUFFER_PAGES at a time.
	var cbuf []byte
	var fill, flushUnit uint64
	if d.cfg.Compress {
		cbo := max(d.cfg.BlockOrder, 2)
		cbuf = make([]byte, (uint64(1)<<cbo)*bs)
		flushUnit = ((uint64(1) << cbo) - 2) * bs
	} else {
		chunk = make([]byte, chunkPages*bs)
	}
	var streamBase uint64 // data-area byte offset of cbuf[0]
	prep := newWrPrep(d)

	for {
		var over bool
		if d.cfg.Compress {
			over = blocks+fill/bs+2 >= remaining
		} else {
			over = blocks >= remaining
		}
		if over {
			// Checked before each RAM page: is there one more?
			if prep.nextPage() == nil {
				break
			}
			short = true
			d.res.PagesDisregarded = d.g.RAMBlocks - (d.emitted + d.skipped)
			d.console("disk_dump: dump device is too small. %d pages will be disregarded", d.res.PagesDisregarded)
			break
		}
		j := prep.nextPage()
		if j == nil {
			break
		}
		if j.err != nil {
			return short, j.err
		}
		if err := d.setBitmap(j.ok); err != nil {
			return short, err
		}
		processed = true
		if !j.ok {
			d.skipped++
			continue
		}
		if j.at.BadPage {
			if d.badLines < wrMaxConsoleBadPages {
				d.console("disk_dump: Bad page. PFN %d flags %x", j.pfn, d.badFlags(j.at))
			}
			d.badLines++
		}
		if d.cfg.Compress {
			rec := cbuf[fill:]
			d.order.PutUint64(rec[0:], j.at.Flags)
			var flags uint32
			if j.at.Anon {
				flags |= 2
			}
			data := j.page
			if len(j.z) < d.bs {
				data = j.z
				flags |= 1
				d.res.PagesCompressed++
			}
			d.order.PutUint32(rec[8:], uint32(len(data)))
			d.order.PutUint32(rec[12:], flags)
			copy(rec[16:], data)
			start := streamBase + fill
			fill += 16 + uint64(len(data))
			d.pending = append(d.pending, wrPendingPage{pfn: j.pfn, off: int64(start), end: int64(streamBase + fill)})
			if fill >= flushUnit {
				n := flushUnit / bs
				err := d.writeData(dataBlk, cbuf[:flushUnit])
				if err != nil {
					return short, err
				}
				dataBlk += n
				blocks += n
				d.hdr.WrittenBlocks += uint32(n)
				if d.flushed {
					rewrite, d.flushed = true, false
				}
				copy(cbuf, cbuf[flushUnit:fill])
				fill -= flushUnit
				streamBase += flushUnit
			}
		} else {
			copy(chunk[inChunk*bs:], j.page)
			d.pending = append(d.pending, wrPendingPage{pfn: j.pfn, off: int64(blocks * bs), end: int64((blocks + 1) * bs)})
			inChunk++
			blocks++
			if inChunk >= chunkPages {
				if err := d.writeData(dataBlk, chunk[:inChunk*bs]); err != nil {
					return short, err
				}
				dataBlk += inChunk
				d.hdr.WrittenBlocks += uint32(inChunk)
				inChunk = 0
				if d.flushed {
					rewrite, d.flushed = true, false
				}
			}
		}
		if rewrite {
			rewrite = false
			if err := d.writeHeader(); err != nil {
				return short, err
			}
		}
		d.emitted++
	}
	if !processed {
		return short, errWrNoRoom
	}
	if d.cfg.Compress {
		if fill > 0 {
			n := (fill + bs - 1) / bs
			for i := fill; i < n*bs; i++ {
				cbuf[i] = 'm'
			}
			if err := d.writeData(dataBlk, cbuf[:n*bs]); err != nil {
				return short, err
			}
			d.hdr.WrittenBlocks += uint32(n)
			blocks += n
		}
	} else if inChunk > 0 {
		if err := d.writeData(dataBlk, chunk[:inChunk*bs]); err != nil {
			return short, err
		}
		d.hdr.WrittenBlocks += uint32(inChunk)
	}
	if d.cfg.DumpLevel != 0 {
		d.console("%d(%d saved %d skipped)/%d", d.emitted+d.skipped, d.emitted, d.skipped, maxWritten)
	} else {
		d.console("%d/%d", d.emitted, maxWritten)
	}
	if d.cfg.Compress {
		d.console("%d compressed into %d", d.emitted, blocks)
	}
	if !d.strict && d.dbit > 0 {
		if err := d.flushBitmap(d.emitted); err != nil {
			return short, err
		}
	}
	return short, nil
}
