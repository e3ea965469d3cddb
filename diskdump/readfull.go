package diskdump

import (
	"errors"
	"io"
)

// ReadFull reads exactly len(b) bytes at off. A ReaderAt may return io.EOF
// with a full read, which is success; a short read is io.ErrUnexpectedEOF,
// and other errors are returned as they are.
func ReadFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readSentinel maps a short read to ErrTruncated and keeps other errors.
func readSentinel(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ErrTruncated
	}
	return err
}
