// Package lzo compresses and decompresses single blocks in the LZO1X
// format, the one KDUMP vmcores use for pages flagged
// DUMP_DH_COMPRESSED_LZO (doc/FORMAT.md §10.3): liblzo2's
// lzo1x_decompress_safe, and with it crash, libkdumpfile and makedumpfile,
// read what Compress writes, and Decompress reads what lzo1x_1_compress
// writes.
//
// It is written from the description of the format's instructions, not
// from liblzo2 (GPL). Compress is a greedy single-pass matcher with a
// hash table of 4-byte prefixes, like LZO1X-1; it does not produce the same
// bytes as liblzo2, only a stream any LZO1X decoder accepts. Decompress
// bounds every read and write: bad input gives an error, never a panic or
// a write outside dst.
//
// Entry points: Compressor (Compress, MaxCompressedLen) and Decompress.
package lzo

import "errors"

// A stream is a sequence of instructions. Each copies a match (a run of
// earlier output) and then 0 to 3 literals given by its low two bits,
// "S", or copies a run of 4 or more literals:
//
//	0000LLLL           after S=0: 3+L literals (L=0: 18 + 255·zeros + next byte)
//	0000DDSS HHHHHHHH  after S=1..3: 2-byte match at distance (H<<2)+D+1
//	                   after a literal run: 3-byte match at (H<<2)+D+2049
//	0001HLLL [ext] DDDDDDDD DDDDDDSS
//	                   2+L bytes (L=0: 9 + ext) at 16384+(H<<14)+D; D=0, H=0 ends the stream
//	001LLLLL [ext] DDDDDDDD DDDDDDSS
//	                   2+L bytes (L=0: 33 + ext) at D+1 (up to 16384)
//	01LDDDSS HHHHHHHH  3+L bytes at (H<<3)+D+1 (up to 2048)
//	1LLDDDSS HHHHHHHH  5+L bytes at (H<<3)+D+1
//
// A first byte above 17 is a literal run of byte−17 bytes. The distance
// bytes are little endian; "ext" is a length extension, 255 per zero byte
// plus the first non-zero byte.

const (
	m2MaxLen  = 8
	m2MaxDist = 0x0800
	m3MaxLen  = 33 // longest M3 match without a length extension
	m3MaxDist = 0x4000
	m4MaxLen  = 9 // longest M4 match without a length extension
	m4MaxDist = 0xbfff
	m3Marker  = 32
	m4Marker  = 16
	minMatch  = 4 // matches found by the 4-byte hash
)

// MaxBlock is the largest block Compress accepts: positions in the hash
// table are 16 bits.
const MaxBlock = 1 << 16

// MaxCompressedLen is the longest stream Compress writes for a block of n
// bytes: the block as one literal run (n bytes, n/255 + 2 of run length, 3
// of end marker), which Compress writes when its matches would make the
// stream longer.
func MaxCompressedLen(n int) int { return n + n/255 + 16 }

// Compressor compresses blocks with a reused hash table and buffers (about
// 200 KiB). It is not safe for concurrent use.
type Compressor struct {
	// table holds, per hash of 4 bytes, the position of its last
	// occurrence in the block. encode clears it, so a stale entry is
	// position 0: a candidate like any other, checked before use.
	table [1 << hashBits]uint16
	win   window // a copy of the block
	out   outBuf // the stream, before it is appended to dst
}

// Compress appends the LZO1X stream of src to dst and returns it. The
// stream is at most MaxCompressedLen(len(src)) bytes long: with that much
// spare capacity in dst, Compress does not allocate. A src longer than
// MaxBlock is ErrTooLarge.
func (c *Compressor) Compress(dst, src []byte) ([]byte, error) {
	if len(src) > MaxBlock {
		return dst, ErrTooLarge
	}
	n := c.encode(copy(c.win[:], src))
	return append(dst, c.out[:n]...), nil
}

// Errors of Compress and Decompress.
var (
	// ErrCorrupt: the stream is not valid LZO1X (a match before the
	// start of the output, a truncated instruction, data after the end
	// marker).
	ErrCorrupt = errors.New("lzo: corrupt stream")
	// ErrOutputOverrun: the stream decodes to more than len(dst) bytes.
	ErrOutputOverrun = errors.New("lzo: output larger than the buffer")
	// ErrTooLarge: Compress was given more than MaxBlock bytes.
	ErrTooLarge = errors.New("lzo: block larger than 64 KiB")
)
