package kernel

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/elfcore"
)

// maxPAddr bounds the physical addresses of an ELF core's segments, so that
// page numbers and byte addresses stay far from overflow.
const maxPAddr = 1 << 62

// segment is a PT_LOAD segment of an ELF core: physical memory
// [paddr, paddr+memSize), of which the first fileSize bytes are at file
// offset off and the rest reads as zeros.
type segment struct {
	paddr, off, fileSize, memSize uint64
}

// ELFCoreSource is a MemorySource over an ELF core file of a real machine
// (QEMU dump-guest-memory output, /proc/vmcore): RAM is the pages that
// PT_LOAD segments cover, addressed by p_paddr. Page attributes are
// unknown (all zero), so of the dump_level bits only zero-page exclusion
// has an effect. Pages are read on demand through the io.ReaderAt.
type ELFCoreSource struct {
	r          io.ReaderAt
	pageSize   int
	class64    bool
	order      binary.ByteOrder
	machine    uint16
	segs       []segment // sorted by paddr, not overlapping
	maxPFN     uint64
	vmcoreinfo map[string]string
}

// elfError locates a problem of an ELF core file (not block-addressed).
func elfError(off int64, field string, err error, format string, args ...any) error {
	return &diskdump.FormatError{Off: off, Blk: -1, Field: field, Msg: fmt.Sprintf(format, args...), Err: err}
}

// NewELFCoreSource decodes the ELF header, program headers and notes of a
// core file of size bytes. Every PT_LOAD segment's file part must lie in
// the file and segments must not overlap; a damaged note is ignored (only
// VMCOREINFO is used). pageSize 0 takes PAGESIZE from the VMCOREINFO note,
// else the page size of the architecture in e_machine. Errors are
// *diskdump.FormatError values wrapping ErrCorrupt, ErrTruncated or
// ErrUnsupportedVersion.
func NewELFCoreSource(r io.ReaderAt, size int64, pageSize int) (*ELFCoreSource, error) {
	f, err := elfcore.Open(r, size)
	if err != nil {
		return nil, err
	}
	s := &ELFCoreSource{r: r, class64: f.Is64(), order: f.Order, machine: uint16(f.Machine)}
	if s.segs, err = loadSegments(f, size); err != nil {
		return nil, err
	}
	notes, _, err := f.Notes()
	if err != nil {
		return nil, err
	}
	s.vmcoreinfo = elfcore.VMCOREINFO(notes)
	if pageSize == 0 {
		if v, err := strconv.Atoi(s.vmcoreinfo["PAGESIZE"]); err == nil {
			pageSize = v
		} else if a := s.Arch(); a != diskdump.ArchUnknown {
			pageSize = a.PageSize()
		} else {
			pageSize = 4096
		}
	}
	if !diskdump.ValidBlockSize(int64(pageSize)) {
		return nil, elfError(0, "PAGESIZE", diskdump.ErrCorrupt, "page size %d is not a power of two from 4096 to 65536", pageSize)
	}
	s.pageSize = pageSize
	last := s.segs[len(s.segs)-1]
	s.maxPFN = (last.paddr + last.memSize + uint64(pageSize) - 1) / uint64(pageSize)
	return s, nil
}

// loadSegments returns the non-empty PT_LOAD segments sorted by physical
// address, checking that their file parts are in the file and that they
// do not overlap.
func loadSegments(f *elfcore.File, size int64) ([]segment, error) {
	var segs []segment
	for i, p := range f.Loads() {
		if p.Off > uint64(size) || p.Filesz > uint64(size)-p.Off {
			return nil, elfError(p.At, "p_offset", diskdump.ErrTruncated,
				"PT_LOAD %d: %d bytes at offset %d are past the end of the %d-byte file", i, p.Filesz, p.Off, size)
		}
		if p.Paddr+p.Memsz > maxPAddr {
			return nil, elfError(p.At, "p_paddr", diskdump.ErrCorrupt, "PT_LOAD %d: [%#x, +%#x) is beyond %#x", i, p.Paddr, p.Memsz, uint64(maxPAddr))
		}
		if p.Memsz > 0 {
			segs = append(segs, segment{paddr: p.Paddr, off: p.Off, fileSize: p.Filesz, memSize: p.Memsz})
		}
	}
	if len(segs) == 0 {
		return nil, elfError(int64(f.Phoff), "Phdr", diskdump.ErrCorrupt, "no PT_LOAD segment")
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmp.Compare(a.paddr, b.paddr) })
	for i := 1; i < len(segs); i++ {
		if prev := segs[i-1]; prev.paddr+prev.memSize > segs[i].paddr {
			return nil, elfError(int64(f.Phoff), "p_paddr", diskdump.ErrCorrupt, "PT_LOAD segments [%#x, %#x) and [%#x, ...) overlap",
				prev.paddr, prev.paddr+prev.memSize, segs[i].paddr)
		}
	}
	return segs, nil
}

// Arch is the architecture named by e_machine (ArchUnknown for others).
func (s *ELFCoreSource) Arch() diskdump.Arch {
	for _, a := range diskdump.Arches {
		if a.ELFMachine() == s.machine {
			return a
		}
	}
	return diskdump.ArchUnknown
}

// osRelease is OSRELEASE from the VMCOREINFO note, or "".
func (s *ELFCoreSource) osRelease() string { return s.vmcoreinfo["OSRELEASE"] }

// Utsname is DefaultUtsname of the core's architecture with the release
// from VMCOREINFO when the note is present, for Config.Utsname; callers
// override fields.
func (s *ELFCoreSource) Utsname() diskdump.Utsname {
	a := s.Arch()
	u := DefaultUtsname(a)
	if a == diskdump.ArchUnknown {
		u.Machine = ""
	}
	if r := s.osRelease(); r != "" {
		u.Release = r
	}
	return u
}

// PageSize is the page size the core is read with.
func (s *ELFCoreSource) PageSize() int { return s.pageSize }

// MaxPFN is one past the last page a PT_LOAD segment touches.
func (s *ELFCoreSource) MaxPFN() uint64 { return s.maxPFN }

// segIndex returns the index of the last segment starting below end, or -1.
func (s *ELFCoreSource) segIndex(end uint64) int {
	i, _ := slices.BinarySearchFunc(s.segs, end, func(g segment, t uint64) int {
		if g.paddr < t {
			return -1
		}
		return 1
	})
	return i - 1
}

// IsRAM reports whether a PT_LOAD segment covers any byte of page pfn.
func (s *ELFCoreSource) IsRAM(pfn uint64) bool {
	if pfn >= s.maxPFN {
		return false
	}
	start := pfn * uint64(s.pageSize)
	i := s.segIndex(start + uint64(s.pageSize))
	return i >= 0 && s.segs[i].paddr+s.segs[i].memSize > start
}

// Attrs returns zero attributes: an ELF core does not carry struct page.
func (s *ELFCoreSource) Attrs(uint64) PageAttrs { return PageAttrs{} }

// ReadPage reads page pfn from the segments covering it; bytes no
// segment's file part covers read as zeros.
func (s *ELFCoreSource) ReadPage(pfn uint64, dst []byte) error {
	ps := uint64(s.pageSize)
	if len(dst) < s.pageSize {
		return &diskdump.PageError{PFN: pfn, Off: -1, Err: fmt.Errorf("diskdump: page buffer of %d bytes, need %d: %w", len(dst), ps, diskdump.ErrTruncated)}
	}
	if !s.IsRAM(pfn) {
		return &diskdump.PageError{PFN: pfn, Off: -1, Err: fmt.Errorf("diskdump: ELF core: PFN %d is not in a PT_LOAD segment: %w", pfn, diskdump.ErrCorrupt)}
	}
	dst = dst[:ps]
	clear(dst)
	start, end := pfn*ps, (pfn+1)*ps
	for i := s.segIndex(end); i >= 0 && s.segs[i].paddr+s.segs[i].memSize > start; i-- {
		g := s.segs[i]
		a, b := max(start, g.paddr), min(end, g.paddr+g.fileSize)
		if b <= a {
			continue
		}
		off := int64(g.off + (a - g.paddr))
		if err := diskdump.ReadFull(s.r, dst[a-start:b-start], off); err != nil {
			return &diskdump.PageError{PFN: pfn, Off: off, Err: fmt.Errorf("diskdump: ELF core: reading PT_LOAD data: %w", err)}
		}
	}
	return nil
}
