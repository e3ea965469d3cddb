package vmcore

import (
	"encoding/binary"
	"errors"
	"io"
	"iter"
	"math/bits"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/elfcore"
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

// openELF opens an ELF vmcore (doc/FORMAT.md §10.1) through the shared
// ELF core parser. Notes must parse to the end of their segment.
func openELF(r io.ReaderAt, size int64) (*File, error) {
	ef, err := elfcore.Open(r, size)
	if err != nil {
		return nil, err
	}
	v := &File{r: r, size: size, format: FormatELF, order: ef.Order}
	v.pageSize = 4096
	if uint16(ef.Machine) == diskdump.ArchIA64.ELFMachine() {
		v.pageSize = 16384
	}
	for _, p := range ef.Loads() {
		l := elfLoad{off: p.Off, paddr: p.Paddr, filesz: p.Filesz, memsz: p.Memsz}
		if !ef.Is64() && l.paddr == 0 && l.filesz == elf32MaxFilesz && uint64(size) > l.off {
			// i386 PAE: p_filesz saturated ([REC] doc/FORMAT.md §13 item 11);
			// like crash, take the data extent from the file.
			l.filesz = max(l.filesz, uint64(size)-l.off)
			l.memsz = max(l.memsz, l.filesz)
		}
		if a := p.Align; len(v.loads) == 0 && a >= 4096 && a <= 65536 && a&(a-1) == 0 {
			v.pageSize = int(a)
		}
		v.loads = append(v.loads, l)
	}
	if len(v.loads) == 0 {
		return nil, formatErr(int64(ef.Phoff), -1, "program headers", diskdump.ErrCorrupt, "no PT_LOAD segment")
	}
	notes, damage, err := ef.Notes()
	if err == nil {
		err = damage
	}
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		v.notes = append(v.notes, ELFNote{Name: n.Name, Type: n.Type, Desc: n.Desc})
		if n.Type == NTDiskdump && len(n.Desc) >= 4 && v.order.Uint32(n.Desc) != 0 {
			v.partial = true
		}
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
