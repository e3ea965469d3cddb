package vmcore

import (
	"errors"
	"fmt"
	"io"

	"github.com/dumpkit/dumpkit/diskdump"
)

// ErrFlattenedNoHeader is returned by Unflatten when a torn stream did not
// carry the vmcore's own header (the KDUMP disk_dump_header, or the ELF file
// and program headers): nothing in what arrived says where a page is.
var ErrFlattenedNoHeader = errors.New("vmcore: torn flattened stream lacks the vmcore header")

// ReadWriterAt is the output of Unflatten: the vmcore file being rebuilt,
// which a torn stream needs to read back to repair.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// UnflattenResult describes the vmcore file Unflatten rebuilt.
type UnflattenResult struct {
	// Rearrange says which records were applied, how the stream ended and
	// which bytes of the file arrived.
	Rearrange *RearrangeResult
	// Format is what the stream holds: FormatKdump, FormatELF,
	// FormatDiskdump, or FormatAuto when the first bytes are none of these.
	Format Format
	// Header is the disk_dump_header of a KDUMP (or DISKDUMP) stream, nil
	// for ELF or when it did not arrive.
	Header *diskdump.Header
	// Size is the length of the vmcore file.
	Size int64
	// Pages is the number of pages the file holds (KDUMP, DISKDUMP: page
	// descriptors; ELF: page frames its PT_LOADs cover). Zero when the
	// layout could not be read.
	Pages uint64
	// Lost is, for a torn KDUMP stream, the number of pages bitmap 2 listed
	// whose descriptor or data did not arrive; they were dropped.
	Lost uint64
	// UnknownFromPFN is, for a torn KDUMP stream whose bitmap 2 did not
	// arrive whole, the first PFN whose bit is unknown; every page from it
	// on is dropped without being counted in Lost (nobody knows whether it
	// was dumped). It equals the header's max_mapnr when bitmap 2 arrived
	// whole.
	UnknownFromPFN uint64
	// HoleBytes is, for a torn ELF stream, the number of bytes inside
	// PT_LOAD data that did not arrive and read as zeros; Holes lists the
	// first maxReportedHoles of them.
	HoleBytes int64
	Holes     []FlattenedRange
	// Incomplete is set for a torn stream: a KDUMP file is then marked
	// incomplete in its header's status (KdumpStatusIncomplete).
	Incomplete bool
}

// Torn reports whether the stream ended without its end marker.
func (r *UnflattenResult) Torn() bool { return r.Rearrange != nil && r.Rearrange.Torn() }

// maxReportedHoles bounds UnflattenResult.Holes.
const maxReportedHoles = 16

// Unflatten rebuilds the vmcore file held as a flattened stream in the first
// size bytes of src (doc/FLATTENED.md §2) into dst, which must be empty.
//
// For a complete stream dst ends up byte for byte what `makedumpfile -R`
// makes of it (see Rearrange); the file is only read, never changed, to
// fill in the result.
//
// A torn stream (doc/FLATTENED.md §7) is repaired so that readers see only
// what arrived. A KDUMP file keeps every page whose page descriptor and data
// arrived; the others are cleared from bitmap 2, the descriptors of the kept
// pages are moved to their new ranks, and the header status gets
// KdumpStatusIncomplete (doc/FORMAT.md §10.3). An ELF file is extended to
// its last PT_LOAD so that what did not arrive reads as zeros, and the
// result lists those holes. Time and memory are bounded by the stream and
// the vmcore's own header, whatever follows the stream on the device.
//
// The error is a *FlattenedError when src holds no flattened stream,
// ErrFlattenedNoHeader when a torn stream lacks the vmcore's header, or an
// error of src or dst. The returned file size is UnflattenResult.Size: an
// output that implements Truncater is set to it; the caller of any other
// output must not assume WriteAt made the file that long.
func Unflatten(dst ReadWriterAt, src io.ReaderAt, size int64, opts *RearrangeOptions) (*UnflattenResult, error) {
	if opts == nil {
		opts = &RearrangeOptions{}
	}
	if opts.MaxFileSize <= 0 {
		o := *opts
		o.MaxFileSize = flattenedKdumpLimit(src, size)
		opts = &o
	}
	rr, err := Rearrange(dst, src, size, opts)
	res := &UnflattenResult{Rearrange: rr, Size: rr.Size}
	if err != nil {
		return res, err
	}
	res.Format = sniffFormat(dst, rr.Size)
	if !rr.Torn() {
		describeComplete(res, dst)
		return res, nil
	}
	res.Incomplete = true
	switch res.Format {
	case FormatKdump:
		err = salvageKdump(res, dst, opts.MaxFileSize)
	case FormatELF:
		err = salvageELF(res, dst, opts.MaxFileSize)
	default:
		err = fmt.Errorf("vmcore: torn flattened stream (%v at stream offset %#x) holds no KDUMP or ELF vmcore: %w",
			rr.End, rr.Off, ErrFlattenedNoHeader)
	}
	if err != nil {
		return res, err
	}
	return res, setFileSize(dst, rr.Size, res.Size)
}

// sniffFormat tells the vmcore format from the first bytes of the file.
func sniffFormat(r io.ReaderAt, size int64) Format {
	var magic [8]byte
	if size < int64(len(magic)) {
		return FormatAuto
	}
	if _, err := r.ReadAt(magic[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return FormatAuto
	}
	switch {
	case string(magic[:4]) == "\x7fELF":
		return FormatELF
	case string(magic[:]) == diskdump.KdumpSignature:
		return FormatKdump
	case string(magic[:]) == diskdump.DumpSignature:
		return FormatDiskdump
	}
	return FormatAuto
}

// describeComplete fills in the header and page count of a complete file,
// read with Open. A file Open refuses is still what makedumpfile rebuilds,
// so that is not an error.
func describeComplete(res *UnflattenResult, r io.ReaderAt) {
	v, err := Open(r, res.Size)
	if err != nil {
		return
	}
	res.Header, res.Pages = v.Header(), v.NumPages()
	if res.Header != nil {
		res.UnknownFromPFN = uint64(res.Header.MaxMapnr)
	}
}

// setFileSize makes the file want bytes long when the repair made it longer
// than the records did (have bytes): through Truncate when dst has it, else
// by writing its last byte, which no record covered.
func setFileSize(dst io.WriterAt, have, want int64) error {
	if want <= have {
		return nil
	}
	if t, ok := dst.(Truncater); ok {
		if err := t.Truncate(want); err != nil {
			return fmt.Errorf("vmcore: extending the rebuilt vmcore to %d bytes: %w", want, err)
		}
		return nil
	}
	if _, err := dst.WriteAt([]byte{0}, want-1); err != nil {
		return fmt.Errorf("vmcore: extending the rebuilt vmcore to %d bytes: %w", want, err)
	}
	return nil
}

// readZeroFilled reads len(p) bytes at off; bytes past the end of the file
// read as zeros, as holes do.
func readZeroFilled(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) || errors.Is(err, io.EOF) {
		clear(p[n:])
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("vmcore: reading the rebuilt vmcore: %d bytes at %#x: %w", len(p), off, err)
}
