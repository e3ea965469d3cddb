package diskdump

import (
	"io"
)

// recordStream is a window of the compressed data area in the read
// buffer: bytes [start, end) of the device are in buf[:end-start].
type recordStream struct {
	r          io.ReaderAt
	buf        []byte
	bs         int64
	start, end int64
	limit      int64 // never read at or beyond this offset
	keep       int64 // if >= 0, ensure keeps the bytes from keep on (resync look-ahead)
}

// ensure makes bytes [pos, pos+n) available; pos+n must not exceed limit.
// The window only moves forward: data before pos (before keep while a
// resync candidate is checked) is dropped; asking for dropped data reads
// it again.
func (s *recordStream) ensure(pos, n int64) error {
	if pos >= s.start && pos+n <= s.end {
		return nil
	}
	from := pos
	if s.keep >= 0 && s.keep < pos && pos+n-s.keep <= int64(len(s.buf)) {
		from = s.keep
	}
	if from >= s.start && from < s.end {
		copy(s.buf, s.buf[from-s.start:s.end-s.start])
		s.start = from
	} else {
		s.start, s.end = from, from
	}
	// Fill the buffer up to a block boundary, so that reads stay aligned.
	to := (s.start + int64(len(s.buf))) / s.bs * s.bs
	if to < pos+n {
		to = s.start + int64(len(s.buf))
	}
	to = min(to, s.limit)
	if err := ReadFull(s.r, s.buf[s.end-s.start:to-s.start], s.end); err == nil {
		s.end = to
		return nil
	}
	// Something in the chunk is unreadable (a bad sector): read only the
	// blocks needed, one by one, so that the damage costs as little of
	// the stream as possible. On failure s.end is in the bad block.
	need := min((pos+n+s.bs-1)/s.bs*s.bs, s.limit)
	for off := s.end; off < need; {
		next := min((off/s.bs+1)*s.bs, need)
		if err := ReadFull(s.r, s.buf[off-s.start:next-s.start], off); err != nil {
			s.end = off
			return err
		}
		off = next
		s.end = off
	}
	return nil
}

func (s *recordStream) bytes(pos, n int64) []byte { return s.buf[pos-s.start : pos+n-s.start] }
