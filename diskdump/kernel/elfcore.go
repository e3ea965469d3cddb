package kernel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/dumpkit/dumpkit/diskdump"
)

// ELF constants used by the ELF core source.
const (
	coreClass32  = 1
	coreClass64  = 2
	coreData2LSB = 1
	coreData2MSB = 2
	coreETCore   = 4
	corePTLoad   = 1
	corePTNote   = 4
	corePNXNum   = 0xffff

	// coreMaxNoteBytes bounds what is read of PT_NOTE segments.
	coreMaxNoteBytes = 16 << 20
)

// ELFSegment is a PT_LOAD segment of an ELF core: physical memory
// [PAddr, PAddr+MemSize), of which the first FileSize bytes are at file
// offset Off and the rest reads as zeros.
type ELFSegment struct {
	PAddr, Off, FileSize, MemSize uint64
}

// ELFCoreSource is a MemorySource over an ELF core file of a real machine
// (QEMU dump-guest-memory output, /proc/vmcore): RAM is the pages that
// PT_LOAD segments cover, addressed by p_paddr. Page attributes are
// unknown (all zero), so of the dump_level bits only zero-page exclusion
// has an effect. Pages are read on demand through the io.ReaderAt.
type ELFCoreSource struct {
	r          io.ReaderAt
	size       int64
	pageSize   int
	class64    bool
	order      binary.ByteOrder
	machine    uint16
	segs       []ELFSegment // sorted by PAddr, not overlapping
	maxPFN     uint64
	vmcoreinfo map[string]string
}

func coreErr(off int64, field string, err error, format string, args ...any) error {
	return &diskdump.FormatError{Off: off, Blk: -1, Field: field, Msg: "ELF core: " + fmt.Sprintf(format, args...), Err: err}
}

// NewELFCoreSource decodes the ELF header, program headers and notes of a
// core file of size bytes. pageSize 0 takes PAGESIZE from the VMCOREINFO
// note, else the page size of the architecture in e_machine. Errors are
// *FormatError values wrapping ErrCorrupt, ErrTruncated or
// ErrUnsupportedVersion.
func NewELFCoreSource(r io.ReaderAt, size int64, pageSize int) (*ELFCoreSource, error) {
	var id [64]byte
	n, err := r.ReadAt(id[:], 0)
	if n < 16 {
		if err == nil || err == io.EOF {
			err = diskdump.ErrTruncated
		}
		return nil, coreErr(0, "e_ident", err, "file of %d bytes has no ELF header", size)
	}
	if !bytes.Equal(id[:4], []byte("\x7fELF")) {
		return nil, coreErr(0, "e_ident", diskdump.ErrCorrupt, "no ELF magic")
	}
	s := &ELFCoreSource{r: r, size: size}
	switch id[4] {
	case coreClass32:
	case coreClass64:
		s.class64 = true
	default:
		return nil, coreErr(4, "e_ident[EI_CLASS]", diskdump.ErrUnsupportedVersion, "class %d", id[4])
	}
	switch id[5] {
	case coreData2LSB:
		s.order = binary.LittleEndian
	case coreData2MSB:
		s.order = binary.BigEndian
	default:
		return nil, coreErr(5, "e_ident[EI_DATA]", diskdump.ErrUnsupportedVersion, "data encoding %d", id[5])
	}
	ehsize := 52
	if s.class64 {
		ehsize = 64
	}
	if n < ehsize {
		return nil, coreErr(int64(n), "Ehdr", diskdump.ErrTruncated, "ELF header needs %d bytes, file has %d", ehsize, n)
	}
	o := s.order
	if t := o.Uint16(id[16:]); t != coreETCore {
		return nil, coreErr(16, "e_type", diskdump.ErrUnsupportedVersion, "e_type %d is not ET_CORE", t)
	}
	s.machine = o.Uint16(id[18:])
	var phoff, shoff uint64
	var phentsize, phnum int
	if s.class64 {
		phoff, shoff = o.Uint64(id[32:]), o.Uint64(id[40:])
		phentsize, phnum = int(o.Uint16(id[54:])), int(o.Uint16(id[56:]))
	} else {
		phoff, shoff = uint64(o.Uint32(id[28:])), uint64(o.Uint32(id[32:]))
		phentsize, phnum = int(o.Uint16(id[42:])), int(o.Uint16(id[44:]))
	}
	minEnt := 32
	if s.class64 {
		minEnt = 56
	}
	if phnum == corePNXNum {
		// The real count is in sh_info of section header 0.
		off := shoff + 28
		if s.class64 {
			off = shoff + 44
		}
		var b [4]byte
		if shoff == 0 || off > uint64(size) || !coreReadFull(r, b[:], int64(off)) {
			return nil, coreErr(int64(shoff), "sh_info", diskdump.ErrTruncated, "e_phnum is PN_XNUM but section header 0 is unreadable")
		}
		phnum = int(o.Uint32(b[:]))
	}
	if phentsize < minEnt {
		return nil, coreErr(int64(ehsize-12), "e_phentsize", diskdump.ErrCorrupt, "program header size %d < %d", phentsize, minEnt)
	}
	if phnum == 0 {
		return nil, coreErr(int64(ehsize-8), "e_phnum", diskdump.ErrCorrupt, "no program headers")
	}
	if phoff >= uint64(size) || uint64(phnum) > (uint64(size)-phoff)/uint64(phentsize) {
		return nil, coreErr(int64(min(phoff, uint64(size))), "e_phoff", diskdump.ErrTruncated, "%d program headers of %d bytes at offset %d do not fit in %d bytes", phnum, phentsize, phoff, size)
	}
	ph := make([]byte, phentsize*phnum)
	if !coreReadFull(r, ph, int64(phoff)) {
		return nil, coreErr(int64(phoff), "Phdr", diskdump.ErrTruncated, "program headers unreadable")
	}
	var notes [][2]uint64
	for i := range phnum {
		p := ph[i*phentsize:]
		pos := int64(phoff) + int64(i*phentsize)
		var typ uint32
		var off, paddr, filesz, memsz uint64
		if s.class64 {
			typ, off, paddr, filesz, memsz = o.Uint32(p), o.Uint64(p[8:]), o.Uint64(p[24:]), o.Uint64(p[32:]), o.Uint64(p[40:])
		} else {
			typ, off, paddr = o.Uint32(p), uint64(o.Uint32(p[4:])), uint64(o.Uint32(p[12:]))
			filesz, memsz = uint64(o.Uint32(p[16:])), uint64(o.Uint32(p[20:]))
		}
		switch typ {
		case corePTLoad:
			if filesz > memsz {
				return nil, coreErr(pos, "p_filesz", diskdump.ErrCorrupt, "PT_LOAD %d: p_filesz %d > p_memsz %d", i, filesz, memsz)
			}
			if off > uint64(size) || filesz > uint64(size)-off {
				return nil, coreErr(pos, "p_offset", diskdump.ErrTruncated, "PT_LOAD %d: %d bytes at offset %d are past the end of the %d-byte file", i, filesz, off, size)
			}
			if paddr+memsz < paddr || paddr+memsz > 1<<62 {
				return nil, coreErr(pos, "p_paddr", diskdump.ErrCorrupt, "PT_LOAD %d: [%#x, +%#x) overflows", i, paddr, memsz)
			}
			if memsz > 0 {
				s.segs = append(s.segs, ELFSegment{PAddr: paddr, Off: off, FileSize: filesz, MemSize: memsz})
			}
		case corePTNote:
			if off > uint64(size) || filesz > uint64(size)-off {
				return nil, coreErr(pos, "p_offset", diskdump.ErrTruncated, "PT_NOTE %d: %d bytes at offset %d are past the end of the %d-byte file", i, filesz, off, size)
			}
			notes = append(notes, [2]uint64{off, filesz})
		}
	}
	if len(s.segs) == 0 {
		return nil, coreErr(int64(phoff), "Phdr", diskdump.ErrCorrupt, "no PT_LOAD segment")
	}
	slices.SortFunc(s.segs, func(a, b ELFSegment) int {
		switch {
		case a.PAddr < b.PAddr:
			return -1
		case a.PAddr > b.PAddr:
			return 1
		}
		return 0
	})
	for i := 1; i < len(s.segs); i++ {
		if prev := s.segs[i-1]; prev.PAddr+prev.MemSize > s.segs[i].PAddr {
			return nil, coreErr(int64(phoff), "p_paddr", diskdump.ErrCorrupt, "PT_LOAD segments [%#x, %#x) and [%#x, ...) overlap",
				prev.PAddr, prev.PAddr+prev.MemSize, s.segs[i].PAddr)
		}
	}
	if err := s.readNotes(notes); err != nil {
		return nil, err
	}
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
		return nil, coreErr(0, "PAGESIZE", diskdump.ErrCorrupt, "page size %d is not a power of two from 4096 to 65536", pageSize)
	}
	s.pageSize = pageSize
	last := s.segs[len(s.segs)-1]
	s.maxPFN = (last.PAddr + last.MemSize + uint64(pageSize) - 1) / uint64(pageSize)
	return s, nil
}

func coreReadFull(r io.ReaderAt, b []byte, off int64) bool {
	n, err := r.ReadAt(b, off)
	return n == len(b) && (err == nil || err == io.EOF)
}

// readNotes reads the PT_NOTE segments and keeps the VMCOREINFO note.
func (s *ELFCoreSource) readNotes(notes [][2]uint64) error {
	var total uint64
	o := s.order
	for _, nt := range notes {
		off, n := nt[0], nt[1]
		total += n
		if total > coreMaxNoteBytes {
			return coreErr(int64(off), "PT_NOTE", diskdump.ErrCorrupt, "notes exceed %d bytes", coreMaxNoteBytes)
		}
		b := make([]byte, n)
		if !coreReadFull(s.r, b, int64(off)) {
			return coreErr(int64(off), "PT_NOTE", diskdump.ErrTruncated, "notes unreadable")
		}
		for len(b) >= 12 {
			namesz, descsz, _ := uint64(o.Uint32(b)), uint64(o.Uint32(b[4:])), o.Uint32(b[8:])
			nameEnd := 12 + (namesz+3)&^3
			descEnd := nameEnd + (descsz+3)&^3
			if nameEnd > uint64(len(b)) || descEnd > uint64(len(b)) {
				break // a truncated last note: ignore it, as readers do
			}
			name := string(bytes.TrimRight(b[12:12+namesz], "\x00"))
			if name == "VMCOREINFO" && s.vmcoreinfo == nil {
				s.vmcoreinfo = coreParseVmcoreinfo(b[nameEnd : nameEnd+descsz])
			}
			b = b[descEnd:]
		}
	}
	return nil
}

func coreParseVmcoreinfo(b []byte) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(string(bytes.TrimRight(b, "\x00")), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			if _, dup := m[k]; !dup {
				m[k] = v
			}
		}
	}
	return m
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

// Machine is e_machine.
func (s *ELFCoreSource) Machine() uint16 { return s.machine }

// Class64 reports whether the file is ELFCLASS64.
func (s *ELFCoreSource) Class64() bool { return s.class64 }

// ByteOrder is the file's data encoding.
func (s *ELFCoreSource) ByteOrder() binary.ByteOrder { return s.order }

// OSRelease is OSRELEASE from the VMCOREINFO note, or "".
func (s *ELFCoreSource) OSRelease() string { return s.vmcoreinfo["OSRELEASE"] }

// VMCOREINFO returns a VMCOREINFO entry and whether the note had it.
func (s *ELFCoreSource) VMCOREINFO(key string) (string, bool) {
	v, ok := s.vmcoreinfo[key]
	return v, ok
}

// Utsname is DefaultUtsname of the core's architecture with the release
// from VMCOREINFO when the note is present; callers override fields.
func (s *ELFCoreSource) Utsname() diskdump.Utsname {
	a := s.Arch()
	u := DefaultUtsname(a)
	if a == diskdump.ArchUnknown {
		u.Machine = ""
	}
	if r := s.OSRelease(); r != "" {
		u.Release = r
	}
	return u
}

// Segments returns the PT_LOAD segments sorted by physical address.
func (s *ELFCoreSource) Segments() []ELFSegment { return slices.Clone(s.segs) }

// PageSize is the page size the core is read with.
func (s *ELFCoreSource) PageSize() int { return s.pageSize }

// MaxPFN is one past the last page a PT_LOAD segment touches.
func (s *ELFCoreSource) MaxPFN() uint64 { return s.maxPFN }

// segIndex returns the index of the last segment starting below end, or -1.
func (s *ELFCoreSource) segIndex(end uint64) int {
	i, _ := slices.BinarySearchFunc(s.segs, end, func(g ELFSegment, t uint64) int {
		if g.PAddr < t {
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
	return i >= 0 && s.segs[i].PAddr+s.segs[i].MemSize > start
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
	for i := s.segIndex(end); i >= 0 && s.segs[i].PAddr+s.segs[i].MemSize > start; i-- {
		g := s.segs[i]
		a, b := max(start, g.PAddr), min(end, g.PAddr+g.FileSize)
		if b <= a {
			continue
		}
		off := int64(g.Off + (a - g.PAddr))
		n, err := s.r.ReadAt(dst[a-start:b-start], off)
		if n < int(b-a) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return &diskdump.PageError{PFN: pfn, Off: off, Err: fmt.Errorf("diskdump: ELF core: reading PT_LOAD data: %w", err)}
		}
	}
	return nil
}
