package diskdump

import (
	"encoding/binary"
	"fmt"
)

// Record flag bits of the compressed data area (struct dump_page.flags,
// doc/FORMAT.md §1, §6.3).
const (
	PageCompressed  uint32 = 0x1 // data is a zlib stream
	PageMappingAnon uint32 = 0x2 // the page is anonymous
)

// PageRecordSize is the size of the record header that precedes each page
// in the compressed data area (doc/FORMAT.md §6.3).
const PageRecordSize = 16

// rawPageRecord mirrors the kernel's struct dump_page, the header of one
// record of the compressed data area. It is decoded by hand in the byte
// order of the dump (this is the hot path), but documents the layout.
type rawPageRecord struct {
	PageFlags uint64 // 0 page_flags: struct page flags, zero-extended on 32-bit
	Size      uint32 // 8 size: bytes of data that follow
	Flags     uint32 // 12 flags: PageCompressed | PageMappingAnon
}

// pageRecord is a decoded record header.
type pageRecord struct {
	pageFlags uint64
	size      uint32
	flags     uint32
}

func decodePageRecord(b []byte, o binary.ByteOrder) pageRecord {
	_ = b[PageRecordSize-1]
	return pageRecord{pageFlags: o.Uint64(b[0:]), size: o.Uint32(b[8:]), flags: o.Uint32(b[12:])}
}

// PutRecordHeader encodes the header of one record of the compressed data
// area (struct dump_page, doc/FORMAT.md §6.3) into b[:PageRecordSize] in
// the dump's byte order: the page's flags, the size of the data that
// follows, and PageCompressed | PageMappingAnon.
func PutRecordHeader(b []byte, o binary.ByteOrder, pageFlags uint64, size, flags uint32) {
	_ = b[PageRecordSize-1]
	o.PutUint64(b[0:], pageFlags)
	o.PutUint32(b[8:], size)
	o.PutUint32(b[12:], flags)
}

// sizeKnown reports whether the record's size is plausible for block size
// bs, so that the next record starts right after its data. A record whose
// size is 0 or larger than a page leaves the stream position unknown.
func (r pageRecord) sizeKnown(bs int) bool { return r.size != 0 && uint64(r.size) <= uint64(bs) }

// plausible reports whether the header alone can be a record the kernel
// wrote: no flag bits beyond the two known ones, and a size that matches
// the COMPRESSED bit (exactly one block for a raw page, 1..B-1 bytes for a
// zlib stream). Resynchronisation uses it to find record starts.
func (r pageRecord) plausible(bs int) bool {
	if r.flags&^(PageCompressed|PageMappingAnon) != 0 {
		return false
	}
	if r.flags&PageCompressed == 0 {
		return uint64(r.size) == uint64(bs)
	}
	return r.size != 0 && uint64(r.size) < uint64(bs)
}

// check validates a record whose size is plausible: a raw page is exactly
// one block, a zlib stream is shorter than a block (the kernel stores pages
// that do not compress below PAGE_SIZE raw) and starts with a zlib header,
// and no flag bits beyond the two known ones are set.
func (r pageRecord) check(data []byte, bs int) error {
	if r.flags&^(PageCompressed|PageMappingAnon) != 0 {
		return fmt.Errorf("diskdump: record flags 0x%x has unknown bits: %w", r.flags, ErrCorrupt)
	}
	if r.flags&PageCompressed == 0 {
		if int(r.size) != bs {
			return fmt.Errorf("diskdump: raw record of %d bytes, block size is %d: %w", r.size, bs, ErrCorrupt)
		}
		return nil
	}
	if int(r.size) >= bs {
		return fmt.Errorf("diskdump: compressed record of %d bytes is not shorter than a block (%d): %w", r.size, bs, ErrCorrupt)
	}
	if !zlibHeaderOK(data) {
		return fmt.Errorf("diskdump: compressed record does not start with a zlib header: %w", ErrCorrupt)
	}
	return nil
}

// zlibHeaderOK checks the RFC 1950 header: deflate, window at most 32 KiB,
// no preset dictionary, and the FCHECK bits.
func zlibHeaderOK(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	cmf, flg := b[0], b[1]
	return cmf&0x0f == 8 && cmf>>4 <= 7 && flg&0x20 == 0 && (uint16(cmf)<<8|uint16(flg))%31 == 0
}
