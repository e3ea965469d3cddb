package vmcore

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// FlattenedRecord is one record of a flattened stream: Size bytes found in the
// stream at DataOff() that belong at Off in the rearranged vmcore file
// (doc/FLATTENED.md §2).
type FlattenedRecord struct {
	StreamOff int64 // offset of the record header in the stream
	Off       int64 // destination offset in the rearranged file
	Size      int64 // number of data bytes
}

// DataOff is the offset in the stream of the record's first data byte.
func (r FlattenedRecord) DataOff() int64 { return r.StreamOff + FlattenedHeaderSize }

// End is the destination offset just past the record's data.
func (r FlattenedRecord) End() int64 { return r.Off + r.Size }

// FlattenedStop says where and how the records of a stream stopped.
type FlattenedStop struct {
	// End is FlattenedComplete at the end marker, else why the stream is torn.
	End FlattenedEnd
	// Off is the stream offset of the end marker, or of the header where the
	// stream tore.
	Off int64
	// Dropped is, on a torn stream, the last plausible record before the
	// tear (Size 0 when there is none). It is not handed out: when a capture
	// dies in the middle of a record, the device keeps its old contents after
	// the bytes that arrived, so the record's data may end in those old bytes
	// and only the garbage header after it shows that. Nothing before it is
	// suspect, because each handed-out record is followed by a plausible
	// header.
	Dropped FlattenedRecord
}

// Torn reports whether the stream ended without its end marker.
func (s FlattenedStop) Torn() bool { return s.End != FlattenedComplete }

// DefaultFlattenedMaxFileSize is the largest rearranged vmcore accepted from a
// stream of streamSize bytes when the caller knows no better bound: 64 times
// the stream, at least 1 GiB. Writers that leave zero pages as holes make files
// larger than their stream, so the bound is generous; it exists so that a
// garbage header after a torn stream cannot make a terabyte-sized sparse file
// (doc/FLATTENED.md §7). A caller that has the vmcore's own header (KDUMP
// max_mapnr and block size, ELF program headers) should pass a tighter one.
func DefaultFlattenedMaxFileSize(streamSize int64) int64 {
	const floor = 1 << 30
	if streamSize <= 0 {
		return floor
	}
	if streamSize > math.MaxInt64/64 {
		return math.MaxInt64
	}
	return max(64*streamSize, floor)
}

// FlattenedReader walks the records of a flattened stream held by an
// io.ReaderAt in stream order. Every header is checked against the stream's
// size and the largest vmcore size accepted before the record is handed out.
// The reader reads each header once and no data (the caller reads a
// record's data at DataOff), allocates nothing, and stops at the end of the
// stream instead of waiting for more.
//
// Use it like bufio.Scanner:
//
//	for fr.Next() {
//		rec := fr.Record()
//		…
//	}
//	if err := fr.Err(); err != nil { … } // reading the device failed
//	stop := fr.Stop()                     // complete, or torn and where
type FlattenedReader struct {
	r           io.ReaderAt
	size        int64 // bytes of the stream
	maxFileSize int64 // largest rearranged file accepted

	started  bool
	havePeek bool            // peekRec holds a plausible record not handed out yet
	peekRec  FlattenedRecord // whose successor header is read by the next Next
	rec      FlattenedRecord // the record handed out by the last Next
	stop     FlattenedStop
	err      error
	hdr      [FlattenedHeaderSize]byte
}

// NewFlattenedReader checks the start block of the stream held in the first
// size bytes of r and returns a reader positioned before its first record.
// maxFileSize bounds the rearranged file (offset+size of every record); zero
// or less means DefaultFlattenedMaxFileSize(size). The error is a
// *FlattenedError wrapping ErrNotFlattened or ErrFlattenedVersion, or the
// error of r.
func NewFlattenedReader(r io.ReaderAt, size, maxFileSize int64) (*FlattenedReader, error) {
	if maxFileSize <= 0 {
		maxFileSize = DefaultFlattenedMaxFileSize(size)
	}
	var start [32]byte
	n := min(int64(len(start)), max(size, 0))
	if err := readFlattenedAt(r, start[:n], 0); err != nil {
		return nil, err
	}
	if err := checkFlattenedStart(start[:n]); err != nil {
		return nil, err
	}
	if err := checkFlattenedVersion(start[:]); err != nil {
		return nil, err
	}
	if size < FlattenedStartSize {
		return nil, &FlattenedError{Off: size, Field: "start block",
			Msg: fmt.Sprintf("stream of %d bytes is shorter than the %d-byte start block", size, FlattenedStartSize), Err: ErrNotFlattened}
	}
	return &FlattenedReader{r: r, size: size, maxFileSize: maxFileSize}, nil
}

// Next advances to the next record, which Record then returns. It returns
// false at the end marker, where the stream is torn, or when reading fails;
// Stop and Err then say which. A record is handed out only once the header
// after it has been found plausible (see FlattenedStop.Dropped).
func (fr *FlattenedReader) Next() bool {
	if !fr.started {
		fr.started = true
		fr.havePeek = fr.peek(FlattenedStartSize, &fr.peekRec)
	}
	if !fr.havePeek {
		return false
	}
	cur := fr.peekRec
	fr.havePeek = fr.peek(cur.DataOff()+cur.Size, &fr.peekRec)
	if !fr.havePeek && fr.err == nil && fr.stop.Torn() {
		fr.stop.Dropped = cur
		return false
	}
	if fr.err != nil {
		return false
	}
	fr.rec = cur
	return true
}

// Record returns the record found by the last successful Next.
func (fr *FlattenedReader) Record() FlattenedRecord { return fr.rec }

// Stop says how the stream ended; it is meaningful once Next returned false
// and Err is nil.
func (fr *FlattenedReader) Stop() FlattenedStop { return fr.stop }

// Err returns the error of the underlying io.ReaderAt that stopped Next, if
// any. A torn stream is not an error: see Stop.
func (fr *FlattenedReader) Err() error { return fr.err }

// peek decodes the header at stream offset off into *rec and reports
// whether it is a plausible record. Otherwise it records in fr.stop how the
// stream ended there, or in fr.err why it could not be read.
func (fr *FlattenedReader) peek(off int64, rec *FlattenedRecord) bool {
	end, r := fr.classify(off)
	switch end {
	case flattenedPlausible:
		*rec = r
		return true
	case flattenedReadFailed:
	default:
		fr.stop = FlattenedStop{End: end, Off: off}
	}
	return false
}

// Results of classify besides the FlattenedEnd values.
const (
	flattenedPlausible  FlattenedEnd = -1 // a record header that passes every check
	flattenedReadFailed FlattenedEnd = -2 // fr.err is set
)

// classify reads the header at stream offset off and checks it against the
// stream and the size limit (doc/FLATTENED.md §3, §7).
func (fr *FlattenedReader) classify(off int64) (FlattenedEnd, FlattenedRecord) {
	left := fr.size - off
	switch {
	case left <= 0:
		return FlattenedNoMarker, FlattenedRecord{}
	case left < FlattenedHeaderSize:
		return FlattenedCutHeader, FlattenedRecord{}
	}
	if err := readFlattenedAt(fr.r, fr.hdr[:], off); err != nil {
		fr.err = err
		return flattenedReadFailed, FlattenedRecord{}
	}
	h := decodeFlattenedHeader(fr.hdr[:])
	rec := FlattenedRecord{StreamOff: off, Off: h.Offset, Size: h.BufSize}
	switch {
	case h == flattenedEndMarker:
		return FlattenedComplete, rec
	case rec.Off < 0 || rec.Size <= 0:
		return FlattenedBadHeader, rec
	case rec.Off > fr.maxFileSize-rec.Size:
		return FlattenedBeyondLimit, rec
	case rec.Size > left-FlattenedHeaderSize:
		return FlattenedCutData, rec
	}
	return flattenedPlausible, rec
}

// readFlattenedAt fills p from r at off. A short read inside the stream's
// declared size means the device shrank or failed, so it is an error
// (io.ErrUnexpectedEOF), not a tear.
func readFlattenedAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("vmcore: flattened stream: reading %d bytes at offset %#x: %w", len(p), off, err)
}
