package vmcore

import (
	"errors"

	kzlib "github.com/klauspost/compress/zlib"

	"github.com/dumpkit/dumpkit/internal/zero"
)

// fixedBuffer is an io.Writer into a fixed slice that fails when full.
type fixedBuffer struct {
	b []byte
}

var errBufferFull = errors.New("diskdump: buffer full")

func (f *fixedBuffer) Write(p []byte) (int, error) {
	if len(f.b)+len(p) > cap(f.b) {
		return 0, errBufferFull
	}
	f.b = append(f.b, p...)
	return len(p), nil
}

// kdumpLevel is the deflate level of the KDUMP writer, with
// github.com/klauspost/compress (its levels 1-6 are its own fast
// encoders, not zlib's). [REC] Level 5, not the kernel's and
// makedumpfile's 1. On the non-zero pages of the synthetic machine
// (16 MiB, seed 7, 2825 pages; instructions per page from callgrind,
// size against C zlib level 1, which makedumpfile uses):
//
//	level                   instr/page  size
//	C zlib 1 (Python)       330k        3666982 bytes
//	compress/flate 1        460k        +1.7%
//	klauspost 1             179k        +5.0%
//	klauspost 3             210k        +1.4%
//	klauspost 4             222k        +0.3%
//	klauspost 5             249k        -1.0%
//	klauspost 6             275k        -2.6%
//
// Level 5 is the fastest level whose file is not larger than
// makedumpfile's (issue 8, benchmark 3: 0.981 of its size for 1 GiB).
const kdumpLevel = 5

type zlibCompressor struct {
	zw   *kzlib.Writer
	sink fixedBuffer // where zw writes, a window of the caller's buffer
}

func newZlibCompressor() *zlibCompressor {
	// NewWriterLevel fails only for an invalid level.
	zw, _ := kzlib.NewWriterLevel(nil, kdumpLevel)
	return &zlibCompressor{zw: zw}
}

func (z *zlibCompressor) compressTo(dst, src []byte) (out []byte, ok bool) {
	z.sink.b = dst
	defer func() { z.sink.b = nil }() // keep no alias of dst
	z.zw.Reset(&z.sink)
	if _, err := z.zw.Write(src); err != nil {
		return nil, false
	}
	if err := z.zw.Close(); err != nil {
		return nil, false
	}
	return z.sink.b, true
}

// pageCodec compresses pages with reused state, in one of the KDUMP
// compressions; one per goroutine.
type pageCodec struct {
	b       int
	comp    compressor
	flag    uint32 // page_desc.flags of a page it compressed
	scratch []byte // output of compressPage and compress
	// zero is the compressed zero page, made once: zero pages are common
	// (a third of a freshly booted machine) and cost the compressor as
	// much as any other page. It is the same bytes the compressor would
	// produce.
	zero []byte
	page []byte // scratch page, for records inflated to be recompressed
}

func newPageCodec(b int, c Compression) *pageCodec {
	return &pageCodec{b: b, comp: newCompressor(c, b), flag: c.Flag()}
}

// compressPage compresses a page into a buffer of the codec; ok is false
// when the result would not be smaller than the page (it is then stored
// raw). The result is valid until the next call.
func (c *pageCodec) compressPage(src []byte) (out []byte, ok bool) {
	if len(src) == c.b && zero.Is(src) {
		return c.zeroStream()
	}
	return c.compress(src)
}

// zeroStream is the cached compressed zero page (never modified).
func (c *pageCodec) zeroStream() ([]byte, bool) {
	if c.zero == nil {
		out, ok := c.compressTo(make([]byte, 0, c.b-1), zero.Page(c.b))
		if !ok {
			return nil, false
		}
		c.zero = out
	}
	return c.zero, true
}

// compress compresses src into the codec's scratch buffer, at most a
// page minus one byte.
func (c *pageCodec) compress(src []byte) (out []byte, ok bool) {
	if c.scratch == nil {
		c.scratch = make([]byte, 0, c.b-1)
	}
	return c.compressTo(c.scratch[:0], src)
}

// compressTo compresses src into dst[len(dst):cap(dst)] and returns dst
// extended by the result; ok is false when the result does not fit in
// the capacity (the caller gives it less than a page).
func (c *pageCodec) compressTo(dst, src []byte) (out []byte, ok bool) {
	return c.comp.compressTo(dst, src)
}

// scratchPage is a page of the codec's own.
func (c *pageCodec) scratchPage() []byte {
	if c.page == nil {
		c.page = make([]byte, c.b)
	}
	return c.page
}

// zeroCandidate is the largest zlib record inflated to look for a zero
// page: a zero page compresses to about 1/100 of its size (41 bytes at
// 4 KiB), so larger records are not zero pages from any sane compressor
// and are copied without decompression.
func zeroCandidate(n, b int) bool { return n <= b/32 }
