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
// Entry points: Compressor (Compress) and Decompress.
package lzo

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

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

// MaxCompressedLen is the longest stream Compress writes for n bytes: all
// literals (n + n/255 + 2 bytes of run length at most) and the 3-byte end
// marker.
func MaxCompressedLen(n int) int { return n + n/255 + 16 }

// workSlack is what Compress needs beyond MaxCompressedLen in dst's
// capacity to copy short literal runs 16 bytes at a time.
const workSlack = 48

// maxHashBits sizes the hash table: 16384 entries for a 64 KiB block, as
// many entries as bytes for 4 KiB (hashBits).
const maxHashBits = 14

// Compressor compresses blocks with a reused hash table. It is not safe for
// concurrent use.
type Compressor struct {
	// table holds, per hash of 4 bytes, the position of its last
	// occurrence in the block. Compress clears the part it uses, so a
	// stale entry is position 0: a candidate like any other, checked
	// before use.
	table [1 << maxHashBits]uint16
	// win is a copy of the block: any 16-bit position can be read 8
	// bytes at a time without a bounds check, and matches are extended
	// past the end of the block, then cut to it.
	win window
}

type window [MaxBlock + 16]byte

// load32 and load64 read little-endian words at i.
func (w *window) load32(i uint16) uint32 { return binary.LittleEndian.Uint32(w[i:]) }
func (w *window) load64(i uint16) uint64 { return binary.LittleEndian.Uint64(w[i:]) }

// Compress appends the LZO1X stream of src to dst and returns it. The
// stream is at most MaxCompressedLen(len(src)) bytes long; Compress
// allocates when dst has less spare capacity than that plus 48 bytes. A
// src longer than MaxBlock is ErrTooLarge.
func (c *Compressor) Compress(dst, src []byte) ([]byte, error) {
	if len(src) > MaxBlock {
		return dst, ErrTooLarge
	}
	need := MaxCompressedLen(len(src)) + workSlack
	if cap(dst)-len(dst) < need {
		grown := make([]byte, len(dst), len(dst)+need)
		copy(grown, dst)
		dst = grown
	}
	out := dst[len(dst) : len(dst)+need]
	n := c.encode(out, copy(c.win[:], src))
	return dst[:len(dst)+n], nil
}

// hashBits is the size of the hash table for a block of n bytes: one
// entry per byte, between 2^9 and 2^maxHashBits entries.
func hashBits(n int) uint {
	b := uint(bits.Len(uint(n)))
	return min(max(b-1, 9), maxHashBits)
}

// encode writes the stream of the n bytes in c.win to out (of len
// MaxCompressedLen + workSlack) and returns its length. It is a greedy
// single pass: at each position it looks up the last position with the
// same hash of 4 bytes, takes the match there if its 4 bytes agree and
// extends it 8 bytes at a time; between matches it steps faster the longer
// it has found nothing, like LZO1X-1. The common instructions (short
// literal runs, M2 matches) are written here, the others by putLiterals
// and putMatch.
func (c *Compressor) encode(out []byte, n int) int {
	hb := uint(12)
	const shift = 32 - 12
	tab, w := &c.table, &c.win
	clear(tab[:1<<hb])
	op, lit := 0, 0
	for ip := 1; ip+minMatch <= n; {
		cur := w.load32(uint16(ip))
		h := (cur * 0x9e3779b1) >> shift & (1<<maxHashBits - 1)
		cand := int(tab[h])
		tab[h] = uint16(ip)
		if w.load32(uint16(cand)) != cur || ip-cand > m4MaxDist {
			ip += 1 + (ip-lit)>>5
			continue
		}
		m := minMatch
		for ip+m < n {
			if x := w.load64(uint16(cand+m)) ^ w.load64(uint16(ip+m)); x != 0 {
				m += bits.TrailingZeros64(x) >> 3
				break
			}
			m += 8
		}
		m = min(m, n-ip)
		if t := ip - lit; t > 0 {
			if t <= 3 && op >= 2 {
				out[op-2] |= byte(t)
				binary.LittleEndian.PutUint32(out[op:], w.load32(uint16(lit)))
				op += t
			} else {
				op = putLiterals(out, op, w[lit:ip])
			}
		}
		if dist := ip - cand - 1; m <= m2MaxLen && dist < m2MaxDist {
			out[op] = byte((m-1)<<5 | (dist&7)<<2)
			out[op+1] = byte(dist >> 3)
			op += 2
		} else {
			op = putMatch(out, op, dist+1, m)
		}
		ip += m
		lit = ip
	}
	op = putLiterals(out, op, w[lit:n])
	out[op], out[op+1], out[op+2] = m4Marker|1, 0, 0
	return op + 3
}

// putLiterals writes the literals lit at out[op:] and returns the new
// op. Runs of 1 to 3 after a match go in the match's S bits, the low bits
// of its second-to-last byte.
func putLiterals(out []byte, op int, lit []byte) int {
	t := len(lit)
	switch {
	case t == 0:
		return op
	case op == 0 && t <= 238:
		out[op] = byte(17 + t)
		op++
	case t <= 3:
		out[op-2] |= byte(t)
	case t <= 18:
		out[op] = byte(t - 3)
		op++
	default:
		out[op] = 0
		op = putExt(out, op+1, t-18)
	}
	return op + copy(out[op:], lit)
}

// putMatch writes a copy of m bytes from dist bytes back (minMatch <= m,
// 1 <= dist <= m4MaxDist) at out[op:] and returns the new op.
func putMatch(out []byte, op, dist, m int) int {
	switch {
	case m <= m2MaxLen && dist <= m2MaxDist:
		d := dist - 1
		out[op] = byte((m-1)<<5 | (d&7)<<2)
		out[op+1] = byte(d >> 3)
		return op + 2
	case dist <= m3MaxDist:
		dist--
		if m <= m3MaxLen {
			out[op] = byte(m3Marker | (m - 2))
			op++
		} else {
			out[op] = m3Marker
			op = putExt(out, op+1, m-m3MaxLen)
		}
	default:
		dist -= m3MaxDist
		h := byte(dist>>11) & 8
		if m <= m4MaxLen {
			out[op] = m4Marker | h | byte(m-2)
			op++
		} else {
			out[op] = m4Marker | h
			op = putExt(out, op+1, m-m4MaxLen)
		}
	}
	out[op] = byte(dist << 2)
	out[op+1] = byte(dist >> 6)
	return op + 2
}

// putExt writes a length extension of n >= 1 at out[op:]: a zero byte per
// 255, then the rest.
func putExt(out []byte, op, n int) int {
	for n > 255 {
		out[op] = 0
		op++
		n -= 255
	}
	out[op] = byte(n)
	return op + 1
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
