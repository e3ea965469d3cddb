package vmcore

import (
	"fmt"
	"io"
	"strings"

	"github.com/dumpkit/dumpkit/diskdump"
)

// WriteFile writes the pages of the DISKDUMP or KDUMP vmcore f anew into
// w, in opt.Format (FormatAuto: f's format), leaving out the pages
// opt.DumpLevel excludes: what dumpfilter does. It is Write with f in the
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
// ELF input is not supported yet (ErrUnsupportedVersion).
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
		return nil, fmt.Errorf("diskdump: rewriting an ELF vmcore: %w", diskdump.ErrUnsupportedVersion)
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
