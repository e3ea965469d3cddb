package vmcore

import (
	"fmt"
	"io"
)

// flattenedCopyBuf is the size of the buffer Rearrange copies record data
// through, whatever the record sizes.
const flattenedCopyBuf = 256 << 10

// RearrangeOptions tunes Rearrange. The zero value is ready to use.
type RearrangeOptions struct {
	// MaxFileSize bounds the rearranged file: a record ending past it is
	// taken for garbage and ends the stream (FlattenedBeyondLimit). Zero
	// means DefaultFlattenedMaxFileSize of the stream size.
	MaxFileSize int64
	// MaxRanges bounds the coverage set (see FlattenedCoverage); zero means
	// DefaultFlattenedMaxRanges.
	MaxRanges int
	// Progress, when set, is called after each applied record with the
	// stream offset reached and the stream size.
	Progress func(streamOff, streamSize int64)
}

// RearrangeResult describes what Rearrange did.
type RearrangeResult struct {
	FlattenedStop                    // how the stream ended (Torn, End, Off, Dropped)
	Records       int64              // records applied
	Bytes         int64              // data bytes written, overlapping rewrites counted each time
	Size          int64              // largest offset+size applied: the size of the rearranged file
	Coverage      *FlattenedCoverage // the byte ranges of the file that were written
}

// Rearrange applies the records of the flattened stream held in the first
// size bytes of src to dst, in stream order, so a later record overwrites an
// earlier one, as `makedumpfile -R` does (doc/FLATTENED.md §3). dst should be
// empty: for a complete stream it then holds exactly the file makedumpfile
// rebuilds, of result.Size bytes, with unwritten ranges left as holes that
// read as zeros.
//
// A torn stream is not an error: every record before the tear (except the
// dropped one, see FlattenedStop.Dropped) is applied, result.Torn() is true,
// and result.Coverage tells which bytes arrived. The error is a
// *FlattenedError when src holds no flattened stream, or the error of src or
// dst; result then describes the records applied so far.
func Rearrange(dst io.WriterAt, src io.ReaderAt, size int64, opts *RearrangeOptions) (*RearrangeResult, error) {
	if opts == nil {
		opts = &RearrangeOptions{}
	}
	res := &RearrangeResult{Coverage: NewFlattenedCoverage(opts.MaxRanges)}
	fr, err := NewFlattenedReader(src, size, opts.MaxFileSize)
	if err != nil {
		return res, err
	}
	var buf []byte
	for fr.Next() {
		rec := fr.Record()
		// The buffer grows geometrically up to flattenedCopyBuf, so small
		// streams stay cheap and large ones reallocate a few times at most.
		if need := min(flattenedCopyBuf, rec.Size); int64(len(buf)) < need {
			buf = make([]byte, min(flattenedCopyBuf, max(need, 2*int64(len(buf)), 4096)))
		}
		if err := applyFlattenedRecord(dst, src, rec, buf); err != nil {
			return res, err
		}
		res.Records++
		res.Bytes += rec.Size
		res.Size = max(res.Size, rec.End())
		res.Coverage.Add(rec.Off, rec.Size)
		if opts.Progress != nil {
			opts.Progress(rec.DataOff()+rec.Size, size)
		}
	}
	res.FlattenedStop = fr.Stop()
	return res, fr.Err()
}

// applyFlattenedRecord copies the data of rec from the stream to its place in
// dst through buf.
func applyFlattenedRecord(dst io.WriterAt, src io.ReaderAt, rec FlattenedRecord, buf []byte) error {
	for done := int64(0); done < rec.Size; {
		p := buf[:min(int64(len(buf)), rec.Size-done)]
		if err := readFlattenedAt(src, p, rec.DataOff()+done); err != nil {
			return err
		}
		if _, err := dst.WriteAt(p, rec.Off+done); err != nil {
			return fmt.Errorf("vmcore: rearranging flattened record at stream offset %#x: writing %d bytes at %#x: %w",
				rec.StreamOff, len(p), rec.Off+done, err)
		}
		done += int64(len(p))
	}
	return nil
}
