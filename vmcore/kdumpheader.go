package vmcore

import (
	"encoding/binary"
	"fmt"

	"github.com/dumpkit/dumpkit/diskdump"
)

// KDUMP (makedumpfile) header values (doc/FORMAT.md §10.3).
const (
	// KdumpHeaderVersion is the header_version Write writes: 6,
	// with 64-bit PFN fields in the sub-header.
	KdumpHeaderVersion = 6
	// KdumpStatusZlib is status bit 0x1 of a KDUMP file: pages are zlib
	// compressed (DUMP_DH_COMPRESSED_ZLIB).
	KdumpStatusZlib diskdump.Status = 0x1
	// KdumpStatusIncomplete is status bit 0x8 of a KDUMP file
	// (DUMP_DH_COMPRESSED_INCOMPLETE): not every page could be saved.
	KdumpStatusIncomplete diskdump.Status = 0x8

	kdumpSubHeader64Size = 104
	kdumpSubHeader32Size = 80
)

// rawKdumpSubHeader64 mirrors struct kdump_sub_header on 64-bit targets.
type rawKdumpSubHeader64 struct {
	PhysBase         uint64 // 0 phys_base
	DumpLevel        int32  // 8 dump_level
	Split            int32  // 12 split
	StartPFN         uint64 // 16 start_pfn
	EndPFN           uint64 // 24 end_pfn
	OffsetVmcoreinfo uint64 // 32 offset_vmcoreinfo
	SizeVmcoreinfo   uint64 // 40 size_vmcoreinfo
	OffsetNote       uint64 // 48 offset_note
	SizeNote         uint64 // 56 size_note
	OffsetEraseinfo  uint64 // 64 offset_eraseinfo
	SizeEraseinfo    uint64 // 72 size_eraseinfo
	StartPFN64       uint64 // 80 start_pfn_64
	EndPFN64         uint64 // 88 end_pfn_64
	MaxMapnr64       uint64 // 96 max_mapnr_64
}

// rawKdumpSubHeader32 mirrors struct kdump_sub_header on i386, where
// 64-bit members are 4-byte aligned (doc/FORMAT.md §10.3).
type rawKdumpSubHeader32 struct {
	PhysBase         uint32 // 0 phys_base
	DumpLevel        int32  // 4 dump_level
	Split            int32  // 8 split
	StartPFN         uint32 // 12 start_pfn
	EndPFN           uint32 // 16 end_pfn
	OffsetVmcoreinfo uint64 // 20 offset_vmcoreinfo
	SizeVmcoreinfo   uint32 // 28 size_vmcoreinfo
	OffsetNote       uint64 // 32 offset_note
	SizeNote         uint32 // 40 size_note
	OffsetEraseinfo  uint64 // 44 offset_eraseinfo
	SizeEraseinfo    uint32 // 52 size_eraseinfo
	StartPFN64       uint64 // 56 start_pfn_64
	EndPFN64         uint64 // 64 end_pfn_64
	MaxMapnr64       uint64 // 72 max_mapnr_64
}

// KdumpSubHeader is the decoded kdump_sub_header of a KDUMP vmcore.
type KdumpSubHeader struct {
	PhysBase         uint64
	DumpLevel        int32
	Split            int32
	StartPFN, EndPFN uint64 // start_pfn_64/end_pfn_64 when set, else the 32-bit fields
	OffsetVmcoreinfo uint64
	SizeVmcoreinfo   uint64
	OffsetNote       uint64
	SizeNote         uint64
	OffsetEraseinfo  uint64
	SizeEraseinfo    uint64
	MaxMapnr64       uint64
}

// Encode writes the sub-header in layout l into b.
func (k *KdumpSubHeader) Encode(b []byte, l diskdump.Layout) error {
	var err error
	if l.Is64 {
		r := rawKdumpSubHeader64{PhysBase: k.PhysBase, DumpLevel: k.DumpLevel, Split: k.Split,
			StartPFN: k.StartPFN, EndPFN: k.EndPFN, OffsetVmcoreinfo: k.OffsetVmcoreinfo, SizeVmcoreinfo: k.SizeVmcoreinfo,
			OffsetNote: k.OffsetNote, SizeNote: k.SizeNote, OffsetEraseinfo: k.OffsetEraseinfo, SizeEraseinfo: k.SizeEraseinfo,
			StartPFN64: k.StartPFN, EndPFN64: k.EndPFN, MaxMapnr64: k.MaxMapnr64}
		_, err = binary.Encode(b, l.Order, &r)
	} else {
		r := rawKdumpSubHeader32{PhysBase: uint32(k.PhysBase), DumpLevel: k.DumpLevel, Split: k.Split,
			StartPFN: uint32(k.StartPFN), EndPFN: uint32(k.EndPFN), OffsetVmcoreinfo: k.OffsetVmcoreinfo,
			SizeVmcoreinfo: uint32(k.SizeVmcoreinfo), OffsetNote: k.OffsetNote, SizeNote: uint32(k.SizeNote),
			OffsetEraseinfo: k.OffsetEraseinfo, SizeEraseinfo: uint32(k.SizeEraseinfo),
			StartPFN64: k.StartPFN, EndPFN64: k.EndPFN, MaxMapnr64: k.MaxMapnr64}
		_, err = binary.Encode(b, l.Order, &r)
	}
	if err != nil {
		return fmt.Errorf("diskdump: encoding kdump sub-header: %w", err)
	}
	return nil
}

// DecodeKdumpSubHeader decodes a kdump_sub_header in layout l.
func DecodeKdumpSubHeader(b []byte, l diskdump.Layout) (*KdumpSubHeader, error) {
	k := &KdumpSubHeader{}
	if l.Is64 {
		var r rawKdumpSubHeader64
		if _, err := binary.Decode(b, l.Order, &r); err != nil {
			return nil, formatErr(int64(len(b)), -1, "kdump_sub_header", diskdump.ErrTruncated, "needs %d bytes, have %d", kdumpSubHeader64Size, len(b))
		}
		*k = KdumpSubHeader{PhysBase: r.PhysBase, DumpLevel: r.DumpLevel, Split: r.Split, StartPFN: r.StartPFN, EndPFN: r.EndPFN,
			OffsetVmcoreinfo: r.OffsetVmcoreinfo, SizeVmcoreinfo: r.SizeVmcoreinfo, OffsetNote: r.OffsetNote, SizeNote: r.SizeNote,
			OffsetEraseinfo: r.OffsetEraseinfo, SizeEraseinfo: r.SizeEraseinfo, MaxMapnr64: r.MaxMapnr64}
		if r.StartPFN64 != 0 || r.EndPFN64 != 0 {
			k.StartPFN, k.EndPFN = r.StartPFN64, r.EndPFN64
		}
	} else {
		var r rawKdumpSubHeader32
		if _, err := binary.Decode(b, l.Order, &r); err != nil {
			return nil, formatErr(int64(len(b)), -1, "kdump_sub_header", diskdump.ErrTruncated, "needs %d bytes, have %d", kdumpSubHeader32Size, len(b))
		}
		*k = KdumpSubHeader{PhysBase: uint64(r.PhysBase), DumpLevel: r.DumpLevel, Split: r.Split,
			StartPFN: uint64(r.StartPFN), EndPFN: uint64(r.EndPFN), OffsetVmcoreinfo: r.OffsetVmcoreinfo,
			SizeVmcoreinfo: uint64(r.SizeVmcoreinfo), OffsetNote: r.OffsetNote, SizeNote: uint64(r.SizeNote),
			OffsetEraseinfo: r.OffsetEraseinfo, SizeEraseinfo: uint64(r.SizeEraseinfo), MaxMapnr64: r.MaxMapnr64}
		if r.StartPFN64 != 0 || r.EndPFN64 != 0 {
			k.StartPFN, k.EndPFN = r.StartPFN64, r.EndPFN64
		}
	}
	return k, nil
}

// kdumpVmcoreinfo is the VMCOREINFO text of a KDUMP file made from a
// diskdump partition: the kernel release, the page size and the crash
// time, the only vmcoreinfo facts the partition records.
func kdumpVmcoreinfo(h *diskdump.Header) string {
	return fmt.Sprintf("OSRELEASE=%s\nPAGESIZE=%d\nCRASHTIME=%d\n", h.Utsname.Release, h.BlockSize, h.Sec)
}

// kdumpHeader is the disk_dump_header of a KDUMP file made from a
// partition: signature "KDUMP   ", header_version 6, µs timestamp, status
// the compression's bit (+ INCOMPLETE when pages are missing), two
// PFN-indexed bitmaps, one sub-header block.
func kdumpHeader(s *source, rb int64, missing bool, c Compression) *diskdump.Header {
	src := s.hdr
	h := &diskdump.Header{
		Layout: src.Layout, Signature: diskdump.KdumpSignature, Version: KdumpHeaderVersion, Utsname: src.Utsname,
		Sec: src.Sec, Frac: src.Frac, Status: diskdump.Status(c.Flag()), BlockSize: src.BlockSize, SubHdrSize: 1,
		BitmapBlocks: uint32(2 * rb), MaxMapnr: src.MaxMapnr, TotalRAMBlocks: uint32(s.ram.Count()),
		CurrentCPU: src.CurrentCPU, NrCPUs: src.NrCPUs, Tasks: src.Tasks,
	}
	if !src.FracIsMicro() {
		h.Frac = src.Frac / 1000 // struct timespec (RHEL4) to struct timeval
	}
	if missing {
		h.Status |= KdumpStatusIncomplete
	}
	return h
}

// kdumpSubHeaderBlock is block 1 of a KDUMP file made from a partition:
// the kdump_sub_header and, right after the struct, a VMCOREINFO made of
// what the header knows ([REC]: tools that insist on one, crash
// --osrelease and --log, find the release and page size).
//
// Its dump_level is the level Write applied, in makedumpfile's bits
// (DumpLevel.Makedumpfile): the partition does not record the level its
// kernel applied.
func kdumpSubHeaderBlock(s *source, l diskdump.Layout, level DumpLevel) ([]byte, error) {
	b := s.blockSize()
	sub := make([]byte, b)
	ksub := KdumpSubHeader{MaxMapnr64: s.maxPFN(), DumpLevel: int32(level.Makedumpfile())}
	subSize := kdumpSubHeader64Size
	if !l.Is64 {
		subSize = kdumpSubHeader32Size
	}
	info := vmcoreinfoText(s, b-subSize)
	if subSize+len(info) <= b {
		ksub.OffsetVmcoreinfo, ksub.SizeVmcoreinfo = uint64(b+subSize), uint64(len(info))
		copy(sub[subSize:], info)
		ksub.PhysBase = physBase(info) // vmcoreinfo.go
	}
	if err := ksub.Encode(sub, l); err != nil {
		return nil, err
	}
	return sub, nil
}
