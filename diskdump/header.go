package diskdump

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Header signatures (doc/FORMAT.md §1, §10.3).
const (
	DumpSignature  = "DISKDUMP" // disk_dump_header of a partition or DISKDUMP vmcore
	KdumpSignature = "KDUMP   " // makedumpfile's kdump-compressed vmcore
)

// DiskDumpHeaderVersion is DISK_DUMP_HEADER_VERSION, written by RHEL3
// kernels; RHEL4 kernels leave header_version at 0 (doc/FORMAT.md §4.2).
const DiskDumpHeaderVersion = 1

// Status is the disk_dump_header status word of a partition or DISKDUMP
// vmcore (doc/FORMAT.md §4.4). The low three bits are the state; StatusCompressed is
// OR-ed into them.
type Status uint32

// Status values.
const (
	StatusCompleted   Status = 0
	StatusIncompleted Status = 1
	StatusInProgress  Status = 2
	StatusShortArea   Status = 4
	StatusCompressed  Status = 8
)

// State is the status without the compressed bit.
func (s Status) State() Status { return s &^ StatusCompressed }

// Compressed reports whether the data area is a compressed record stream.
func (s Status) Compressed() bool { return s&StatusCompressed != 0 }

// Complete reports whether the kernel finished the dump (state COMPLETED).
func (s Status) Complete() bool { return s.State() == StatusCompleted }

func (s Status) String() string {
	var parts []string
	switch st := s.State(); st {
	case StatusCompleted:
		parts = append(parts, "COMPLETED")
	case StatusIncompleted:
		parts = append(parts, "INCOMPLETED")
	case StatusInProgress:
		parts = append(parts, "IN_PROGRESS")
	case StatusShortArea:
		parts = append(parts, "SHORT_AREA")
	default:
		parts = append(parts, fmt.Sprintf("0x%x", uint32(st)))
	}
	if s.Compressed() {
		parts = append(parts, "COMPRESSED")
	}
	return strings.Join(parts, "|")
}

// Utsname is struct new_utsname: six NUL-padded 65-byte strings.
type Utsname struct {
	Sysname, Nodename, Release, Version, Machine, Domainname string
}

const utsLen = 65

func (u Utsname) fields() [6]string {
	return [6]string{u.Sysname, u.Nodename, u.Release, u.Version, u.Machine, u.Domainname}
}

func (u *Utsname) decode(b []byte) {
	f := [6]*string{&u.Sysname, &u.Nodename, &u.Release, &u.Version, &u.Machine, &u.Domainname}
	for i, p := range f {
		s := b[i*utsLen : (i+1)*utsLen]
		if j := bytes.IndexByte(s, 0); j >= 0 {
			s = s[:j]
		}
		*p = string(s)
	}
}

func (u Utsname) encode(b []byte) {
	for i, s := range u.fields() {
		dst := b[i*utsLen : (i+1)*utsLen]
		clear(dst)
		copy(dst, s)
	}
}

func (u Utsname) String() string {
	return strings.Join([]string{u.Sysname, u.Nodename, u.Release, u.Version, u.Machine}, " ")
}

// rawHeader32 mirrors struct disk_dump_header on 32-bit targets (i386).
type rawHeader32 struct {
	Signature      [8]byte   // 0 signature
	HeaderVersion  int32     // 8 header_version
	Utsname        [390]byte // 12 utsname
	_              [2]byte   // 402 padding to long alignment
	TvSec          int32     // 404 timestamp.tv_sec
	TvFrac         int32     // 408 timestamp.tv_usec (RHEL3) / tv_nsec (RHEL4)
	Status         uint32    // 412 status
	BlockSize      int32     // 416 block_size
	SubHdrSize     int32     // 420 sub_hdr_size
	BitmapBlocks   uint32    // 424 bitmap_blocks
	MaxMapnr       uint32    // 428 max_mapnr
	TotalRAMBlocks uint32    // 432 total_ram_blocks
	DeviceBlocks   uint32    // 436 device_blocks
	WrittenBlocks  uint32    // 440 written_blocks
	CurrentCPU     uint32    // 444 current_cpu
	NrCPUs         int32     // 448 nr_cpus
	// 452 tasks[NR_CPUS] (u32)
}

// rawHeader64 mirrors struct disk_dump_header on 64-bit targets.
type rawHeader64 struct {
	Signature      [8]byte   // 0 signature
	HeaderVersion  int32     // 8 header_version
	Utsname        [390]byte // 12 utsname
	_              [6]byte   // 402 padding to long alignment
	TvSec          int64     // 408 timestamp.tv_sec
	TvFrac         int64     // 416 timestamp.tv_usec (RHEL3) / tv_nsec (RHEL4)
	Status         uint32    // 424 status
	BlockSize      int32     // 428 block_size
	SubHdrSize     int32     // 432 sub_hdr_size
	BitmapBlocks   uint32    // 436 bitmap_blocks
	MaxMapnr       uint32    // 440 max_mapnr
	TotalRAMBlocks uint32    // 444 total_ram_blocks
	DeviceBlocks   uint32    // 448 device_blocks
	WrittenBlocks  uint32    // 452 written_blocks
	CurrentCPU     uint32    // 456 current_cpu
	NrCPUs         int32     // 460 nr_cpus
	// 464 tasks[NR_CPUS] (u64)
}

// Sizes of the fixed part of the header, before tasks[].
const (
	header32Size = 452
	header64Size = 464
)

// Header is a decoded disk_dump_header (doc/FORMAT.md §4), or the same container with
// the KDUMP signature.
type Header struct {
	Layout         Layout // byte order and word size it was (or will be) encoded with
	Signature      string // DumpSignature or KdumpSignature
	Version        int32  // header_version: 1 RHEL3, 0 RHEL4 partitions
	Utsname        Utsname
	Sec            int64  // timestamp.tv_sec
	Frac           int64  // timestamp second field: µs (RHEL3, KDUMP) or ns (RHEL4)
	Status         Status // status word; for KDUMP files these are makedumpfile's bits
	BlockSize      int32
	SubHdrSize     int32  // sub-header size in blocks
	BitmapBlocks   uint32 // blocks of bitmaps: R or 2R
	MaxMapnr       uint32 // one past the highest PFN
	TotalRAMBlocks uint32
	DeviceBlocks   uint32
	WrittenBlocks  uint32
	CurrentCPU     uint32
	NrCPUs         int32
	Tasks          []uint64 // tasks[]: current task of each CPU (NR_CPUS is not recorded)
}

// Size is the byte size of the encoded struct including len(Tasks) tasks.
func (h *Header) Size() int {
	if h.Layout.Is64 {
		return header64Size + 8*len(h.Tasks)
	}
	return header32Size + 4*len(h.Tasks)
}

// HeaderFixedSize is the size of disk_dump_header before tasks[] in layout l.
func (l Layout) HeaderFixedSize() int {
	if l.Is64 {
		return header64Size
	}
	return header32Size
}

// FieldOffset returns the byte offset of a header field (C name) in layout
// l, or -1. Used for error positions and by tests that poke fields.
func (l Layout) FieldOffset(field string) int {
	o32 := map[string]int{"signature": 0, "header_version": 8, "utsname": 12, "timestamp": 404,
		"status": 412, "block_size": 416, "sub_hdr_size": 420, "bitmap_blocks": 424, "max_mapnr": 428,
		"total_ram_blocks": 432, "device_blocks": 436, "written_blocks": 440, "current_cpu": 444,
		"nr_cpus": 448, "tasks": 452}
	off, ok := o32[field]
	if !ok {
		return -1
	}
	if l.Is64 && off >= 404 {
		if off == 404 {
			return 408
		}
		off += 12 // 4 more pad bytes and two 8-byte timestamp words
	}
	return off
}

// Arch derives the architecture from utsname.machine, or ArchUnknown.
func (h *Header) Arch() Arch {
	a, err := ParseArch(h.Utsname.Machine)
	if err != nil {
		return ArchUnknown
	}
	return a
}

// FracIsMicro reports whether the timestamp's second field is in
// microseconds: RHEL3 (2.4 kernels, struct timeval) and KDUMP files. RHEL4
// stores struct timespec (ns). The two are told apart by utsname.release
// (doc/FORMAT.md §4.2).
func (h *Header) FracIsMicro() bool {
	return h.Signature == KdumpSignature || strings.HasPrefix(h.Utsname.Release, "2.4.")
}

// Time is the crash time.
func (h *Header) Time() time.Time {
	ns := h.Frac
	if h.FracIsMicro() {
		ns *= 1000
	}
	if ns < 0 || ns >= 1e9 {
		ns = 0
	}
	return time.Unix(h.Sec, ns)
}

// Encode writes the header into b, which must hold Size() bytes. Bytes of b
// past the struct are left untouched; the kernel zero-fills the block first
// (use EncodeBlock for that).
func (h *Header) Encode(b []byte) error {
	if len(b) < h.Size() {
		return fmt.Errorf("diskdump: header needs %d bytes, buffer has %d: %w", h.Size(), len(b), ErrTruncated)
	}
	o := h.Layout.Order
	if o == nil {
		return fmt.Errorf("diskdump: header layout has no byte order: %w", ErrUnsupportedVersion)
	}
	var sig [8]byte
	copy(sig[:], h.Signature)
	var uts [390]byte
	h.Utsname.encode(uts[:])
	var err error
	if h.Layout.Is64 {
		r := rawHeader64{Signature: sig, HeaderVersion: h.Version, Utsname: uts, TvSec: h.Sec, TvFrac: h.Frac,
			Status: uint32(h.Status), BlockSize: h.BlockSize, SubHdrSize: h.SubHdrSize, BitmapBlocks: h.BitmapBlocks,
			MaxMapnr: h.MaxMapnr, TotalRAMBlocks: h.TotalRAMBlocks, DeviceBlocks: h.DeviceBlocks,
			WrittenBlocks: h.WrittenBlocks, CurrentCPU: h.CurrentCPU, NrCPUs: h.NrCPUs}
		_, err = binary.Encode(b, o, &r)
		for i, t := range h.Tasks {
			o.PutUint64(b[header64Size+8*i:], t)
		}
	} else {
		r := rawHeader32{Signature: sig, HeaderVersion: h.Version, Utsname: uts, TvSec: int32(h.Sec), TvFrac: int32(h.Frac),
			Status: uint32(h.Status), BlockSize: h.BlockSize, SubHdrSize: h.SubHdrSize, BitmapBlocks: h.BitmapBlocks,
			MaxMapnr: h.MaxMapnr, TotalRAMBlocks: h.TotalRAMBlocks, DeviceBlocks: h.DeviceBlocks,
			WrittenBlocks: h.WrittenBlocks, CurrentCPU: h.CurrentCPU, NrCPUs: h.NrCPUs}
		_, err = binary.Encode(b, o, &r)
		for i, t := range h.Tasks {
			o.PutUint32(b[header32Size+4*i:], uint32(t))
		}
	}
	return err
}

// EncodeBlock returns a zeroed block of blockSize bytes with the header at
// its start, as the kernel writes block 1.
func (h *Header) EncodeBlock(blockSize int) ([]byte, error) {
	b := make([]byte, blockSize)
	if err := h.Encode(b); err != nil {
		return nil, err
	}
	return b, nil
}

// HeaderCheck selects the consistency checks of ParseHeader.
type HeaderCheck struct {
	// DeviceBlocks, when non-zero, is the size of the partition or file in
	// blocks of the header's block size; structures must fit in it.
	DeviceBlocks uint64
	// BaseOff is added to error offsets: the position of the header on the
	// device (one block for a partition, 0 for a vmcore file).
	BaseOff int64
	// BaseBlk is the block number of the header: 1 on a partition, 0 in a
	// vmcore file. It positions errors and the DeviceBlocks check.
	BaseBlk int64
}

// ParseHeader decodes a disk_dump_header (or KDUMP header) from b, which
// should hold the whole header block. The layout comes from utsname.machine
// and, when that is unknown, from probing the four layouts the way
// libkdumpfile does (doc/FORMAT.md §4.3). The header is then checked for impossible
// values; every error is a *FormatError naming the field.
func ParseHeader(b []byte, chk HeaderCheck) (*Header, error) {
	errAt := func(field string, l Layout, sentinel error, format string, args ...any) error {
		off := int64(0)
		if field != "" {
			off = int64(l.FieldOffset(field))
		}
		return fieldErr(chk.BaseOff+off, chk.BaseBlk, field, sentinel, format, args...)
	}
	if len(b) < 8 {
		return nil, errAt("signature", Layout{}, ErrTruncated, "header needs 8 bytes, have %d", len(b))
	}
	sig := string(b[:8])
	if sig != DumpSignature && sig != KdumpSignature {
		return nil, errAt("signature", Layout{}, ErrNoDump, "signature %q is neither %q nor %q", printable(b[:8]), DumpSignature, KdumpSignature)
	}
	if len(b) < header32Size {
		return nil, errAt("", Layout{}, ErrTruncated, "header needs at least %d bytes, have %d", header32Size, len(b))
	}
	var uts Utsname
	uts.decode(b[12 : 12+390])
	var layouts []Layout
	if a, err := ParseArch(uts.Machine); err == nil {
		layouts = []Layout{LayoutOf(a)}
	} else {
		layouts = []Layout{{binary.LittleEndian, false}, {binary.BigEndian, false}, {binary.LittleEndian, true}, {binary.BigEndian, true}}
	}
	var firstErr error
	for _, l := range layouts {
		h, err := decodeHeader(b, l)
		if err == nil {
			err = h.check(chk, errAt)
		}
		if err == nil {
			return h, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// DecodeHeader decodes b with a known layout without consistency checks
// (beyond the signature and length). Readers that recover damaged dumps use
// it; ParseHeader is the checked entry point.
func DecodeHeader(b []byte, l Layout) (*Header, error) {
	if len(b) < 8 || (string(b[:8]) != DumpSignature && string(b[:8]) != KdumpSignature) {
		return nil, fieldErr(0, -1, "signature", ErrNoDump, "no dump header signature")
	}
	return decodeHeader(b, l)
}

func decodeHeader(b []byte, l Layout) (*Header, error) {
	fixed := l.HeaderFixedSize()
	if len(b) < fixed {
		return nil, fieldErr(int64(len(b)), -1, "", ErrTruncated, "%s header needs %d bytes, have %d", l, fixed, len(b))
	}
	h := &Header{Layout: l, Signature: string(b[:8])}
	var uts [390]byte
	if l.Is64 {
		var r rawHeader64
		if _, err := binary.Decode(b, l.Order, &r); err != nil {
			return nil, fieldErr(0, -1, "", ErrTruncated, "%v", err)
		}
		uts = r.Utsname
		h.Version, h.Sec, h.Frac, h.Status = r.HeaderVersion, r.TvSec, r.TvFrac, Status(r.Status)
		h.BlockSize, h.SubHdrSize, h.BitmapBlocks, h.MaxMapnr = r.BlockSize, r.SubHdrSize, r.BitmapBlocks, r.MaxMapnr
		h.TotalRAMBlocks, h.DeviceBlocks, h.WrittenBlocks = r.TotalRAMBlocks, r.DeviceBlocks, r.WrittenBlocks
		h.CurrentCPU, h.NrCPUs = r.CurrentCPU, r.NrCPUs
	} else {
		var r rawHeader32
		if _, err := binary.Decode(b, l.Order, &r); err != nil {
			return nil, fieldErr(0, -1, "", ErrTruncated, "%v", err)
		}
		uts = r.Utsname
		h.Version, h.Sec, h.Frac, h.Status = r.HeaderVersion, int64(r.TvSec), int64(r.TvFrac), Status(r.Status)
		h.BlockSize, h.SubHdrSize, h.BitmapBlocks, h.MaxMapnr = r.BlockSize, r.SubHdrSize, r.BitmapBlocks, r.MaxMapnr
		h.TotalRAMBlocks, h.DeviceBlocks, h.WrittenBlocks = r.TotalRAMBlocks, r.DeviceBlocks, r.WrittenBlocks
		h.CurrentCPU, h.NrCPUs = r.CurrentCPU, r.NrCPUs
	}
	h.Utsname.decode(uts[:])
	// NR_CPUS is not recorded: decode the entries a reader can use, those
	// of CPUs 0..max(nr_cpus, current_cpu+1)-1, as far as the buffer holds.
	n := int64(h.NrCPUs)
	if int64(h.CurrentCPU)+1 > n {
		n = int64(h.CurrentCPU) + 1
	}
	ws := l.WordSize()
	if room := int64(len(b)-fixed) / int64(ws); n > room {
		n = room
	}
	if n > 0 {
		h.Tasks = make([]uint64, n)
		for i := range h.Tasks {
			off := fixed + i*ws
			if l.Is64 {
				h.Tasks[i] = l.Order.Uint64(b[off:])
			} else {
				h.Tasks[i] = uint64(l.Order.Uint32(b[off:]))
			}
		}
	}
	return h, nil
}

// maxCPUs bounds nr_cpus: crash needs the header and tasks[] to fit in one
// block, and the largest NR_CPUS of a RHEL kernel build is far below this.
const maxCPUs = 4096

func (h *Header) check(chk HeaderCheck, errAt func(string, Layout, error, string, ...any) error) error {
	l := h.Layout
	if !ValidBlockSize(int64(h.BlockSize)) {
		return errAt("block_size", l, ErrCorrupt, "block size %d is not a power of two from 4096 to 65536", h.BlockSize)
	}
	if h.SubHdrSize < 1 || h.SubHdrSize > 64 {
		return errAt("sub_hdr_size", l, ErrCorrupt, "sub-header size %d blocks is out of range 1..64", h.SubHdrSize)
	}
	r := BitmapBlocksFor(uint64(h.MaxMapnr), int(h.BlockSize))
	if h.MaxMapnr == 0 {
		return errAt("max_mapnr", l, ErrCorrupt, "max_mapnr is 0")
	}
	if uint64(h.BitmapBlocks) != r && uint64(h.BitmapBlocks) != 2*r {
		return errAt("bitmap_blocks", l, ErrCorrupt, "bitmap_blocks %d is neither %d nor %d for max_mapnr %d", h.BitmapBlocks, r, 2*r, h.MaxMapnr)
	}
	if h.NrCPUs < 1 || h.NrCPUs > maxCPUs || int(h.BlockSize) < l.HeaderFixedSize()+l.WordSize()*int(h.NrCPUs) {
		return errAt("nr_cpus", l, ErrCorrupt, "nr_cpus %d is out of range (1..%d and tasks[] within the block)", h.NrCPUs, maxCPUs)
	}
	if h.CurrentCPU >= maxCPUs {
		return errAt("current_cpu", l, ErrCorrupt, "current_cpu %d is out of range", h.CurrentCPU)
	}
	if chk.DeviceBlocks != 0 {
		// The header block itself (block 1 of a partition, 0 of a vmcore
		// file), the sub-header and the bitmaps.
		need := uint64(max(chk.BaseBlk, 0)) + 1 + uint64(h.SubHdrSize) + uint64(h.BitmapBlocks)
		if need > chk.DeviceBlocks {
			return errAt("bitmap_blocks", l, ErrTooSmall, "headers and bitmaps need %d blocks, the device has %d", need, chk.DeviceBlocks)
		}
	}
	return nil
}

func printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "\\x%02x", c)
		}
	}
	return sb.String()
}
