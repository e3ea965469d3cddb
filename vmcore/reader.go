package vmcore

import (
	"encoding/binary"
	"errors"
	"io"
	"iter"
	"math/bits"

	"github.com/dumpkit/dumpkit/diskdump"
)

// Errors of File.ReadPage, wrapped in a *PageError.
var (
	// ErrNotInDump means the PFN is not part of the dumped machine's
	// memory as the vmcore describes it (beyond max_mapnr, a hole of
	// bitmap 1, or outside every ELF PT_LOAD).
	ErrNotInDump = errors.New("diskdump: page not in the dump")
	// ErrPageExcluded means the PFN is RAM but its data is not in the
	// vmcore (excluded by dump_level, or lost).
	ErrPageExcluded = errors.New("diskdump: page excluded from the dump")
)

// File reads a vmcore file written by Write, savecore or
// makedumpfile (uncompressed ELF, DISKDUMP or KDUMP, not split or
// flattened). It is not safe for concurrent use.
type File struct {
	r        io.ReaderAt
	size     int64
	format   Format
	pageSize int
	maxPFN   uint64
	order    binary.ByteOrder

	// ELF
	loads   []elfLoad
	partial bool // NT_DISKDUMP != 0
	notes   []ELFNote

	// DISKDUMP / KDUMP
	hdr      *diskdump.Header
	kdumpSub *KdumpSubHeader
	sub      []byte
	ram      *diskdump.Bitmap
	dump     *diskdump.Bitmap
	rank     []uint64 // set bits of dump before each rankChunk-byte chunk
	tableOff int64
	npages   uint64

	buf  []byte      // compressed data scratch
	dec  pageDecoder // KDUMP: zlib, LZO, snappy, zstd
	desc [pageDescSize]byte
}

// ELFNote is one note of an ELF vmcore.
type ELFNote struct {
	Name string
	Type uint32
	Desc []byte
}

type elfLoad struct {
	paddr, off, filesz, memsz uint64
}

const rankChunk = 512 // bytes of bitmap per rank entry

// maxELFPhnum bounds the program headers Open reads.
const maxELFPhnum = 65535

// Open opens a vmcore of size bytes. The format is detected from the
// first bytes: "\x7fELF", "DISKDUMP" or "KDUMP   ". Structural problems
// are *FormatError values wrapping ErrTruncated, ErrCorrupt,
// ErrUnsupportedVersion or ErrNoDump.
func Open(r io.ReaderAt, size int64) (*File, error) {
	var magic [8]byte
	if size < int64(len(magic)) {
		return nil, formatErr(0, 0, "signature", diskdump.ErrTruncated, "file of %d bytes", size)
	}
	if _, err := r.ReadAt(magic[:], 0); err != nil {
		return nil, readErr(0, "signature", err)
	}
	switch {
	case string(magic[:4]) == "\x7fELF":
		return openELF(r, size)
	case string(magic[:]) == diskdump.DumpSignature || string(magic[:]) == diskdump.KdumpSignature:
		return openDiskdump(r, size)
	}
	return nil, formatErr(0, 0, "signature", diskdump.ErrNoDump, "not an ELF, DISKDUMP or KDUMP vmcore (%q)", magic[:])
}

func readErr(off int64, field string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return formatErr(off, -1, field, diskdump.ErrTruncated, "file ends")
	}
	return &diskdump.FormatError{Off: off, Blk: -1, Field: field, Msg: "read failed", Err: err}
}

// readFull reads len(b) bytes at off, which must lie within the file.
func (v *File) readFull(b []byte, off int64, field string) error {
	if off < 0 || off > v.size || int64(len(b)) > v.size-off {
		return formatErr(off, -1, field, diskdump.ErrTruncated, "%d bytes at offset 0x%x are beyond the end of the file (%d bytes)", len(b), off, v.size)
	}
	n, err := v.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return readErr(off+int64(n), field, err)
}

// Format is the file format.
func (v *File) Format() Format { return v.format }

// MaxPFN is one past the highest PFN the file describes.
func (v *File) MaxPFN() uint64 { return v.maxPFN }

// PageSize is the page size of the dumped machine.
func (v *File) PageSize() int { return v.pageSize }

// Header is the disk_dump_header of a DISKDUMP or KDUMP file; nil for ELF.
func (v *File) Header() *diskdump.Header { return v.hdr }

// SubHeader is the raw sub-header blocks of a DISKDUMP or KDUMP file; nil
// for ELF.
func (v *File) SubHeader() []byte { return v.sub }

// KdumpSubHeader is the decoded kdump_sub_header of a KDUMP file, else nil.
func (v *File) KdumpSubHeader() *KdumpSubHeader { return v.kdumpSub }

// Notes are the notes of an ELF vmcore.
func (v *File) Notes() []ELFNote { return v.notes }

// Partial reports whether the vmcore says the dump is partial or
// incomplete: ELF NT_DISKDUMP non-zero, KDUMP status INCOMPLETE, DISKDUMP
// status not COMPLETED or pages of bitmap 1 missing from bitmap 2.
func (v *File) Partial() bool {
	switch v.format {
	case FormatELF:
		return v.partial
	case FormatKdump:
		return v.hdr.Status&KdumpStatusIncomplete != 0
	}
	return !v.hdr.Status.Complete() || v.npages != v.ram.Count()
}

// NumPages is the number of page descriptors (set bits of the dumpable
// bitmap; DISKDUMP, KDUMP) or of page frames the PT_LOAD segments cover
// (ELF).
func (v *File) NumPages() uint64 {
	if v.format != FormatELF {
		return v.npages
	}
	var n uint64
	for _, l := range v.loads {
		n += l.memsz / uint64(v.pageSize)
	}
	return n
}

// Pages yields the PFNs whose data the file holds in ascending order:
// those set in both bitmaps (DISKDUMP, KDUMP), or every PFN a PT_LOAD
// covers, holes included (ELF).
func (v *File) Pages() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		if v.format != FormatELF {
			for p := range v.dump.All() {
				if p >= v.maxPFN {
					return
				}
				// A page outside bitmap 1 is not memory, whatever
				// bitmap 2 says (crash refuses to read it too).
				if v.ram.Test(p) && !yield(p) {
					return
				}
			}
			return
		}
		b := uint64(v.pageSize)
		for _, l := range v.loads {
			for p := (l.paddr + b - 1) / b; (p+1)*b <= l.paddr+l.memsz; p++ {
				if !yield(p) {
					return
				}
			}
		}
	}
}

// RAM reports whether bitmap 1 has the PFN (DISKDUMP, KDUMP) or a PT_LOAD
// covers it (ELF).
func (v *File) RAM(pfn uint64) bool {
	if pfn >= v.maxPFN {
		return false
	}
	if v.format == FormatELF {
		_, ok := v.findLoad(pfn)
		return ok
	}
	return v.ram.Test(pfn)
}

// ReadPage returns page pfn in dst[:PageSize()] (dst grows when it is too
// small). Pages outside the dump give a *PageError wrapping ErrNotInDump,
// RAM pages not stored ErrPageExcluded; damaged data ErrTruncated or
// ErrCorrupt. ELF holes inside a PT_LOAD read as zeros. KDUMP pages may be
// compressed with zlib, LZO, snappy or zstd (doc/FORMAT.md §10.3).
func (v *File) ReadPage(pfn uint64, dst []byte) ([]byte, error) {
	if cap(dst) < v.pageSize {
		dst = make([]byte, v.pageSize)
	}
	dst = dst[:v.pageSize]
	if v.format == FormatELF {
		return v.readELFPage(pfn, dst)
	}
	sp, err := v.readStored(pfn)
	if err != nil {
		return nil, err
	}
	if !sp.compressed {
		copy(dst, sp.data)
		return dst, nil
	}
	method := uint32(PageDescZlib) // DISKDUMP: bit 1 is MAPPING_ANON
	if v.format == FormatKdump {
		method = sp.flags
	}
	if err := v.dec.decode(dst, sp.data, method); err != nil {
		return nil, &diskdump.PageError{PFN: pfn, Off: sp.off, Err: err}
	}
	return dst, nil
}

// storedPage is a page of a DISKDUMP or KDUMP file as stored.
type storedPage struct {
	data       []byte // valid until the next read of the File
	off        int64  // file offset of data
	flags      uint32 // page_desc.flags
	pageFlags  uint64 // page_desc.page_flags
	compressed bool   // data is compressed (method in flags)
}

// readStored reads the descriptor and the data of page pfn, after the
// checks every reader of the table makes.
func (v *File) readStored(pfn uint64) (storedPage, error) {
	if pfn >= v.maxPFN || !v.ram.Test(pfn) {
		return storedPage{}, &diskdump.PageError{PFN: pfn, Off: -1, Err: ErrNotInDump}
	}
	if !v.dump.Test(pfn) {
		return storedPage{}, &diskdump.PageError{PFN: pfn, Off: -1, Err: ErrPageExcluded}
	}
	doff := v.tableOff + int64(v.rankOf(pfn))*pageDescSize
	if err := v.readFull(v.desc[:], doff, "page_desc"); err != nil {
		return storedPage{}, &diskdump.PageError{PFN: pfn, Off: doff, Err: err}
	}
	o := v.order
	sp := storedPage{off: int64(o.Uint64(v.desc[0:])), flags: o.Uint32(v.desc[12:]), pageFlags: o.Uint64(v.desc[16:])}
	size := o.Uint32(v.desc[8:])
	bad := func(format string, args ...any) error {
		return &diskdump.PageError{PFN: pfn, Off: doff, Err: formatErr(doff, -1, "page_desc", diskdump.ErrCorrupt, format, args...)}
	}
	sp.compressed = sp.flags&PageDescCompressed != 0
	if v.format == FormatKdump {
		sp.compressed = sp.flags&kdumpCompressedMask != 0
		if sp.flags&^kdumpCompressedMask != 0 {
			return storedPage{}, &diskdump.PageError{PFN: pfn, Off: doff, Err: formatErr(doff+12, -1, "page_desc.flags", diskdump.ErrUnsupportedVersion,
				"flags 0x%x name an unknown compression", sp.flags)}
		}
	}
	switch {
	case size == 0 || int(size) > v.pageSize:
		return storedPage{}, bad("size %d for a %d-byte page", size, v.pageSize)
	case !sp.compressed && int(size) != v.pageSize:
		return storedPage{}, bad("raw page of %d bytes", size)
	case sp.off < v.tableOff+int64(v.npages)*pageDescSize:
		return storedPage{}, bad("data offset 0x%x inside the headers or table", sp.off)
	}
	if sp.off > v.size || int64(size) > v.size-sp.off {
		return storedPage{}, &diskdump.PageError{PFN: pfn, Off: sp.off, Err: formatErr(sp.off, -1, "page data", diskdump.ErrTruncated,
			"%d bytes at offset 0x%x are beyond the end of the file (%d bytes)", size, sp.off, v.size)}
	}
	if cap(v.buf) < v.pageSize {
		v.buf = make([]byte, v.pageSize)
	}
	sp.data = v.buf[:size]
	if err := v.readFull(sp.data, sp.off, "page data"); err != nil {
		return storedPage{}, &diskdump.PageError{PFN: pfn, Off: sp.off, Err: err}
	}
	return sp, nil
}

func (v *File) rankOf(pfn uint64) uint64 {
	byteIdx := pfn >> 3
	c := byteIdx / rankChunk
	n := v.rank[c]
	b := v.dump.Bytes()
	for i := c * rankChunk; i < byteIdx; i++ {
		n += uint64(bits.OnesCount8(b[i]))
	}
	return n + uint64(bits.OnesCount8(b[byteIdx]&(1<<(pfn&7)-1)))
}

func openDiskdump(r io.ReaderAt, size int64) (*File, error) {
	v := &File{r: r, size: size}
	first := make([]byte, min(size, 65536))
	if err := v.readFull(first, 0, "header"); err != nil {
		return nil, err
	}
	// The block size is only known after a first parse; the second one
	// sees exactly the header block, so tasks[] stays inside it.
	h, err := diskdump.ParseHeader(first, diskdump.HeaderCheck{DeviceBlocks: 0})
	if err != nil {
		return nil, err
	}
	b := int64(h.BlockSize)
	if b > size {
		return nil, formatErr(0, 0, "block_size", diskdump.ErrTruncated, "file of %d bytes is shorter than one %d-byte block", size, b)
	}
	h, err = diskdump.ParseHeader(first[:b], diskdump.HeaderCheck{})
	if err != nil {
		return nil, err
	}
	// Everything up to the table must be in the file before anything is
	// allocated from these fields.
	if need := (1 + int64(h.SubHdrSize) + int64(h.BitmapBlocks)) * b; need > size {
		return nil, formatErr(int64(h.Layout.FieldOffset("bitmap_blocks")), 0, "bitmap_blocks", diskdump.ErrTruncated,
			"header, sub-header and bitmaps need %d bytes, the file has %d", need, size)
	}
	v.hdr, v.order, v.pageSize, v.maxPFN = h, h.Layout.Order, int(b), uint64(h.MaxMapnr)
	v.format = FormatDiskdump
	sb := int64(h.SubHdrSize)
	v.sub = make([]byte, sb*b)
	if err := v.readFull(v.sub, b, "sub_header"); err != nil {
		return nil, err
	}
	if h.Signature == diskdump.KdumpSignature {
		v.format = FormatKdump
		if h.Version >= 1 {
			if v.kdumpSub, err = DecodeKdumpSubHeader(v.sub, h.Layout); err != nil {
				return nil, err
			}
			if v.kdumpSub.Split != 0 {
				return nil, formatErr(b+12, 1, "split", diskdump.ErrUnsupportedVersion, "split dump files are not supported")
			}
		}
	}
	rb := int64(diskdump.BitmapBlocksFor(v.maxPFN, int(b)))
	bmOff := (1 + sb) * b
	ram := make([]byte, rb*b)
	if err := v.readFull(ram, bmOff, "bitmap"); err != nil {
		return nil, err
	}
	v.ram = diskdump.NewBitmap(ram)
	v.ram.Truncate(v.maxPFN)
	v.dump = v.ram
	if int64(h.BitmapBlocks) == 2*rb {
		dump := make([]byte, rb*b)
		if err := v.readFull(dump, bmOff+rb*b, "bitmap"); err != nil {
			return nil, err
		}
		v.dump = diskdump.NewBitmap(dump)
		v.dump.Truncate(v.maxPFN)
	}
	v.tableOff = (1 + sb + int64(h.BitmapBlocks)) * b
	db := v.dump.Bytes()
	v.rank = make([]uint64, (len(db)+rankChunk-1)/rankChunk+1)
	var n uint64
	for i := 0; i < len(db); i += rankChunk {
		v.rank[i/rankChunk] = n
		n += diskdump.NewBitmap(db[i:min(i+rankChunk, len(db))]).Count()
	}
	v.npages = n
	if tbl := n * pageDescSize; v.tableOff > size || tbl > uint64(size-v.tableOff) {
		return nil, formatErr(v.tableOff, (1 + sb + int64(h.BitmapBlocks)), "page_desc", diskdump.ErrTruncated,
			"table of %d descriptors does not fit in the file (%d bytes)", n, size)
	}
	return v, nil
}

func openELF(r io.ReaderAt, size int64) (*File, error) {
	v := &File{r: r, size: size, format: FormatELF}
	var id [elf64EhdrSize]byte
	if size < elf32EhdrSize {
		return nil, formatErr(0, -1, "e_ident", diskdump.ErrTruncated, "file of %d bytes", size)
	}
	eh := id[:min(size, elf64EhdrSize)]
	if err := v.readFull(eh, 0, "Elf_Ehdr"); err != nil {
		return nil, err
	}
	switch eh[5] {
	case elfData2LSB:
		v.order = binary.LittleEndian
	case elfData2MSB:
		v.order = binary.BigEndian
	default:
		return nil, formatErr(5, -1, "e_ident[EI_DATA]", diskdump.ErrCorrupt, "byte order %d", eh[5])
	}
	o := v.order
	var is64 bool
	switch eh[4] {
	case elfClass32:
	case elfClass64:
		is64 = true
		if len(eh) < elf64EhdrSize {
			return nil, formatErr(0, -1, "Elf64_Ehdr", diskdump.ErrTruncated, "file of %d bytes", size)
		}
	default:
		return nil, formatErr(4, -1, "e_ident[EI_CLASS]", diskdump.ErrCorrupt, "class %d", eh[4])
	}
	var (
		typ, machine, phentsize, phnum uint16
		phoff                          uint64
	)
	typ, machine = o.Uint16(eh[16:]), o.Uint16(eh[18:])
	if is64 {
		phoff, phentsize, phnum = o.Uint64(eh[32:]), o.Uint16(eh[54:]), o.Uint16(eh[56:])
	} else {
		phoff, phentsize, phnum = uint64(o.Uint32(eh[28:])), o.Uint16(eh[42:]), o.Uint16(eh[44:])
	}
	if typ != etCore {
		return nil, formatErr(16, -1, "e_type", diskdump.ErrUnsupportedVersion, "ELF type %d is not ET_CORE", typ)
	}
	want := uint16(elf32PhdrSize)
	if is64 {
		want = elf64PhdrSize
	}
	if phentsize != want || phnum == 0 {
		return nil, formatErr(42, -1, "e_phentsize", diskdump.ErrCorrupt, "%d program headers of %d bytes", phnum, phentsize)
	}
	if phoff > uint64(size) || uint64(phnum)*uint64(phentsize) > uint64(size)-phoff {
		return nil, formatErr(int64(min(phoff, uint64(size))), -1, "program headers", diskdump.ErrTruncated,
			"%d program headers at 0x%x do not fit in the file (%d bytes)", phnum, phoff, size)
	}
	v.pageSize = 4096
	if machine == diskdump.ArchIA64.ELFMachine() {
		v.pageSize = 16384
	}
	ph := make([]byte, int(phnum)*int(phentsize))
	if err := v.readFull(ph, int64(phoff), "program headers"); err != nil {
		return nil, err
	}
	for i := 0; i < int(phnum); i++ {
		p := ph[i*int(phentsize):]
		var pt uint32
		var l elfLoad
		var align uint64
		if is64 {
			pt = o.Uint32(p)
			l = elfLoad{off: o.Uint64(p[8:]), paddr: o.Uint64(p[24:]), filesz: o.Uint64(p[32:]), memsz: o.Uint64(p[40:])}
			align = o.Uint64(p[48:])
		} else {
			pt = o.Uint32(p)
			l = elfLoad{off: uint64(o.Uint32(p[4:])), paddr: uint64(o.Uint32(p[12:])), filesz: uint64(o.Uint32(p[16:])), memsz: uint64(o.Uint32(p[20:]))}
			align = uint64(o.Uint32(p[28:]))
		}
		phOff := int64(phoff) + int64(i)*int64(phentsize)
		switch pt {
		case ptNote:
			if err := v.readNotes(l.off, l.filesz, phOff); err != nil {
				return nil, err
			}
		case ptLoad:
			if l.filesz > l.memsz {
				return nil, formatErr(phOff, -1, "p_filesz", diskdump.ErrCorrupt, "p_filesz 0x%x > p_memsz 0x%x", l.filesz, l.memsz)
			}
			if l.paddr+l.memsz < l.paddr || l.off+l.filesz < l.off || l.off > 1<<62 {
				return nil, formatErr(phOff, -1, "p_offset", diskdump.ErrCorrupt, "segment at 0x%x (paddr 0x%x, size 0x%x) overflows", l.off, l.paddr, l.memsz)
			}
			if !is64 && l.paddr == 0 && l.filesz == elf32MaxFilesz && uint64(size) > l.off {
				// i386 PAE: p_filesz saturated ([REC] doc/FORMAT.md §13 item 11);
				// like crash, take the data extent from the file.
				l.filesz = max(l.filesz, uint64(size)-l.off)
				l.memsz = max(l.memsz, l.filesz)
			}
			if len(v.loads) == 0 && align >= 4096 && align <= 65536 && align&(align-1) == 0 {
				v.pageSize = int(align)
			}
			v.loads = append(v.loads, l)
		}
	}
	if len(v.loads) == 0 {
		return nil, formatErr(int64(phoff), -1, "program headers", diskdump.ErrCorrupt, "no PT_LOAD segment")
	}
	// Segment data beyond the end of the file is not an error here: a
	// truncated vmcore still opens, and ReadPage reports the pages it
	// lacks (ErrTruncated).
	b := uint64(v.pageSize)
	for _, l := range v.loads {
		v.maxPFN = max(v.maxPFN, (l.paddr+l.memsz)/b)
	}
	return v, nil
}

// maxNotesSize bounds the PT_NOTE segment Open reads.
const maxNotesSize = 1 << 20

func (v *File) readNotes(off, n uint64, phOff int64) error {
	if n > maxNotesSize {
		return formatErr(phOff, -1, "PT_NOTE", diskdump.ErrCorrupt, "note segment of %d bytes", n)
	}
	if off > uint64(v.size) || n > uint64(v.size)-off {
		return formatErr(int64(min(off, uint64(v.size))), -1, "PT_NOTE", diskdump.ErrTruncated, "note segment [0x%x, 0x%x) beyond the end of the file", off, off+n)
	}
	b := make([]byte, n)
	if err := v.readFull(b, int64(off), "PT_NOTE"); err != nil {
		return err
	}
	o := v.order
	for pos := uint64(0); pos < n; {
		if n-pos < noteHdrSize {
			return formatErr(int64(off+pos), -1, "Elf_Nhdr", diskdump.ErrTruncated, "note header cut")
		}
		namesz, descsz, typ := uint64(o.Uint32(b[pos:])), uint64(o.Uint32(b[pos+4:])), o.Uint32(b[pos+8:])
		nameOff := pos + noteHdrSize
		descOff := nameOff + uint64(pad4(int(min(namesz, n))))
		end := descOff + uint64(pad4(int(min(descsz, n))))
		if namesz > n || descsz > n || end > n+3 || descOff+descsz > n {
			return formatErr(int64(off+pos), -1, "Elf_Nhdr", diskdump.ErrCorrupt, "note of name size %d, descriptor size %d exceeds the segment", namesz, descsz)
		}
		name := string(b[nameOff : nameOff+namesz])
		if i := len(name); i > 0 && name[i-1] == 0 {
			name = name[:i-1]
		}
		desc := b[descOff : descOff+descsz]
		v.notes = append(v.notes, ELFNote{Name: name, Type: typ, Desc: desc})
		if typ == NTDiskdump && len(desc) >= 4 && o.Uint32(desc) != 0 {
			v.partial = true
		}
		pos = end
	}
	return nil
}

func (v *File) findLoad(pfn uint64) (elfLoad, bool) {
	b := uint64(v.pageSize)
	if pfn > (^uint64(0))/b {
		return elfLoad{}, false
	}
	a := pfn * b
	for _, l := range v.loads {
		if a >= l.paddr && a-l.paddr < l.memsz && l.memsz-(a-l.paddr) >= b {
			return l, true
		}
	}
	return elfLoad{}, false
}

func (v *File) readELFPage(pfn uint64, dst []byte) ([]byte, error) {
	l, ok := v.findLoad(pfn)
	if !ok {
		return nil, &diskdump.PageError{PFN: pfn, Off: -1, Err: ErrNotInDump}
	}
	rel := pfn*uint64(v.pageSize) - l.paddr
	off := int64(l.off + rel)
	clear(dst)
	if rel >= l.filesz {
		return dst, nil
	}
	n := min(uint64(v.pageSize), l.filesz-rel)
	if err := v.readFull(dst[:n], off, "page data"); err != nil {
		return nil, &diskdump.PageError{PFN: pfn, Off: off, Err: err}
	}
	return dst, nil
}
