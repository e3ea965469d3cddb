package vmcore

import (
	"fmt"
	"io"

	"github.com/dumpkit/dumpkit/internal/zero"
)

// flattenedFirstRecord is the size of the first record FlattenFile writes.
const flattenedFirstRecord = 4096

// FlattenFile writes the vmcore file held in the first size bytes of r to w
// as a complete flattened stream and returns the number of records written.
// The file goes out front to back (doc/FLATTENED.md §4 rules 5 and 6): the
// vmcore's header first, where `crash --osrelease` looks for the
// VMCOREINFO, then the rest in ascending order, so a capture that dies
// part-way leaves a stream whose arrived part Unflatten can use. Stretches
// of zeros are left out (they come back as holes); the file's last byte is
// always written so that the rebuilt file has its length.
func FlattenFile(w io.Writer, r io.ReaderAt, size int64) (int64, error) {
	if size <= 0 {
		return 0, fmt.Errorf("vmcore: flattening a file of %d bytes: %w", size, ErrFlattenedEmpty)
	}
	fw := NewFlattenedWriter(w)
	buf := make([]byte, flattenedMaxRecord)
	// The first 4 KiB (the KDUMP or ELF header) go out as a record of their
	// own, as makedumpfile sends its header: a tear in the next record then
	// cannot take the header with it.
	for off, n := int64(0), int64(flattenedFirstRecord); off < size; off, n = off+n, int64(len(buf)) {
		p := buf[:min(n, size-off)]
		if err := readFlattenedAt(r, p, off); err != nil {
			return fw.Records(), err
		}
		last := off+int64(len(p)) == size
		if !last && zero.Is(p) {
			continue
		}
		if err := writeNonZero(fw, p, off, last); err != nil {
			return fw.Records(), err
		}
	}
	if err := fw.Close(); err != nil {
		return fw.Records(), err
	}
	return fw.Records(), nil
}

// writeNonZero writes p, found at off, as records, leaving out its
// all-zero 4 KiB pieces except the very last byte of the file (last).
func writeNonZero(fw *FlattenedWriter, p []byte, off int64, last bool) error {
	const piece = 4096
	start := -1 // start of the run of non-zero pieces being collected
	for i := 0; i < len(p); i += piece {
		q := p[i:min(len(p), i+piece)]
		isZero := zero.Is(q)
		switch {
		case !isZero && start < 0:
			start = i
		case isZero && start >= 0:
			if _, err := fw.WriteAt(p[start:i], off+int64(start)); err != nil {
				return err
			}
			start = -1
		}
	}
	if start >= 0 {
		_, err := fw.WriteAt(p[start:], off+int64(start))
		return err
	}
	if last {
		_, err := fw.WriteAt(p[len(p)-1:], off+int64(len(p)-1))
		return err
	}
	return nil
}
