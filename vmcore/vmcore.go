package vmcore

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/dumpkit/dumpkit/diskdump"
)

// Format is the file format of a vmcore written by Write (doc/FORMAT.md
// §10).
type Format int

// File formats. FormatAuto, the zero value, means DefaultFormat.
const (
	FormatAuto     Format = iota // DefaultFormat of the partition
	FormatELF                    // netdump-style ELF core (doc/FORMAT.md §10.1)
	FormatDiskdump               // DISKDUMP vmcore (doc/FORMAT.md §10.2)
	FormatKdump                  // makedumpfile kdump-compressed "KDUMP" vmcore (doc/FORMAT.md §10.3)
)

var formatNames = [...]string{FormatAuto: "auto", FormatELF: "elf", FormatDiskdump: "diskdump", FormatKdump: "kdump"}

func (f Format) String() string {
	if f >= 0 && int(f) < len(formatNames) {
		return formatNames[f]
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat maps "elf", "diskdump", "kdump" or "auto" (case
// insensitive) to a Format.
func ParseFormat(s string) (Format, error) {
	for i, n := range formatNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Format(i), nil
		}
	}
	return FormatAuto, fmt.Errorf("diskdump: unknown vmcore format %q (want elf, diskdump or kdump): %w", s, diskdump.ErrUnsupportedVersion)
}

// DefaultFormat is what savecore wrote (doc/FORMAT.md §9.4 step 7, §13 item 1):
// ELF for uncompressed dumps, DISKDUMP for compressed ones.
func DefaultFormat(p *diskdump.Partition) Format {
	if p.Header().Status.Compressed() {
		return FormatDiskdump
	}
	return FormatELF
}

// Options selects the output format and its variants.
type Options struct {
	Format Format // FormatAuto (zero) = DefaultFormat
	// UncompressedMask is savecore -P: pages whose record page_flags&mask
	// != 0 are stored uncompressed (DISKDUMP and KDUMP).
	UncompressedMask uint64
	// StrictAnon keeps MAPPING_ANON (page_desc flag 0x2) on raw pages of a
	// DISKDUMP vmcore too, as the original savecore very likely did. By
	// default it is kept only on zlib pages, because modern readers take a
	// lone 0x2 for LZO (doc/FORMAT.md §10.2).
	StrictAnon bool
	// ShareZeroPage (KDUMP): write one zero page first and let every
	// all-zero page share its descriptor, as makedumpfile does.
	ShareZeroPage bool
	// VerifyRecords (savecore --verify) inflates every zlib record before
	// it is copied into a DISKDUMP or KDUMP vmcore: a record that does not give
	// exactly one page with a matching Adler-32 is not copied, its page
	// is lost (a *PageError in Result.Errors, counted in Lost and
	// BadRecords; bitmap 2 says "not dumped"). Without it the records are
	// copied unchecked, as the original savecore did. ELF output inflates
	// every record anyway.
	VerifyRecords bool
	// Compression is the page compression of a KDUMP vmcore; the zero
	// value is zlib. Pages that do not shrink are stored raw. With
	// another compression than zlib, the zlib records of a compressed
	// dump are inflated and compressed again.
	Compression Compression
	// DumpLevel leaves more pages out of the vmcore, by diskdump's
	// dump_level rules (doc/FORMAT.md §6.4), applied in the kernel's
	// order to each page's record: page_flags, MAPPING_ANON and content.
	// What the dump cannot decide is not guessed: free pages
	// (ExcludeFree) cannot be told apart after the dump, and a raw dump
	// has no page flags, so only ExcludeClean applies to it; Result says
	// which bits were applied. Excluded pages are absent from a DISKDUMP
	// or KDUMP file (bitmap 2 clear) and holes in an ELF file.
	DumpLevel DumpLevel
	// Workers is the number of KDUMP compression goroutines and of
	// DISKDUMP record-verification goroutines; 0 means GOMAXPROCS.
	Workers int
	// VMCOREINFO is the dumped kernel's VMCOREINFO text (found in its
	// memory or made from its System.map), stored in a KDUMP sub-header
	// and as an ELF note so that tools read the log without vmlinux; nil
	// keeps the one made from the header (see vmcoreinfo.go).
	VMCOREINFO []byte
	// Progress, when not nil, is called with the bytes of the partition
	// consumed so far and the total to consume (the extent the kernel
	// wrote). It is called from the goroutine that called Write.
	Progress func(done, total int64)
}

// Result describes a written vmcore.
type Result struct {
	Format Format
	// Size is the length of the file (ELF: H + max_mapnr*B, sparse).
	Size int64
	// Pages is the number of pages stored; Lost is the number of pages the
	// partition could hold (its dumpable upper bound) that were not
	// recovered.
	Pages, Lost uint64
	// ZeroPages counts the all-zero pages: in KDUMP they share one zero
	// page; in ELF, those in stretches of at least 16 pages are left as
	// holes (included in Pages).
	ZeroPages uint64
	// BadRecords counts the zlib records VerifyRecords rejected (their
	// pages are also in Lost).
	BadRecords uint64
	// Excluded counts the pages Options.DumpLevel left out (in neither
	// Pages nor Lost).
	Excluded uint64
	// DumpLevel is the level the vmcore's pages have: the part of
	// Options.DumpLevel that was applied (see DumpLevel.Split), with what
	// an input file recorded as applied before (WriteFile of a KDUMP
	// file). DumpLevelUnapplied is the part of Options.DumpLevel that
	// could not be decided. A KDUMP file records DumpLevel in its
	// sub-header.
	DumpLevel, DumpLevelUnapplied DumpLevel
	// Incomplete is set when the dump was partial or incomplete, pages
	// were lost or DumpLevel left pages out; an ELF vmcore records it
	// (NT_DISKDUMP 1: crash says "[PARTIAL DUMP]"), a DISKDUMP vmcore keeps
	// the partition's status.
	Incomplete bool
	// PagesMissing is the part of Incomplete that is not a dump level's
	// choice: the dump was cut short, or pages were lost or unreadable.
	// A KDUMP vmcore records it as status INCOMPLETE, which makedumpfile
	// sets only for a dump it could not finish and for which crash warns
	// that the dump file is incomplete; pages a dump level left out are
	// simply absent from bitmap 2, as in makedumpfile -d files.
	PagesMissing bool
	// Errors joins the per-page errors met (up to a cap), or nil.
	Errors error
}

// MarkedIncomplete reports whether the vmcore written says that it is
// partial or incomplete: Incomplete for an ELF or DISKDUMP file,
// PagesMissing for a KDUMP file.
func (r *Result) MarkedIncomplete() bool {
	if r.Format == FormatKdump {
		return r.PagesMissing
	}
	return r.Incomplete
}

// finish sets the counts of a result once every page went by: nmax is the
// number of pages the dump could hold.
func (r *Result) finish(s *source, nmax uint64, errs *errCollector) {
	r.Errors = errs.err()
	r.Lost = nmax - min(r.Pages+r.Excluded, nmax)
	r.Incomplete = s.incomplete() || r.Lost > 0 || r.Errors != nil || r.Excluded > 0
	missing := s.incomplete
	if s.missing != nil {
		missing = s.missing
	}
	r.PagesMissing = missing() || r.Lost > 0 || r.Errors != nil
}

// maxJoinedErrors caps Result.Errors.
const maxJoinedErrors = 64

// Truncater is implemented by outputs that can set their length (*os.File,
// memfile). Write truncates such an output to zero before writing and
// to the exact final length at the end. Other io.WriterAt outputs must be
// empty; Write then writes the last byte of a file whose end would
// otherwise be a hole.
type Truncater interface {
	Truncate(size int64) error
}

// source is what the vmcore writers need from a dump: the partition
// seen through the reader's API. It is separate from *Partition so the
// encoders can be tested on any page sequence.
type source struct {
	arch       diskdump.Arch // the partition's architecture (header machine or layout)
	hdr        *diskdump.Header
	sub        *diskdump.SubHeader
	ram        *diskdump.Bitmap // PFN-indexed bitmap 1
	dumpable   *diskdump.Bitmap // PFN-indexed upper bound of stored pages
	incomplete func() bool      // partial or incomplete dump (asked after the pages)
	// missing reports, after the pages, whether pages the dump was meant
	// to hold are missing (Partition.PagesMissing); nil means incomplete.
	missing    func() bool
	pages      iter.Seq2[*diskdump.Page, error]
	records    bool   // pages carry page_flags and MAPPING_ANON (a compressed dump's records)
	total      int64  // bytes of the partition the pages come from (progress)
	vmcoreinfo []byte // Options.VMCOREINFO
	// rawAnonUnknown: raw pages may have lost MAPPING_ANON (DISKDUMP
	// vmcore input).
	rawAnonUnknown bool
	// done is the dump level its pages already had applied (recorded by
	// a KDUMP file); apply, set by writeSource, the bits applied now.
	done, apply DumpLevel
}

// archOf is the dump's architecture: the reader's, else utsname.machine's.
func (s *source) archOf() diskdump.Arch {
	if s.arch != diskdump.ArchUnknown {
		return s.arch
	}
	return s.hdr.Arch()
}

func (s *source) blockSize() int { return int(s.hdr.BlockSize) }
func (s *source) maxPFN() uint64 { return uint64(s.hdr.MaxMapnr) }
func (s *source) ramBlocks() int64 {
	return int64(diskdump.BitmapBlocksFor(s.maxPFN(), s.blockSize()))
}
func (s *source) subBlocks() int64 {
	if s.hdr.SubHdrSize < 1 {
		return 1
	}
	return int64(s.hdr.SubHdrSize)
}

// check rejects a source the writers cannot encode. Partitions that
// OpenPartition accepted always pass.
func (s *source) check() error {
	if s.hdr == nil || s.ram == nil || s.dumpable == nil || s.pages == nil {
		return fmt.Errorf("diskdump: vmcore: incomplete dump description: %w", diskdump.ErrCorrupt)
	}
	if !diskdump.ValidBlockSize(int64(s.hdr.BlockSize)) || s.hdr.MaxMapnr == 0 || s.hdr.Layout.Order == nil {
		return fmt.Errorf("diskdump: vmcore: block size %d, max_mapnr %d: %w", s.hdr.BlockSize, s.hdr.MaxMapnr, diskdump.ErrCorrupt)
	}
	return nil
}

func estimateSize(s *source, f Format) int64 {
	b := int64(s.blockSize())
	n := int64(s.dumpable.Count())
	switch f {
	case FormatELF:
		// Headers, the pages, and the block holding the last byte.
		return elfHeaderSize(s.archOf(), s.blockSize()) + n*b + b
	default:
		meta := (1 + s.subBlocks() + 2*s.ramBlocks()) * b
		// The table and the data, each rounded up to a block.
		est := meta + (n*pageDescSize+b-1)/b*b + n*b + b
		if f == FormatKdump {
			est += b // shared zero page
		}
		return est
	}
}

func writeSource(w io.WriterAt, s *source, f Format, opt Options) (*Result, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	res := &Result{Format: f}
	s.vmcoreinfo = opt.VMCOREINFO
	if f != FormatELF && f != FormatDiskdump && f != FormatKdump {
		return nil, fmt.Errorf("diskdump: vmcore format %v: %w", f, diskdump.ErrUnsupportedVersion)
	}
	if !opt.Compression.valid() {
		return nil, fmt.Errorf("diskdump: KDUMP compression %v: %w", opt.Compression, diskdump.ErrUnsupportedVersion)
	}
	if err := checkDumpLevel(opt.DumpLevel); err != nil {
		return nil, err
	}
	s.apply, res.DumpLevelUnapplied = (opt.DumpLevel &^ s.done).Split(s.records)
	res.DumpLevel = s.done | s.apply
	// Holes and unused table entries are never written: start from an
	// empty file when the output can be truncated.
	if tr, ok := w.(Truncater); ok {
		if err := tr.Truncate(0); err != nil {
			return nil, fmt.Errorf("diskdump: truncating the vmcore output: %w", err)
		}
	}
	var err error
	switch f {
	case FormatELF:
		err = writeELF(w, s, opt, res)
	case FormatDiskdump:
		err = writeDiskdump(w, s, opt, res)
	case FormatKdump:
		err = writeKdump(w, s, opt, res)
	default:
		return nil, fmt.Errorf("diskdump: vmcore format %v: %w", f, diskdump.ErrUnsupportedVersion)
	}
	return res, err
}

func partitionSource(p *diskdump.Partition) *source {
	h := p.Header()
	bs := int64(p.BlockSize())
	g := p.Geometry()
	end := int64(h.WrittenBlocks)
	if uint64(end) <= g.FirstDataBlock() {
		end = int64(h.DeviceBlocks)
	}
	return &source{
		arch: p.Arch(), hdr: h, sub: p.SubHeader(), ram: p.RAMBitmap(), dumpable: p.DumpableBitmap(),
		incomplete: p.Incomplete, missing: p.PagesMissing, pages: p.Pages(), records: h.Status.Compressed(), total: end * bs,
	}
}

// EstimateSize is an upper bound of the bytes the vmcore will occupy
// on disk (allocated blocks, not the apparent size of a sparse ELF file):
// the headers plus every page the partition may hold stored uncompressed.
func EstimateSize(p *diskdump.Partition, opt Options) int64 {
	return estimateSize(partitionSource(p), resolveFormat(p, opt.Format))
}

func resolveFormat(p *diskdump.Partition, f Format) Format {
	if f == FormatAuto {
		return DefaultFormat(p)
	}
	return f
}

// Write converts the dump on p into a vmcore file written to w in
// one pass, in PFN order, with bounded memory. Pages the partition lost
// are counted and reported in the result (Errors); they do not stop the
// conversion. The returned error is set only when the vmcore cannot be
// written (an error of w, an unknown format or an unusable dump); the
// result then describes what was done.
//
// The writers skip holes (ELF) and unused parts of the page_desc table
// (DISKDUMP, KDUMP), which must read as zeros: an output implementing
// Truncater is truncated to zero first and to its final size at the end;
// any other output must be empty.
func Write(w io.WriterAt, p *diskdump.Partition, opt Options) (*Result, error) {
	return writeSource(w, partitionSource(p), resolveFormat(p, opt.Format), opt)
}

// errCollector joins per-page errors up to maxJoinedErrors.
type errCollector struct {
	errs    []error
	dropped int
}

func (c *errCollector) add(err error) {
	if len(c.errs) < maxJoinedErrors {
		c.errs = append(c.errs, err)
		return
	}
	c.dropped++
}

func (c *errCollector) err() error {
	if c.dropped > 0 {
		c.errs = append(c.errs, fmt.Errorf("diskdump: %d more page errors not shown", c.dropped))
	}
	return errors.Join(c.errs...)
}

// progress rate-limits the Progress callback.
type progress struct {
	fn    func(done, total int64)
	total int64
	last  int64
}

const progressStep = 4 << 20

// page reports the partition consumed up to the end of pg's data.
func (p *progress) page(pg *diskdump.Page) {
	if p.fn != nil {
		p.consumed(pg.Off + int64(len(pg.Data)))
	}
}

// consumed reports the partition consumed up to offset done.
func (p *progress) consumed(done int64) {
	if p.fn == nil {
		return
	}
	done = min(done, p.total)
	if done-p.last >= progressStep {
		p.last = done
		p.fn(done, p.total)
	}
}

func (p *progress) finish() {
	if p.fn != nil {
		p.fn(p.total, p.total)
	}
}

// pageFilter applies the checks every writer makes to each page of the
// sequence: known PFN, strictly ascending, within the dumpable bound and
// of a plausible size. It returns false with the error for pages to skip.
type pageFilter struct {
	s       *source
	b       int
	next    uint64 // lowest PFN acceptable next
	started bool
}

func (f *pageFilter) accept(pg *diskdump.Page) error {
	switch {
	case pg.PFN >= f.s.maxPFN():
		return &diskdump.PageError{PFN: pg.PFN, Off: pg.Off, Err: fmt.Errorf("diskdump: PFN beyond max_mapnr %d: %w", f.s.maxPFN(), diskdump.ErrCorrupt)}
	case f.started && pg.PFN < f.next:
		return &diskdump.PageError{PFN: pg.PFN, Off: pg.Off, Err: fmt.Errorf("diskdump: page out of PFN order: %w", diskdump.ErrCorrupt)}
	case !f.s.dumpable.Test(pg.PFN):
		return &diskdump.PageError{PFN: pg.PFN, Off: pg.Off, Err: fmt.Errorf("diskdump: page outside the dumpable bitmap: %w", diskdump.ErrCorrupt)}
	case pg.Compressed && (len(pg.Data) == 0 || len(pg.Data) > f.b):
		return &diskdump.PageError{PFN: pg.PFN, Off: pg.Off, Err: fmt.Errorf("diskdump: compressed record of %d bytes: %w", len(pg.Data), diskdump.ErrCorrupt)}
	case !pg.Compressed && len(pg.Data) != f.b:
		return &diskdump.PageError{PFN: pg.PFN, Off: pg.Off, Err: fmt.Errorf("diskdump: raw page of %d bytes: %w", len(pg.Data), diskdump.ErrCorrupt)}
	}
	f.started = true
	f.next = pg.PFN + 1
	return nil
}

// keptPages yields, in PFN order, the pages of s that go into the vmcore:
// a page the reader lost or that pageFilter refuses is added to errs, one
// the dump level leaves out is counted in res.Excluded, and the progress
// counts every page read. The page loops of the ELF and DISKDUMP writers
// range over it.
func (s *source) keptPages(filter *pageFilter, prog *progress, errs *errCollector, res *Result) iter.Seq[*diskdump.Page] {
	level := s.levelFilter()
	return func(yield func(*diskdump.Page) bool) {
		for pg, err := range s.pages {
			if err != nil {
				errs.add(err)
				continue
			}
			prog.page(pg)
			if err := filter.accept(pg); err != nil {
				errs.add(err)
				continue
			}
			if level.excludes(pg.Data, pg.Compressed, pg.Flags, pg.PageFlags) {
				res.Excluded++ // absent from DISKDUMP and KDUMP files, a hole in ELF
				continue
			}
			if !yield(pg) {
				return
			}
		}
	}
}
