package vmcore

import (
	"fmt"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/lzo"
)

// Compression is the page compression of a KDUMP vmcore (doc/FORMAT.md
// §10.3): one of the four makedumpfile writes and crash and libkdumpfile
// read.
type Compression int

// Compressions. CompressZlib, the zero value, is the default: the one
// makedumpfile -c writes, which every reader of KDUMP files knows.
const (
	CompressZlib   Compression = iota // zlib stream (makedumpfile -c)
	CompressLZO                       // LZO1X block (makedumpfile -l)
	CompressSnappy                    // snappy block, not framed (makedumpfile -p)
	CompressZstd                      // zstd frame (makedumpfile -z)
)

// KDUMP page_desc.flags of a compressed page, one per compression
// (DUMP_DH_COMPRESSED_*); the header status carries the same bit for the
// compression the file uses. In a DISKDUMP vmcore bit 0x2 means
// MAPPING_ANON instead (PageDescMappingAnon).
const (
	PageDescZlib   = PageDescCompressed // DUMP_DH_COMPRESSED_ZLIB
	PageDescLZO    = 0x2                // DUMP_DH_COMPRESSED_LZO
	PageDescSnappy = 0x4                // DUMP_DH_COMPRESSED_SNAPPY
	PageDescZstd   = 0x20               // DUMP_DH_COMPRESSED_ZSTD

	kdumpCompressedMask = PageDescZlib | PageDescLZO | PageDescSnappy | PageDescZstd
)

var compressionNames = [...]string{CompressZlib: "zlib", CompressLZO: "lzo", CompressSnappy: "snappy", CompressZstd: "zstd"}

var compressionFlags = [...]uint32{CompressZlib: PageDescZlib, CompressLZO: PageDescLZO, CompressSnappy: PageDescSnappy, CompressZstd: PageDescZstd}

func (c Compression) String() string {
	if c.valid() {
		return compressionNames[c]
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

func (c Compression) valid() bool { return c >= 0 && int(c) < len(compressionNames) }

// Flag is the page_desc.flags bit, and the header status bit, of the
// compression in a KDUMP file.
func (c Compression) Flag() uint32 {
	if c.valid() {
		return compressionFlags[c]
	}
	return 0
}

// ParseCompression maps "zlib", "lzo", "snappy" or "zstd" (case
// insensitive) to a Compression.
func ParseCompression(s string) (Compression, error) {
	for i, n := range compressionNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Compression(i), nil
		}
	}
	return CompressZlib, fmt.Errorf("diskdump: unknown KDUMP compression %q (want zlib, lzo, snappy or zstd): %w", s, diskdump.ErrUnsupportedVersion)
}

// compressor compresses one page into dst[len(dst):cap(dst)] and returns
// dst extended by the result; ok is false when the result does not fit.
// Each goroutine has its own.
type compressor interface {
	compressTo(dst, src []byte) (out []byte, ok bool)
}

func newCompressor(c Compression, b int) compressor {
	switch c {
	case CompressLZO:
		return &lzoCompressor{scratch: make([]byte, 0, b+b/255+64)}
	case CompressSnappy:
		return &snappyCompressor{scratch: make([]byte, s2.MaxEncodedLen(b))}
	case CompressZstd:
		return newZstdCompressor(b)
	}
	return newZlibCompressor()
}

// appendFit appends p to dst if it fits in dst's capacity.
func appendFit(dst, p []byte) ([]byte, bool) {
	if len(p) > cap(dst)-len(dst) {
		return nil, false
	}
	return append(dst, p...), true
}

type lzoCompressor struct {
	c       lzo.Compressor
	scratch []byte // room for the worst case, so that nothing is allocated
}

func (l *lzoCompressor) compressTo(dst, src []byte) ([]byte, bool) {
	out, err := l.c.Compress(l.scratch[:0], src)
	if err != nil {
		return nil, false
	}
	return appendFit(dst, out)
}

type snappyCompressor struct {
	scratch []byte // s2.MaxEncodedLen of a page
}

// compressTo writes the snappy block format, which makedumpfile's
// snappy_compress writes and crash and libkdumpfile read; s2.EncodeSnappy
// writes only standard snappy, none of s2's extensions.
func (s *snappyCompressor) compressTo(dst, src []byte) ([]byte, bool) {
	if s2.MaxEncodedLen(len(src)) > len(s.scratch) {
		return nil, false
	}
	return appendFit(dst, s2.EncodeSnappy(s.scratch, src))
}

// zstdLevel is the zstd level of the KDUMP writer: the fastest, since a
// compressed vmcore must not take longer to write than an uncompressed
// one.
const zstdLevel = zstd.SpeedFastest

type zstdCompressor struct {
	enc     *zstd.Encoder
	scratch []byte
}

func newZstdCompressor(b int) *zstdCompressor {
	// NewWriter fails only for invalid options.
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstdLevel), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(max(zstd.MinWindowSize, b)))
	// ZSTD_COMPRESSBOUND of a page: room for any frame of it.
	return &zstdCompressor{enc: enc, scratch: make([]byte, 0, b+b>>8+(128<<10-b)>>11+64)}
}

func (z *zstdCompressor) compressTo(dst, src []byte) ([]byte, bool) {
	return appendFit(dst, z.enc.EncodeAll(src, z.scratch[:0]))
}

// pageDecoder decompresses the pages of a KDUMP or DISKDUMP vmcore; one
// per File.
type pageDecoder struct {
	zstd *zstd.Decoder // made on first use
}

// decode decompresses src, stored with page_desc.flags method (one bit of
// kdumpCompressedMask), into exactly len(dst) bytes. Like crash, it takes
// the first known method of zlib, LZO, snappy and zstd. Errors wrap
// diskdump.ErrCorrupt.
func (d *pageDecoder) decode(dst, src []byte, flags uint32) error {
	switch {
	case flags&PageDescZlib != 0:
		return diskdump.Inflate(dst, src)
	case flags&PageDescLZO != 0:
		n, err := lzo.Decompress(dst, src)
		if err != nil {
			return fmt.Errorf("diskdump: LZO page: %w: %w", err, diskdump.ErrCorrupt)
		}
		return checkLen("LZO", n, len(dst))
	case flags&PageDescSnappy != 0:
		return decodeSnappy(dst, src)
	case flags&PageDescZstd != 0:
		return d.decodeZstd(dst, src)
	}
	return fmt.Errorf("diskdump: page_desc flags 0x%x name no known compression: %w", flags, diskdump.ErrUnsupportedVersion)
}

func checkLen(method string, n, want int) error {
	if n != want {
		return fmt.Errorf("diskdump: %s page decompresses to %d bytes, not %d: %w", method, n, want, diskdump.ErrCorrupt)
	}
	return nil
}

// decodeSnappy decodes a standard snappy block: DecodeStrict rejects s2's
// extensions, as the C reference decoder does.
func decodeSnappy(dst, src []byte) error {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return fmt.Errorf("diskdump: snappy page: %w: %w", err, diskdump.ErrCorrupt)
	}
	if err := checkLen("snappy", n, len(dst)); err != nil {
		return err
	}
	if _, err := snappy.DecodeStrict(dst, src); err != nil {
		return fmt.Errorf("diskdump: snappy page: %w: %w", err, diskdump.ErrCorrupt)
	}
	return nil
}

func (d *pageDecoder) decodeZstd(dst, src []byte) error {
	if d.zstd == nil {
		// The output is bounded by the page: a frame that declares or
		// produces more fails without allocating it.
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(len(dst))), zstd.WithDecoderMaxWindow(max(zstd.MinWindowSize, uint64(len(dst)))))
		if err != nil {
			return fmt.Errorf("diskdump: zstd decoder: %w", err)
		}
		d.zstd = dec
	}
	out, err := d.zstd.DecodeAll(src, dst[:0])
	if err != nil {
		return fmt.Errorf("diskdump: zstd page: %w: %w", err, diskdump.ErrCorrupt)
	}
	if err := checkLen("zstd", len(out), len(dst)); err != nil {
		return err
	}
	if &out[0] != &dst[0] { // cannot happen with the memory bound; never return a page that is not in dst
		copy(dst, out)
	}
	return nil
}
