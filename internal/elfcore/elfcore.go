// Package elfcore reads the structure of an ELF core file (ET_CORE): the
// ELF header, the program headers and the notes, in either class and byte
// order, using debug/elf's structures and constants. Every count and size
// read from the file is checked against the file's size and a fixed bound
// before anything is allocated, so damaged or hostile input gives a
// *diskdump.FormatError naming the offset and field, never a panic or a
// large allocation. It is the one ELF core parser of the repository: the
// vmcore reader (ELF vmcores, doc/FORMAT.md §10.1) and the kernel writer's
// ELF core memory source both use it.
//
// Entry points: Open reads the headers into a File; File.Notes reads the
// PT_NOTE segments; ParseNotes splits one segment; VMCOREINFO and
// ParseVMCOREINFO decode the VMCOREINFO note.
package elfcore

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/dumpkit/dumpkit/diskdump"
)

// Bounds on what Open and Notes read.
const (
	// MaxProgs bounds the number of program headers (e_phnum, or sh_info
	// of section header 0 when e_phnum is PN_XNUM).
	MaxProgs = 1 << 20
	// MaxNoteBytes bounds the total size of the PT_NOTE segments: room for
	// the per-CPU notes of several thousand CPUs and VMCOREINFO.
	MaxNoteBytes = 8 << 20
)

// pnXNum in e_phnum means the count is in sh_info of section header 0
// (debug/elf has no name for it).
const pnXNum = 0xffff

// File is the decoded ELF header and program headers of a core file.
type File struct {
	Class   elf.Class        // ELFCLASS32 or ELFCLASS64
	Data    elf.Data         // ELFDATA2LSB or ELFDATA2MSB
	Order   binary.ByteOrder // the byte order Data names
	Machine elf.Machine      // e_machine
	Phoff   uint64           // e_phoff
	Progs   []Prog           // every program header, in file order

	r    io.ReaderAt
	size int64
}

// Prog is one program header and where it is in the file.
type Prog struct {
	elf.ProgHeader
	At int64 // file offset of the program header itself
}

// Note is one ELF note.
type Note struct {
	Name string // n_namesz bytes, without the terminating NUL if any
	Type uint32 // n_type
	Desc []byte // n_descsz bytes
}

// layout holds the sizes and field offsets of one ELF class.
type layout struct {
	ehsize, phentsize, shentsize int
	phentsizeOff, phnumOff       int64 // e_phentsize, e_phnum
}

var (
	layout32 = layout{ehsize: 52, phentsize: 32, shentsize: 40, phentsizeOff: 42, phnumOff: 44}
	layout64 = layout{ehsize: 64, phentsize: 56, shentsize: 64, phentsizeOff: 54, phnumOff: 56}
)

func formatErr(off int64, field string, sentinel error, format string, args ...any) error {
	return &diskdump.FormatError{Off: off, Blk: -1, Field: field, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// readErr types a failed diskdump.ReadFull: a short read is ErrTruncated,
// other errors are kept.
func readErr(off int64, field string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return formatErr(off, field, diskdump.ErrTruncated, "file ends")
	}
	return &diskdump.FormatError{Off: off, Blk: -1, Field: field, Msg: "read failed", Err: err}
}

// Open reads the ELF header and the program headers of a core file of
// size bytes. It checks that the file is an ET_CORE ELF file of a known
// class and byte order, that the program headers lie within the file,
// and, for PT_LOAD and PT_NOTE segments, that p_offset+p_filesz and (for
// PT_LOAD) p_paddr+p_memsz do not overflow and that p_filesz <= p_memsz.
// Segment data is not read, and may lie beyond the end of the file: the
// caller decides whether that is an error. Errors are *diskdump.FormatError
// values wrapping diskdump.ErrTruncated, ErrCorrupt or
// ErrUnsupportedVersion (not a core file), or the reader's error.
func Open(r io.ReaderAt, size int64) (*File, error) {
	f := &File{r: r, size: size}
	l, phentsize, phnum, err := f.readHeader()
	if err != nil {
		return nil, err
	}
	if phentsize < l.phentsize {
		return nil, formatErr(l.phentsizeOff, "e_phentsize", diskdump.ErrCorrupt, "program header size %d < %d", phentsize, l.phentsize)
	}
	if phnum == 0 {
		return nil, formatErr(l.phnumOff, "e_phnum", diskdump.ErrCorrupt, "no program headers")
	}
	if phnum > MaxProgs {
		return nil, formatErr(l.phnumOff, "e_phnum", diskdump.ErrCorrupt, "%d program headers exceed %d", phnum, MaxProgs)
	}
	if f.Phoff >= uint64(size) || uint64(phnum) > (uint64(size)-f.Phoff)/uint64(phentsize) {
		return nil, formatErr(int64(min(f.Phoff, uint64(size))), "e_phoff", diskdump.ErrTruncated,
			"%d program headers of %d bytes at offset %d do not fit in %d bytes", phnum, phentsize, f.Phoff, size)
	}
	if err := f.readProgs(phentsize, phnum); err != nil {
		return nil, err
	}
	return f, nil
}

// readHeader decodes the ELF header into f and returns the class's layout,
// e_phentsize and the program header count (PN_XNUM resolved).
func (f *File) readHeader() (l layout, phentsize, phnum int, err error) {
	if f.size < elf.EI_NIDENT {
		return l, 0, 0, formatErr(0, "e_ident", diskdump.ErrTruncated, "file of %d bytes has no ELF header", f.size)
	}
	var b [64]byte
	eh := b[:min(f.size, int64(len(b)))]
	if err := diskdump.ReadFull(f.r, eh, 0); err != nil {
		return l, 0, 0, readErr(0, "e_ident", err)
	}
	if string(eh[:len(elf.ELFMAG)]) != elf.ELFMAG {
		return l, 0, 0, formatErr(0, "e_ident", diskdump.ErrCorrupt, "no ELF magic")
	}
	f.Class, f.Data = elf.Class(eh[elf.EI_CLASS]), elf.Data(eh[elf.EI_DATA])
	switch f.Class {
	case elf.ELFCLASS32:
		l = layout32
	case elf.ELFCLASS64:
		l = layout64
	default:
		return l, 0, 0, formatErr(elf.EI_CLASS, "e_ident[EI_CLASS]", diskdump.ErrCorrupt, "class %d", eh[elf.EI_CLASS])
	}
	switch f.Data {
	case elf.ELFDATA2LSB:
		f.Order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		f.Order = binary.BigEndian
	default:
		return l, 0, 0, formatErr(elf.EI_DATA, "e_ident[EI_DATA]", diskdump.ErrCorrupt, "data encoding %d", eh[elf.EI_DATA])
	}
	if len(eh) < l.ehsize {
		return l, 0, 0, formatErr(int64(len(eh)), "Ehdr", diskdump.ErrTruncated, "ELF header needs %d bytes, the file has %d", l.ehsize, len(eh))
	}
	var typ uint16
	var shoff uint64
	if f.Class == elf.ELFCLASS64 {
		var h elf.Header64
		_, _ = binary.Decode(eh, f.Order, &h) // cannot fail: len(eh) = 64
		typ, f.Machine, f.Phoff, shoff = h.Type, elf.Machine(h.Machine), h.Phoff, h.Shoff
		phentsize, phnum = int(h.Phentsize), int(h.Phnum)
	} else {
		var h elf.Header32
		_, _ = binary.Decode(eh, f.Order, &h) // cannot fail: len(eh) >= 52
		typ, f.Machine, f.Phoff, shoff = h.Type, elf.Machine(h.Machine), uint64(h.Phoff), uint64(h.Shoff)
		phentsize, phnum = int(h.Phentsize), int(h.Phnum)
	}
	if elf.Type(typ) != elf.ET_CORE {
		return l, 0, 0, formatErr(16, "e_type", diskdump.ErrUnsupportedVersion, "e_type %d is not ET_CORE", typ)
	}
	if phnum == pnXNum {
		phnum, err = f.extendedPhnum(l, shoff)
	}
	return l, phentsize, phnum, err
}

// extendedPhnum reads the program header count from sh_info of section
// header 0 (e_phnum is PN_XNUM).
func (f *File) extendedPhnum(l layout, shoff uint64) (int, error) {
	if shoff == 0 || shoff > uint64(f.size) || uint64(l.shentsize) > uint64(f.size)-shoff {
		return 0, formatErr(int64(min(shoff, uint64(f.size))), "sh_info", diskdump.ErrTruncated,
			"e_phnum is PN_XNUM but section header 0 at offset %d is not in the %d-byte file", shoff, f.size)
	}
	b := make([]byte, l.shentsize)
	if err := diskdump.ReadFull(f.r, b, int64(shoff)); err != nil {
		return 0, readErr(int64(shoff), "sh_info", err)
	}
	if f.Class == elf.ELFCLASS64 {
		var s elf.Section64
		_, _ = binary.Decode(b, f.Order, &s)
		return int(s.Info), nil
	}
	var s elf.Section32
	_, _ = binary.Decode(b, f.Order, &s)
	return int(s.Info), nil
}

// readProgs reads and checks phnum program headers, a bounded chunk at a
// time.
func (f *File) readProgs(phentsize, phnum int) error {
	per := max(1, 64<<10/phentsize)
	buf := make([]byte, min(per, phnum)*phentsize)
	f.Progs = make([]Prog, 0, phnum)
	for i := 0; i < phnum; i += per {
		n := min(per, phnum-i)
		at := int64(f.Phoff) + int64(i)*int64(phentsize)
		b := buf[:n*phentsize]
		if err := diskdump.ReadFull(f.r, b, at); err != nil {
			return readErr(at, "Phdr", err)
		}
		for k := range n {
			p := Prog{ProgHeader: f.decodeProg(b[k*phentsize:]), At: at + int64(k*phentsize)}
			if err := checkProg(p, i+k); err != nil {
				return err
			}
			f.Progs = append(f.Progs, p)
		}
	}
	return nil
}

func (f *File) decodeProg(b []byte) elf.ProgHeader {
	if f.Class == elf.ELFCLASS64 {
		var p elf.Prog64
		_, _ = binary.Decode(b, f.Order, &p) // cannot fail: phentsize >= 56
		return elf.ProgHeader{Type: elf.ProgType(p.Type), Flags: elf.ProgFlag(p.Flags), Off: p.Off, Vaddr: p.Vaddr,
			Paddr: p.Paddr, Filesz: p.Filesz, Memsz: p.Memsz, Align: p.Align}
	}
	var p elf.Prog32
	_, _ = binary.Decode(b, f.Order, &p) // cannot fail: phentsize >= 32
	return elf.ProgHeader{Type: elf.ProgType(p.Type), Flags: elf.ProgFlag(p.Flags), Off: uint64(p.Off), Vaddr: uint64(p.Vaddr),
		Paddr: uint64(p.Paddr), Filesz: uint64(p.Filesz), Memsz: uint64(p.Memsz), Align: uint64(p.Align)}
}

// checkProg checks the fields of PT_LOAD and PT_NOTE program header i that
// no reader can accept. Other types are not looked at.
func checkProg(p Prog, i int) error {
	if p.Type != elf.PT_LOAD && p.Type != elf.PT_NOTE {
		return nil
	}
	if p.Type == elf.PT_LOAD && p.Filesz > p.Memsz {
		return formatErr(p.At, "p_filesz", diskdump.ErrCorrupt, "PT_LOAD %d: p_filesz %#x > p_memsz %#x", i, p.Filesz, p.Memsz)
	}
	if p.Off > math.MaxInt64 || p.Filesz > math.MaxInt64-p.Off {
		return formatErr(p.At, "p_offset", diskdump.ErrCorrupt, "%v %d: %#x bytes at offset %#x overflow", p.Type, i, p.Filesz, p.Off)
	}
	if p.Type == elf.PT_LOAD && p.Paddr+p.Memsz < p.Paddr {
		return formatErr(p.At, "p_paddr", diskdump.ErrCorrupt, "PT_LOAD %d: [%#x, +%#x) overflows", i, p.Paddr, p.Memsz)
	}
	return nil
}

// Is64 reports whether the file is ELFCLASS64.
func (f *File) Is64() bool { return f.Class == elf.ELFCLASS64 }

// Loads returns the PT_LOAD program headers in file order.
func (f *File) Loads() []Prog {
	var l []Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			l = append(l, p)
		}
	}
	return l
}

// Notes reads every PT_NOTE segment and splits it into notes. A segment
// past the end of the file, or segments of more than MaxNoteBytes in all,
// give err (and no notes). A segment whose notes do not parse to its end
// keeps the notes before the damage; the first such damage is returned in
// damage, so a strict caller can refuse the file and a lenient one ignore
// a broken tail, as common readers do.
func (f *File) Notes() (notes []Note, damage, err error) {
	var total uint64
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		if total += p.Filesz; total > MaxNoteBytes {
			return nil, nil, formatErr(p.At, "PT_NOTE", diskdump.ErrCorrupt, "note segments of more than %d bytes", MaxNoteBytes)
		}
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		if p.Off > uint64(f.size) || p.Filesz > uint64(f.size)-p.Off {
			return nil, nil, formatErr(p.At, "p_offset", diskdump.ErrTruncated,
				"PT_NOTE: %d bytes at offset %d are past the end of the %d-byte file", p.Filesz, p.Off, f.size)
		}
		b := make([]byte, p.Filesz)
		if err := diskdump.ReadFull(f.r, b, int64(p.Off)); err != nil {
			return nil, nil, readErr(int64(p.Off), "PT_NOTE", err)
		}
		ns, bad := ParseNotes(b, f.Order, int64(p.Off))
		notes = append(notes, ns...)
		if damage == nil {
			damage = bad
		}
	}
	return notes, damage, nil
}

// noteHdrSize is the size of Elf32_Nhdr and Elf64_Nhdr alike: namesz,
// descsz and type, three 32-bit words.
const noteHdrSize = 12

// ParseNotes splits the content b of a PT_NOTE segment found at file offset
// off into notes: a 12-byte header (n_namesz, n_descsz, n_type), the name
// and the descriptor, each padded to 4 bytes (the padding of the last
// descriptor may be missing). It returns the notes before the first one
// that does not fit in b and, for that one, a *diskdump.FormatError. The
// descriptors share b's memory.
func ParseNotes(b []byte, o binary.ByteOrder, off int64) ([]Note, error) {
	var notes []Note
	n := uint64(len(b))
	for pos := uint64(0); pos < n; {
		at := off + int64(pos)
		if n-pos < noteHdrSize {
			return notes, formatErr(at, "Elf_Nhdr", diskdump.ErrTruncated, "note header cut: %d bytes left", n-pos)
		}
		namesz, descsz, typ := uint64(o.Uint32(b[pos:])), uint64(o.Uint32(b[pos+4:])), o.Uint32(b[pos+8:])
		nameOff := pos + noteHdrSize
		descOff := nameOff + pad4(namesz)
		if namesz > n-nameOff || descOff > n || descsz > n-descOff {
			return notes, formatErr(at, "Elf_Nhdr", diskdump.ErrCorrupt,
				"note of name size %d, descriptor size %d exceeds the segment", namesz, descsz)
		}
		name := b[nameOff : nameOff+namesz]
		if k := len(name); k > 0 && name[k-1] == 0 {
			name = name[:k-1]
		}
		desc := b[descOff : descOff+descsz : descOff+descsz]
		notes = append(notes, Note{Name: string(name), Type: typ, Desc: desc})
		pos = descOff + pad4(descsz)
	}
	return notes, nil
}

func pad4(n uint64) uint64 { return (n + 3) &^ 3 }

// VMCOREINFO returns the entries of the first note named VMCOREINFO, or
// nil when there is none.
func VMCOREINFO(notes []Note) map[string]string {
	for _, n := range notes {
		if n.Name == "VMCOREINFO" {
			return ParseVMCOREINFO(n.Desc)
		}
	}
	return nil
}

// ParseVMCOREINFO decodes the descriptor of a VMCOREINFO note: KEY=VALUE
// lines (trailing NULs ignored). The first of repeated keys wins; lines
// without '=' or with an empty key are skipped.
func ParseVMCOREINFO(desc []byte) map[string]string {
	m := map[string]string{}
	for line := range bytes.SplitSeq(bytes.TrimRight(desc, "\x00"), []byte("\n")) {
		if k, v, ok := bytes.Cut(line, []byte("=")); ok && len(k) > 0 {
			if _, dup := m[string(k)]; !dup {
				m[string(k)] = string(v)
			}
		}
	}
	return m
}
