package diskdump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
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

// encodePageRecord is the inverse of decodePageRecord.
func encodePageRecord(b []byte, o binary.ByteOrder, r pageRecord) {
	PutRecordHeader(b, o, r.pageFlags, r.size, r.flags)
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

// Page is one page recovered from a dump partition. The Page and its Data
// handed out by Partition.Pages are reused: they are valid only until the
// next step of the iteration (copy what must outlive it).
type Page struct {
	PFN        uint64
	Off        int64  // byte offset of the data on the partition
	Data       []byte // as stored: raw page (len B) or zlib stream; valid until the next step of the iteration
	Compressed bool   // data is a zlib stream (record flag bit0)
	PageFlags  uint64 // record page_flags (0 for raw dumps)
	Flags      uint32 // record flags (bit0 COMPRESSED, bit1 MAPPING_ANON); 0 for raw dumps

	blockSize int // page size of the dump; 0 for a Page built by the caller
}

// PageSize is the size of the page once decompressed: the dump's block
// size for pages from Partition.Pages.
func (pg *Page) PageSize() int { return pg.blockSize }

// Decompress returns the B-byte page, reusing dst's storage when it is large
// enough. Raw pages are copied. A zlib stream must inflate to exactly B
// bytes with a valid Adler-32 trailer; anything else is a *PageError
// wrapping ErrCorrupt. B is the dump's block size; for a Page the caller
// built itself it is len(dst) if non-zero, else len(Data) for raw pages and
// 4096 for compressed ones. Decompress is safe for concurrent use on
// distinct Pages (copies of a yielded Page with their own Data).
func (pg *Page) Decompress(dst []byte) ([]byte, error) {
	bs := pg.blockSize
	if bs <= 0 {
		switch {
		case len(dst) > 0:
			bs = len(dst)
		case !pg.Compressed:
			bs = len(pg.Data)
		default:
			bs = 4096
		}
	}
	if cap(dst) < bs {
		dst = make([]byte, bs)
	}
	dst = dst[:bs]
	if !pg.Compressed {
		if len(pg.Data) != bs {
			return nil, &PageError{PFN: pg.PFN, Off: pg.Off, Err: fmt.Errorf("diskdump: raw page of %d bytes, page size is %d: %w", len(pg.Data), bs, ErrCorrupt)}
		}
		copy(dst, pg.Data)
		return dst, nil
	}
	if err := Inflate(dst, pg.Data); err != nil {
		return nil, &PageError{PFN: pg.PFN, Off: pg.Off, Err: err}
	}
	return dst, nil
}

// inflater is a reusable zlib decoder: the RFC 1950 framing is handled here
// so that the flate reader (with its 32 KiB window) and the input reader
// are recycled without any allocation per page.
type inflater struct {
	src bytes.Reader
	fr  io.ReadCloser
	one [1]byte
}

var inflaters = sync.Pool{New: func() any {
	z := new(inflater)
	z.fr = flate.NewReader(&z.src)
	return z
}}

// Inflate inflates the zlib stream of a compressed record into dst, which
// must come out exactly full with a valid Adler-32 trailer; anything else is
// an error wrapping ErrCorrupt.
func Inflate(dst, src []byte) error {
	_, err := inflate(dst, src)
	return err
}

// inflateExact is inflatePage for a stream that must also end exactly at
// the end of src, as the kernel's records do (size is deflate's output
// length): resynchronisation accepts a candidate record only then.
func inflateExact(dst, src []byte) bool {
	rest, err := inflate(dst, src)
	return err == nil && rest == 0
}

// inflate is inflatePage that also returns the number of bytes of src
// left after the Adler-32 trailer.
func inflate(dst, src []byte) (int, error) {
	if !zlibHeaderOK(src) {
		return 0, fmt.Errorf("diskdump: bad zlib header: %w", ErrCorrupt)
	}
	z := inflaters.Get().(*inflater)
	defer inflaters.Put(z)
	z.src.Reset(src[2:])
	if err := z.fr.(flate.Resetter).Reset(&z.src, nil); err != nil {
		return 0, fmt.Errorf("diskdump: zlib: %w: %w", ErrCorrupt, err)
	}
	if _, err := io.ReadFull(z.fr, dst); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("diskdump: zlib stream inflates to less than %d bytes: %w", len(dst), ErrCorrupt)
		}
		return 0, fmt.Errorf("diskdump: zlib: %w: %w", ErrCorrupt, err)
	}
	// The stream must end here: one more read has to report EOF.
	if n, err := z.fr.Read(z.one[:]); n != 0 || err != io.EOF {
		if n != 0 || err == nil {
			return 0, fmt.Errorf("diskdump: zlib stream inflates to more than %d bytes: %w", len(dst), ErrCorrupt)
		}
		return 0, fmt.Errorf("diskdump: zlib: %w: %w", ErrCorrupt, err)
	}
	// flate reads its input byte by byte from a bytes.Reader, so what is
	// left is exactly the Adler-32 trailer (big-endian, RFC 1950).
	var sum [4]byte
	if n, _ := z.src.Read(sum[:]); n != 4 {
		return 0, fmt.Errorf("diskdump: zlib stream lacks its Adler-32 trailer: %w", ErrCorrupt)
	}
	if binary.BigEndian.Uint32(sum[:]) != adler32.Checksum(dst) {
		return 0, fmt.Errorf("diskdump: zlib Adler-32 mismatch: %w", ErrCorrupt)
	}
	return z.src.Len(), nil
}

// LossReason says why a page the dump should hold was not recovered.
type LossReason int

// Reasons for lost pages.
const (
	// LostNotWritten: the data lies at or beyond written_blocks; the kernel
	// stopped (partition full, interrupted, strict dump on a small device)
	// before writing it.
	LostNotWritten LossReason = iota
	// LostTruncated: the data lies beyond the end of the device or image
	// although the header says it was written.
	LostTruncated
	// LostUnflushed: IN_PROGRESS dump, pages written after the last flush
	// of the dumpable bitmap. Their bits are still zero on disk, so their
	// PFNs are unknown and they are dropped (PFN NoPFN).
	LostUnflushed
	// LostNeverWritten: the data block still carries the format signature
	// of its block number; the kernel never wrote it.
	LostNeverWritten
	// LostCorrupt: the record or page data is corrupt.
	LostCorrupt
	// LostDesync: a corrupt or unreadable record header left the position
	// of the next record unknown. The pages between it and the record start
	// found by resynchronisation are lost; when the records after that
	// point cannot be attributed (the dump is not final, or its end or the
	// record count does not check out) every page after the damage is.
	LostDesync
	// LostIOError: the device failed to read the data.
	LostIOError
	numLossReasons
)

var lossNames = [...]string{
	LostNotWritten:   "not written (beyond written_blocks)",
	LostTruncated:    "beyond the end of the device",
	LostUnflushed:    "written after the last dumpable-bitmap flush (PFN unknown)",
	LostNeverWritten: "never written (block still has its format signature)",
	LostCorrupt:      "corrupt record",
	LostDesync:       "record stream unreadable after a corrupt record",
	LostIOError:      "read error",
}

func (r LossReason) String() string {
	if r >= 0 && r < numLossReasons {
		return lossNames[r]
	}
	return fmt.Sprintf("LossReason(%d)", int(r))
}

// LostError is the Err of every *PageError that Partition.Pages yields: the
// page at PageError.PFN and, for runs, the Pages-1 pages that follow it in
// the iteration order were lost for Reason. Err is the cause when there is
// one (ErrCorrupt-wrapping detail, ErrTruncated, a read error).
type LostError struct {
	Reason LossReason
	Pages  uint64
	Err    error
}

func (e *LostError) Error() string {
	s := fmt.Sprintf("diskdump: %d page(s) lost: %s", e.Pages, e.Reason)
	if e.Err != nil {
		s += ": " + trimPkg(e.Err.Error())
	}
	return s
}

// Unwrap returns the cause.
func (e *LostError) Unwrap() error { return e.Err }
