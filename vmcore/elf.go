package vmcore

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/zero"
)

// ELF constants of the netdump-style vmcore (doc/FORMAT.md §10.1).
const (
	elfClass32  = 1
	elfClass64  = 2
	elfData2LSB = 1
	elfData2MSB = 2
	etCore      = 4
	evCurrent   = 1
	ptLoad      = 1
	ptNote      = 4
	pfX         = 1
	pfW         = 2
	pfR         = 4

	ntPrstatus   = 1
	ntPrpsinfo   = 3
	ntTaskstruct = 4
	// NTDiskdump is the NT_DISKDUMP note type: a 4-byte int, non-zero when
	// the dump is partial or incomplete (crash prints "[PARTIAL DUMP]").
	NTDiskdump = 0x70000001

	elf32EhdrSize = 52
	elf64EhdrSize = 64
	elf32PhdrSize = 32
	elf64PhdrSize = 56
	noteHdrSize   = 12

	// elf32MaxFilesz is where an ELF32 p_filesz/p_memsz saturates for i386
	// PAE machines with 4 GiB or more ([REC] doc/FORMAT.md §10.1, §13 item 11).
	elf32MaxFilesz = 0xFFFFF000
)

// rawElf32Ehdr mirrors Elf32_Ehdr.
type rawElf32Ehdr struct {
	Ident     [16]byte // 0 e_ident
	Type      uint16   // 16 e_type
	Machine   uint16   // 18 e_machine
	Version   uint32   // 20 e_version
	Entry     uint32   // 24 e_entry
	Phoff     uint32   // 28 e_phoff
	Shoff     uint32   // 32 e_shoff
	Flags     uint32   // 36 e_flags
	Ehsize    uint16   // 40 e_ehsize
	Phentsize uint16   // 42 e_phentsize
	Phnum     uint16   // 44 e_phnum
	Shentsize uint16   // 46 e_shentsize
	Shnum     uint16   // 48 e_shnum
	Shstrndx  uint16   // 50 e_shstrndx
}

// rawElf64Ehdr mirrors Elf64_Ehdr.
type rawElf64Ehdr struct {
	Ident     [16]byte // 0 e_ident
	Type      uint16   // 16 e_type
	Machine   uint16   // 18 e_machine
	Version   uint32   // 20 e_version
	Entry     uint64   // 24 e_entry
	Phoff     uint64   // 32 e_phoff
	Shoff     uint64   // 40 e_shoff
	Flags     uint32   // 48 e_flags
	Ehsize    uint16   // 52 e_ehsize
	Phentsize uint16   // 54 e_phentsize
	Phnum     uint16   // 56 e_phnum
	Shentsize uint16   // 58 e_shentsize
	Shnum     uint16   // 60 e_shnum
	Shstrndx  uint16   // 62 e_shstrndx
}

// rawElf32Phdr mirrors Elf32_Phdr.
type rawElf32Phdr struct {
	Type   uint32 // 0 p_type
	Offset uint32 // 4 p_offset
	Vaddr  uint32 // 8 p_vaddr
	Paddr  uint32 // 12 p_paddr
	Filesz uint32 // 16 p_filesz
	Memsz  uint32 // 20 p_memsz
	Flags  uint32 // 24 p_flags
	Align  uint32 // 28 p_align
}

// rawElf64Phdr mirrors Elf64_Phdr.
type rawElf64Phdr struct {
	Type   uint32 // 0 p_type
	Flags  uint32 // 4 p_flags
	Offset uint64 // 8 p_offset
	Vaddr  uint64 // 16 p_vaddr
	Paddr  uint64 // 24 p_paddr
	Filesz uint64 // 32 p_filesz
	Memsz  uint64 // 40 p_memsz
	Align  uint64 // 48 p_align
}

// rawNoteHdr mirrors Elf32_Nhdr / Elf64_Nhdr (both have 4-byte words).
type rawNoteHdr struct {
	Namesz uint32 // 0 n_namesz
	Descsz uint32 // 4 n_descsz
	Type   uint32 // 8 n_type
}

// elf_prstatus and elf_prpsinfo geometry per architecture (doc/FORMAT.md §10.1).
// The 32-bit (i386) struct elf_prstatus is
//
//	0 pr_info (3 ints), 12 pr_cursig (short), 16 pr_sigpend, 20 pr_sighold,
//	24 pr_pid, 28 pr_ppid, 32 pr_pgrp, 36 pr_sid, 40 pr_utime, 48 pr_stime,
//	56 pr_cutime, 64 pr_cstime (struct timeval), 72 pr_reg, then pr_fpvalid
//
// and the 64-bit one has 8-byte longs and timevals: 16 pr_sigpend, 24
// pr_sighold, 32 pr_pid … 48 pr_utime … 96 pr_cstime, 112 pr_reg, then
// pr_fpvalid and 4 pad bytes.
func prstatusGeometry(a diskdump.Arch) (size, regOff int) {
	if !a.Is64() {
		return 72 + a.GRegsSize() + 4, 72 // i386: 144
	}
	return 112 + a.GRegsSize() + 8, 112 // x86_64 336, ppc64 504, ia64 1144
}

// prpsinfoGeometry is sizeof(struct elf_prpsinfo) and the offset of
// pr_fname: i386 has a 4-byte pr_flag and 2-byte uid/gid (size 124, fname
// at 28); the 64-bit targets an 8-byte pr_flag at 8 and 4-byte uid/gid
// (size 136, fname at 40).
func prpsinfoGeometry(a diskdump.Arch) (size, fnameOff int) {
	if !a.Is64() {
		return 124, 28
	}
	return 136, 40
}

func pad4(n int) int { return (n + 3) &^ 3 }

// elfNotesSize is the byte length of the four notes.
func elfNotesSize(a diskdump.Arch) int {
	ps, _ := prstatusGeometry(a)
	pi, _ := prpsinfoGeometry(a)
	ws := 8
	if !a.Is64() {
		ws = 4
	}
	note := func(desc int) int { return noteHdrSize + 4 + pad4(desc) }
	return note(ps) + note(pi) + note(2*ws) + note(4)
}

func elfFixedSize(a diskdump.Arch) int {
	if a.Is64() {
		return elf64EhdrSize + 2*elf64PhdrSize
	}
	return elf32EhdrSize + 2*elf32PhdrSize
}

// elfHeaderSize is H: ELF header, two program headers and the notes,
// rounded up to the page size (at least one page).
func elfHeaderSize(a diskdump.Arch, pageSize int) int64 {
	n := int64(elfFixedSize(a) + elfNotesSize(a))
	b := int64(pageSize)
	return (n + b - 1) / b * b
}

// elfCoreInfo is what the ELF header and notes carry.
type elfCoreInfo struct {
	arch        diskdump.Arch
	pageSize    int
	maxPFN      uint64
	gregs       []byte // elf_gregset_t as stored in the sub-header
	task        uint64 // tasks[current_cpu]
	switchStack uint64 // ia64 sw[current_cpu], else 0
	partial     bool
	vmcoreinfo  []byte // Options.VMCOREINFO, or nil
}

func newELFCoreInfo(s *source, partial bool) elfCoreInfo {
	a := s.archOf()
	ci := elfCoreInfo{arch: a, pageSize: s.blockSize(), maxPFN: s.maxPFN(), partial: partial, vmcoreinfo: s.vmcoreinfo}
	cpu := int(s.hdr.CurrentCPU)
	if cpu < len(s.hdr.Tasks) {
		ci.task = s.hdr.Tasks[cpu]
	}
	if s.sub != nil {
		ci.gregs = s.sub.GRegs()
		if a == diskdump.ArchIA64 && cpu < len(s.sub.SwitchStacks) {
			ci.switchStack = s.sub.SwitchStacks[cpu]
		}
	}
	return ci
}

// encodeELFHeader returns the first H bytes of the vmcore: Ehdr, PT_NOTE,
// PT_LOAD, the notes and zero padding.
func encodeELFHeader(ci elfCoreInfo) ([]byte, error) {
	a := ci.arch
	if a.ELFMachine() == 0 {
		return nil, fmt.Errorf("diskdump: ELF vmcore for architecture %v: %w", a, diskdump.ErrUnsupportedVersion)
	}
	o := a.ByteOrder()
	h := elfHeaderSize(a, ci.pageSize)
	buf := make([]byte, h)
	fixed := elfFixedSize(a)
	notes := appendVMCOREINFONote(encodeELFNotes(buf[fixed:fixed], ci), o, ci.vmcoreinfo)
	loadSize := ci.maxPFN * uint64(ci.pageSize)

	var ident [16]byte
	copy(ident[:], "\x7fELF")
	ident[4] = elfClass64
	ident[5] = elfData2LSB
	if o == binary.BigEndian {
		ident[5] = elfData2MSB
	}
	ident[6] = evCurrent // EI_VERSION; EI_OSABI (7) stays 0
	var err error
	if a.Is64() {
		eh := rawElf64Ehdr{Ident: ident, Type: etCore, Machine: a.ELFMachine(), Version: evCurrent,
			Phoff: elf64EhdrSize, Ehsize: elf64EhdrSize, Phentsize: elf64PhdrSize, Phnum: 2}
		ph := [2]rawElf64Phdr{
			{Type: ptNote, Offset: uint64(fixed), Filesz: uint64(len(notes))},
			{Type: ptLoad, Flags: pfR | pfW | pfX, Offset: uint64(h), Filesz: loadSize, Memsz: loadSize, Align: uint64(ci.pageSize)},
		}
		if _, err = binary.Encode(buf, o, &eh); err == nil {
			_, err = binary.Encode(buf[elf64EhdrSize:], o, &ph)
		}
	} else {
		ident[4] = elfClass32
		ls := uint32(min(loadSize, elf32MaxFilesz))
		eh := rawElf32Ehdr{Ident: ident, Type: etCore, Machine: a.ELFMachine(), Version: evCurrent,
			Phoff: elf32EhdrSize, Ehsize: elf32EhdrSize, Phentsize: elf32PhdrSize, Phnum: 2}
		ph := [2]rawElf32Phdr{
			{Type: ptNote, Offset: uint32(fixed), Filesz: uint32(len(notes))},
			{Type: ptLoad, Flags: pfR | pfW | pfX, Offset: uint32(h), Filesz: ls, Memsz: ls, Align: uint32(ci.pageSize)},
		}
		if _, err = binary.Encode(buf, o, &eh); err == nil {
			_, err = binary.Encode(buf[elf32EhdrSize:], o, &ph)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("diskdump: encoding ELF header: %w", err)
	}
	return buf, nil
}

// encodeELFNotes appends the four CORE notes to b (which has room for
// elfNotesSize bytes) and returns them.
func encodeELFNotes(b []byte, ci elfCoreInfo) []byte {
	a := ci.arch
	o := a.ByteOrder()
	note := func(typ uint32, desc []byte) {
		var nh [noteHdrSize]byte
		// n_namesz is 4: "CORE" without its NUL, as netdump and the
		// /proc/kcore writer of the time stored it; crash reads the
		// descriptor at name + n_namesz (doc/FORMAT.md §10.1).
		o.PutUint32(nh[0:], 4)
		o.PutUint32(nh[4:], uint32(len(desc)))
		o.PutUint32(nh[8:], typ)
		b = append(b, nh[:]...)
		b = append(b, "CORE"...)
		b = append(b, desc...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}

	ps, regOff := prstatusGeometry(a)
	prstatus := make([]byte, ps)
	copy(prstatus[regOff:regOff+a.GRegsSize()], ci.gregs)
	note(ntPrstatus, prstatus)

	pi, fnameOff := prpsinfoGeometry(a)
	prpsinfo := make([]byte, pi)
	copy(prpsinfo[fnameOff:], "vmlinux")
	note(ntPrpsinfo, prpsinfo)

	var task []byte
	if a.Is64() {
		task = make([]byte, 16)
		o.PutUint64(task, ci.task)
		o.PutUint64(task[8:], ci.switchStack)
	} else {
		task = make([]byte, 8)
		o.PutUint32(task, uint32(ci.task))
		o.PutUint32(task[4:], uint32(ci.switchStack))
	}
	note(ntTaskstruct, task)

	var dd [4]byte
	if ci.partial {
		o.PutUint32(dd[:], 1)
	}
	note(NTDiskdump, dd[:])
	return b
}

// elfRunPages is how many contiguous pages the ELF writer gathers into one
// WriteAt.
const elfRunPages = 64

// elfHolePages is the shortest stretch of zero pages the ELF writer leaves
// as a hole instead of writing it. Free memory comes in long zero
// stretches, which then cost neither writes nor disk space; isolated zero
// pages are written, because a hole per page splits the file into as many
// extents and made the write and its fsync twice as slow on ext4 (a 1 GiB
// machine with 30% zero pages scattered at random: 7.2 s -> 14.8 s).
const elfHolePages = 16

// elfRun gathers contiguous pages of the ELF vmcore into one write.
type elfRun struct {
	w    io.WriterAt
	h    int64 // offset of PFN 0 in the file
	b    int
	buf  []byte // elfRunPages pages
	zero [elfRunPages]bool
	pfn  uint64 // PFN of the first page of the run
	n    uint64 // pages in the run
	// last is the last PFN written (^0: none), zeroPages the zero pages
	// left as holes.
	last, zeroPages uint64
}

func newELFRun(w io.WriterAt, h int64, b int) *elfRun {
	return &elfRun{w: w, h: h, b: b, buf: make([]byte, elfRunPages*b), last: ^uint64(0)}
}

// next returns the buffer for page pfn, flushing the run first when pfn
// does not continue it or it is full. The caller fills it and calls
// done.
func (r *elfRun) next(pfn uint64) ([]byte, error) {
	if r.n > 0 && (pfn != r.pfn+r.n || r.n == elfRunPages) {
		if err := r.flush(); err != nil {
			return nil, err
		}
	}
	if r.n == 0 {
		r.pfn = pfn
	}
	b := uint64(r.b)
	return r.buf[r.n*b : (r.n+1)*b], nil
}

// done adds the page that next returned to the run.
func (r *elfRun) done() {
	b := uint64(r.b)
	r.zero[r.n] = zero.Is(r.buf[r.n*b : (r.n+1)*b])
	r.n++
}

// write writes pages [from, to) of the run.
func (r *elfRun) write(from, to uint64) error {
	if from == to {
		return nil
	}
	b := uint64(r.b)
	off := r.h + int64(r.pfn+from)*int64(b)
	if _, err := r.w.WriteAt(r.buf[from*b:to*b], off); err != nil {
		return fmt.Errorf("diskdump: writing ELF vmcore at offset 0x%x: %w", off, err)
	}
	return nil
}

// flush writes the run, leaving out stretches of at least elfHolePages
// zero pages: they stay holes of the sparse file.
func (r *elfRun) flush() error {
	from := uint64(0)
	for i := uint64(0); i < r.n; {
		if !r.zero[i] {
			i++
			continue
		}
		j := i
		for j < r.n && r.zero[j] {
			j++
		}
		if j-i >= elfHolePages {
			if err := r.write(from, i); err != nil {
				return err
			}
			r.zeroPages += j - i
			from = j
		}
		i = j
	}
	if err := r.write(from, r.n); err != nil {
		return err
	}
	if from < r.n {
		r.last = r.pfn + r.n - 1
	}
	r.n = 0
	return nil
}

// writeELF writes the netdump-style ELF vmcore (doc/FORMAT.md §10.1): pages at
// H + pfn*B, holes (and zero pages) left sparse, headers written last (when the partial
// flag is known), the file extended to H + max_mapnr*B.
func writeELF(w io.WriterAt, s *source, opt Options, res *Result) error {
	a := s.archOf()
	if a.ELFMachine() == 0 {
		return fmt.Errorf("diskdump: ELF vmcore for machine %q: %w", s.hdr.Utsname.Machine, diskdump.ErrUnsupportedVersion)
	}
	b := s.blockSize()
	h := elfHeaderSize(a, b)
	full := h + int64(s.maxPFN())*int64(b)
	run := newELFRun(w, h, b)
	var (
		errs   errCollector
		filter = pageFilter{s: s, b: b}
		prog   = progress{fn: opt.Progress, total: s.total}
	)
	for pg := range s.keptPages(&filter, &prog, &errs, res) {
		dst, err := run.next(pg.PFN)
		if err != nil {
			return err
		}
		if pg.Compressed {
			if err := diskdump.Inflate(dst, pg.Data); err != nil {
				errs.add(&diskdump.PageError{PFN: pg.PFN, Off: pg.Off, Err: err})
				continue
			}
		} else {
			copy(dst, pg.Data)
		}
		run.done()
		res.Pages++
	}
	if err := run.flush(); err != nil {
		return err
	}
	res.ZeroPages = run.zeroPages
	res.finish(s, s.dumpable.Count(), &errs)
	res.Size = full

	hdr, err := encodeELFHeader(newELFCoreInfo(s, res.Incomplete))
	if err != nil {
		return err
	}
	if _, err := w.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("diskdump: writing ELF header: %w", err)
	}
	if err := extendTo(w, full, run.last+1 == s.maxPFN()); err != nil {
		return err
	}
	prog.finish()
	return nil
}

// extendTo gives the output its final length: with Truncate when w has
// it, else by writing the last byte when the data did not reach the end.
func extendTo(w io.WriterAt, size int64, reached bool) error {
	if t, ok := w.(Truncater); ok {
		if err := t.Truncate(size); err != nil {
			return fmt.Errorf("diskdump: setting vmcore size to %d: %w", size, err)
		}
		return nil
	}
	if reached || size == 0 {
		return nil
	}
	if _, err := w.WriteAt([]byte{0}, size-1); err != nil {
		return fmt.Errorf("diskdump: extending vmcore to %d bytes: %w", size, err)
	}
	return nil
}
