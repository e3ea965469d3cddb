package vmcore

import (
	"io"
	"strings"

	"github.com/dumpkit/dumpkit/diskdump"
)

// WriteFile writes the pages of the vmcore f anew into w, in opt.Format
// (FormatAuto: f's format), leaving out the pages opt.DumpLevel excludes:
// what dumpfilter does. It is Write with f in the
// place of the partition: a page f cannot give is lost (in
// Result.Errors), and the rules apply as far as f's descriptors allow.
//
// A DISKDUMP file keeps each record's page_flags, and MAPPING_ANON on its
// zlib pages (on raw pages too only if Options.StrictAnon was set when it
// was written): a raw page without the flag may be anonymous, so the
// cache and anonymous rules leave it in. A KDUMP file keeps neither, so
// only ExcludeClean applies to it (Result.DumpLevelUnapplied says so), and
// the bits its sub-header records as applied are not applied again:
// filtering a filtered file at the same level leaves out nothing more.
// Zlib pages are copied as they are; pages of the other KDUMP
// compressions are decompressed first.
//
// An ELF file has neither page flags nor a dump header: only ExcludeClean
// applies, every PFN a PT_LOAD covers counts as RAM (holes are zero
// pages), and the header of a DISKDUMP or KDUMP output knows the
// architecture, the registers (NT_PRSTATUS) and the panic task
// (NT_TASKSTRUCT), not the kernel release nor the crash time.
func WriteFile(w io.WriterAt, f *File, opt Options) (*Result, error) {
	s, err := fileSource(f)
	if err != nil {
		return nil, err
	}
	format := opt.Format
	if format == FormatAuto {
		format = f.format
	}
	return writeSource(w, s, format, opt)
}

// fileSource describes a DISKDUMP or KDUMP file as the writers see a
// partition: a diskdump header (a KDUMP header's status and timestamp
// translated), its bitmaps, and its pages as records.
func fileSource(f *File) (*source, error) {
	if f.format == FormatELF {
		return elfSource(f)
	}
	hdr := *f.hdr
	s := &source{hdr: &hdr, ram: f.ram, records: hdr.Status.Compressed(), incomplete: f.Partial, pages: f.records, total: f.size}
	if f.format == FormatKdump {
		// The KDUMP status bits are the compression and INCOMPLETE; its
		// timestamp is struct timeval; its sub-header is
		// kdump_sub_header, not the architecture's registers.
		hdr.Status = diskdump.StatusCompleted
		if f.hdr.Status&KdumpStatusIncomplete != 0 {
			hdr.Status = diskdump.StatusIncompleted
		}
		if f.hdr.Status&diskdump.Status(PageDescZlib) != 0 {
			hdr.Status |= diskdump.StatusCompressed // its zlib pages stay zlib
		}
		hdr.Signature, hdr.SubHdrSize = diskdump.DumpSignature, 1
		if !strings.HasPrefix(hdr.Utsname.Release, "2.4.") {
			hdr.Frac *= 1000
		}
		s.records = false
		if f.kdumpSub != nil {
			s.done = levelFromMakedumpfile(int(f.kdumpSub.DumpLevel))
		}
	} else {
		s.rawAnonUnknown = true
		if a := hdr.Arch(); a != diskdump.ArchUnknown {
			// Registers that do not decode are not needed to rewrite pages.
			s.sub, _ = diskdump.DecodeSubHeader(a, f.sub)
		}
	}
	// The pages of the file: set in both bitmaps (File.Pages).
	dumpable := diskdump.NewBitmap(make([]byte, len(f.ram.Bytes())))
	for pfn := range f.Pages() {
		dumpable.Set(pfn)
	}
	s.dumpable = dumpable
	return s, nil
}

// records yields the pages of a DISKDUMP or KDUMP file as the writers
// take them from a partition: zlib pages as zlib records, the others
// raw, with the descriptor's page_flags and flags. A page that cannot be
// read is a *PageError.
func (v *File) records(yield func(*diskdump.Page, error) bool) {
	page := make([]byte, v.pageSize)
	var pg diskdump.Page
	for pfn := range v.Pages() {
		sp, err := v.readStored(pfn)
		if err != nil {
			if !yield(nil, err) {
				return
			}
			continue
		}
		pg = diskdump.Page{PFN: pfn, Off: sp.off, Data: sp.data, PageFlags: sp.pageFlags}
		switch {
		case v.format == FormatDiskdump:
			pg.Compressed, pg.Flags = sp.compressed, sp.flags&(PageDescCompressed|PageDescMappingAnon)
		case sp.flags&PageDescZlib != 0:
			pg.Compressed, pg.Flags = true, PageDescCompressed
		case sp.compressed:
			if err := v.dec.decode(page, sp.data, sp.flags); err != nil {
				if !yield(nil, &diskdump.PageError{PFN: pfn, Off: sp.off, Err: err}) {
					return
				}
				continue
			}
			pg.Data = page
		}
		if !yield(&pg, nil) {
			return
		}
	}
}

// elfSource describes an ELF vmcore as the writers see a raw dump: a
// header made of what the ELF file says, every PFN of its PT_LOADs as RAM.
func elfSource(f *File) (*source, error) {
	var eh [20]byte
	if err := f.readFull(eh[:], 0, "Elf_Ehdr"); err != nil {
		return nil, err
	}
	a := diskdump.ArchUnknown
	for _, c := range []diskdump.Arch{diskdump.ArchI386, diskdump.ArchX86_64, diskdump.ArchPPC64, diskdump.ArchIA64} {
		if c.ELFMachine() == f.order.Uint16(eh[18:]) && c.Is64() == (eh[4] == elfClass64) && c.ByteOrder() == f.order {
			a = c
		}
	}
	b := f.pageSize
	// Memory stays bounded by the file: PT_LOADs that claim far more
	// memory than the file holds (its RAM bitmap would be the largest
	// allocation) are refused.
	bounded := f.maxPFN <= (uint64(f.size)*2+16<<20)/uint64(b)
	if a == diskdump.ArchUnknown || !diskdump.ValidBlockSize(int64(b)) || f.maxPFN == 0 || f.maxPFN > 1<<32-1 || !bounded {
		return nil, formatErr(18, -1, "e_machine", diskdump.ErrUnsupportedVersion,
			"ELF machine %d, class %d, page size %d, %d pages: not a vmcore Write can rewrite", f.order.Uint16(eh[18:]), eh[4], b, f.maxPFN)
	}
	regs, task, sw := elfCPUState(f, a)
	raw, err := diskdump.EncodeSubHeader(a, b, regs, sw)
	if err != nil {
		return nil, err
	}
	sub, err := diskdump.DecodeSubHeader(a, raw)
	if err != nil {
		return nil, err
	}
	hdr := &diskdump.Header{
		Layout: diskdump.LayoutOf(a), Signature: diskdump.DumpSignature, Utsname: diskdump.Utsname{Sysname: "Linux", Machine: a.Machine()},
		Status: diskdump.StatusCompleted, BlockSize: int32(b), SubHdrSize: 1, MaxMapnr: uint32(f.maxPFN), NrCPUs: 1, Tasks: []uint64{task},
	}
	if f.partial {
		hdr.Status = diskdump.StatusIncompleted
	}
	ram := diskdump.NewBitmap(make([]byte, diskdump.BitmapBlocksFor(f.maxPFN, b)*uint64(b)))
	for pfn := range f.Pages() {
		ram.Set(pfn)
	}
	return &source{
		arch: a, hdr: hdr, sub: sub, ram: ram, dumpable: ram, incomplete: f.Partial,
		pages: f.elfPages, total: f.size,
	}, nil
}

// elfCPUState takes the registers of the panic CPU from NT_PRSTATUS and
// the panic task (and ia64's switch_stack) from NT_TASKSTRUCT.
func elfCPUState(f *File, a diskdump.Arch) (regs []uint64, task uint64, sw []uint64) {
	ws := 8
	if !a.Is64() {
		ws = 4
	}
	word := func(b []byte) uint64 {
		if ws == 8 {
			return f.order.Uint64(b)
		}
		return uint64(f.order.Uint32(b))
	}
	for _, n := range f.notes {
		switch n.Type {
		case ntPrstatus:
			_, off := prstatusGeometry(a)
			if regs == nil && len(n.Desc) >= off+a.GRegsSize() {
				for i := 0; i < a.GRegsSize(); i += ws {
					regs = append(regs, word(n.Desc[off+i:]))
				}
			}
		case ntTaskstruct:
			if len(n.Desc) >= 2*ws {
				task = word(n.Desc)
				if a == diskdump.ArchIA64 {
					sw = []uint64{word(n.Desc[ws:])}
				}
			}
		}
	}
	return regs, task, sw
}

// elfPages yields every page of an ELF vmcore's PT_LOADs as a raw page.
func (v *File) elfPages(yield func(*diskdump.Page, error) bool) {
	page := make([]byte, v.pageSize)
	var pg diskdump.Page
	for pfn := range v.Pages() {
		got, err := v.ReadPage(pfn, page)
		if err != nil {
			if !yield(nil, err) {
				return
			}
			continue
		}
		pg = diskdump.Page{PFN: pfn, Off: int64(pfn) * int64(v.pageSize), Data: got}
		if !yield(&pg, nil) {
			return
		}
	}
}
