package vmcore

import (
	"fmt"
	"io"
	"math"
	"sync"
)

// flattenedMaxRecord is the largest record the writer emits; longer writes
// are split. makedumpfile's own records are at most 64 KiB, and
// makedumpfile-R.pl reads each record whole into memory, so the writer stays
// within what every reader has been seen to handle (doc/FLATTENED.md §2, §3).
const flattenedMaxRecord = 64 << 10

// FlattenedWriter writes a flattened stream (doc/FLATTENED.md §4) to an
// io.Writer: each WriteAt becomes one or more records appended to the
// stream, so a vmcore writer that needs an io.WriterAt can write through a
// pipe or straight onto a partition. The records are applied in the order
// written: a later write to the same bytes wins with `makedumpfile -R` and
// makedumpfile-R.pl, but crash's result for overlapping records is undefined,
// so callers should rewrite a region only with the identical offset and
// length, if at all (doc/FLATTENED.md §4 rule 4). Put the vmcore's headers first and keep
// offsets ascending where possible (rules 5, 6).
//
// WriteAt is safe for concurrent use; records are appended whole, one at a
// time. Errors are sticky. Close writes the end marker but does not close the
// underlying writer.
type FlattenedWriter struct {
	mu      sync.Mutex
	w       io.Writer
	started bool
	closed  bool
	err     error
	records int64
	size    int64
	buf     []byte // header + data of one record, so each record is one Write
}

// NewFlattenedWriter returns a writer of a flattened stream on w. The start
// block is written with the first record.
func NewFlattenedWriter(w io.Writer) *FlattenedWriter {
	return &FlattenedWriter{w: w}
}

// WriteAt appends records that place p at offset off of the rearranged file.
// An empty p writes nothing: the format has no zero-length record (doc/FLATTENED.md §4 rule 3).
func (fw *FlattenedWriter) WriteAt(p []byte, off int64) (int, error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.closed {
		return 0, ErrFlattenedClosed
	}
	if fw.err != nil {
		return 0, fw.err
	}
	if off < 0 || int64(len(p)) > math.MaxInt64-off {
		return 0, fmt.Errorf("vmcore: flattened writer: write of %d bytes at offset %d outside the file", len(p), off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := fw.writeStart(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		chunk := p[n:min(len(p), n+flattenedMaxRecord)]
		if err := fw.writeRecord(off+int64(n), chunk); err != nil {
			return n, err
		}
		n += len(chunk)
	}
	fw.size = max(fw.size, off+int64(len(p)))
	return n, nil
}

// writeStart writes the start block before the first record.
func (fw *FlattenedWriter) writeStart() error {
	if fw.started {
		return nil
	}
	fw.started = true
	return fw.write(encodeFlattenedStart())
}

// writeRecord appends one record: its header and data in a single Write.
func (fw *FlattenedWriter) writeRecord(off int64, data []byte) error {
	if fw.buf == nil {
		fw.buf = make([]byte, FlattenedHeaderSize+flattenedMaxRecord)
	}
	rawFlattenedHeader{Offset: off, BufSize: int64(len(data))}.encode(fw.buf)
	n := copy(fw.buf[FlattenedHeaderSize:], data)
	if err := fw.write(fw.buf[:FlattenedHeaderSize+n]); err != nil {
		return err
	}
	fw.records++
	return nil
}

// write passes b to the underlying writer and keeps its first error.
func (fw *FlattenedWriter) write(b []byte) error {
	n, err := fw.w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		fw.err = fmt.Errorf("vmcore: flattened writer: %w", err)
	}
	return fw.err
}

// Close ends the stream with the end marker. It fails with ErrFlattenedEmpty,
// writing nothing, when no record was written (doc/FLATTENED.md §4 rule 2). Calling it again
// returns the first result.
func (fw *FlattenedWriter) Close() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.closed || fw.err != nil {
		return fw.err
	}
	fw.closed = true
	if fw.records == 0 {
		fw.err = ErrFlattenedEmpty
		return fw.err
	}
	var end [FlattenedHeaderSize]byte
	flattenedEndMarker.encode(end[:])
	return fw.write(end[:])
}

// Records is the number of records written so far.
func (fw *FlattenedWriter) Records() int64 {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.records
}

// Size is the size of the rearranged file written so far: the largest
// offset+length of any write.
func (fw *FlattenedWriter) Size() int64 {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.size
}
