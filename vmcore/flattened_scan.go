package vmcore

import (
	"io"

	"github.com/dumpkit/dumpkit/diskdump"
)

// FlattenedSummary is what a flattened stream holds, found by reading its
// record headers and the vmcore header it carries, without rebuilding the
// file.
type FlattenedSummary struct {
	// Stop says how the stream ends: at its end marker, or torn.
	Stop FlattenedStop
	// Records is the number of records before the end (or the tear), and
	// DataBytes the sum of their sizes: an upper bound of the disk space
	// the rebuilt file takes.
	Records   int64
	DataBytes int64
	// FileSize is the size of the rebuilt file: the largest record end.
	FileSize int64
	// StreamSize is the bytes of the stream, end marker included.
	StreamSize int64
	// Format is the vmcore format the first record at offset 0 starts
	// with; FormatAuto when there is none or it is not a vmcore.
	Format Format
	// Header is the KDUMP disk_dump_header that record carries, when it
	// parses; nil otherwise (ELF streams have none).
	Header *diskdump.Header
}

// ScanFlattened reads the record headers of the flattened stream held in the
// first size bytes of r (one read per record, no data but the vmcore
// header) and summarises the stream. The error is a *FlattenedError when r
// holds no flattened stream, or the error of r.
func ScanFlattened(r io.ReaderAt, size int64) (*FlattenedSummary, error) {
	fr, err := NewFlattenedReader(r, size, 0)
	if err != nil {
		return nil, err
	}
	s := &FlattenedSummary{}
	var head *FlattenedRecord
	for fr.Next() {
		rec := fr.Record()
		s.Records++
		s.DataBytes += rec.Size
		s.FileSize = max(s.FileSize, rec.End())
		if rec.Off == 0 && head == nil {
			head = &rec
		}
	}
	if err := fr.Err(); err != nil {
		return nil, err
	}
	s.Stop = fr.Stop()
	s.StreamSize = s.Stop.Off
	if !s.Stop.Torn() {
		s.StreamSize += FlattenedHeaderSize
	}
	if head != nil {
		s.Format, s.Header = flattenedHead(r, *head)
	}
	return s, nil
}

// flattenedHead reads the vmcore header a record at offset 0 carries.
func flattenedHead(r io.ReaderAt, rec FlattenedRecord) (Format, *diskdump.Header) {
	buf := make([]byte, 4096)
	p := buf[:min(rec.Size, int64(len(buf)))]
	if err := readFlattenedAt(r, p, rec.DataOff()); err != nil {
		return FormatAuto, nil
	}
	f := sniffFormat(bytesReaderAt(buf), int64(len(p)))
	if f != FormatKdump && f != FormatDiskdump {
		return f, nil
	}
	h, err := diskdump.ParseHeader(buf, diskdump.HeaderCheck{})
	if err != nil {
		return f, nil
	}
	return f, h
}

// bytesReaderAt reads a byte slice; bytes past its end are io.EOF.
type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
