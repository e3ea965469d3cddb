package diskdump

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"sync"
)

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
