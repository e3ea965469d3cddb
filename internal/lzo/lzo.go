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
	m3MaxDist = 0x4000
	m4MaxDist = 0xbfff
	m3Marker  = 32
	m4Marker  = 16
	minMatch  = 4 // matches found by the 4-byte hash
)

// MaxBlock is the largest block Compress accepts: positions in the hash
// table are 16 bits.
const MaxBlock = 1 << 16

// hashBits sizes the hash table: 4096 entries, enough for the pages of a
// dump (4 to 64 KiB).
const hashBits = 12

// Compressor compresses blocks with a reused hash table. It is not safe for
// concurrent use.
type Compressor struct {
	// table holds, per hash of 4 bytes, gen<<16 | position of its last
	// occurrence; entries of an older gen are empty, so the table is
	// cleared once every 65536 blocks, not for each.
	table [1 << hashBits]uint32
	gen   uint32
}

// Compress appends the LZO1X stream of src to dst and returns it. The
// stream can be longer than src (by up to len(src)/255 + 16 bytes for
// incompressible data). A src longer than MaxBlock is ErrTooLarge.
func (c *Compressor) Compress(dst, src []byte) ([]byte, error) {
	if len(src) > MaxBlock {
		return dst, ErrTooLarge
	}
	c.gen = (c.gen + 1) & 0xffff
	if c.gen == 0 {
		clear(c.table[:])
		c.gen = 1
	}
	e := encoder{out: dst, start: len(dst), sbit: -1}
	lit := 0 // start of the pending literals
	for ip := 0; ip+minMatch <= len(src); {
		cur := binary.LittleEndian.Uint32(src[ip:])
		h := (cur * 2654435761) >> (32 - hashBits)
		ent := c.table[h]
		c.table[h] = c.gen<<16 | uint32(ip)
		cand := int(ent & 0xffff)
		if ent>>16 != c.gen || ip-cand > m4MaxDist || binary.LittleEndian.Uint32(src[cand:]) != cur {
			// Step faster through data that does not compress.
			ip += 1 + (ip-lit)>>5
			continue
		}
		m := minMatch
		for ip+m < len(src) && src[cand+m] == src[ip+m] {
			m++
		}
		e.literals(src[lit:ip])
		e.match(ip-cand, m)
		ip += m
		lit = ip
	}
	e.literals(src[lit:])
	return append(e.out, m4Marker|1, 0, 0), nil
}

// encoder emits the instructions of one stream.
type encoder struct {
	out   []byte
	start int // where the stream begins in out
	sbit  int // index in out of the byte holding the last match's S bits; -1 before the first match
}

// literals emits a run of literals.
func (e *encoder) literals(lit []byte) {
	t := len(lit)
	switch {
	case t == 0:
		return
	case len(e.out) == e.start && t <= 238:
		e.out = append(e.out, byte(17+t))
	case t <= 3:
		e.out[e.sbit] |= byte(t)
	case t <= 18:
		e.out = append(e.out, byte(t-3))
	default:
		e.out = append(e.out, 0)
		e.out = appendExt(e.out, t-18)
	}
	e.out = append(e.out, lit...)
}

// match emits a copy of m bytes from dist bytes back (minMatch <= m,
// 1 <= dist <= m4MaxDist).
func (e *encoder) match(dist, m int) {
	switch {
	case m <= m2MaxLen && dist <= m2MaxDist:
		d := dist - 1
		e.sbit = len(e.out)
		e.out = append(e.out, byte((m-1)<<5|(d&7)<<2), byte(d>>3))
		return
	case dist <= m3MaxDist:
		d := dist - 1
		if m <= 33 {
			e.out = append(e.out, byte(m3Marker|(m-2)))
		} else {
			e.out = append(e.out, m3Marker)
			e.out = appendExt(e.out, m-33)
		}
		e.sbit = len(e.out)
		e.out = append(e.out, byte(d<<2), byte(d>>6))
	default:
		d := dist - m3MaxDist
		h := byte(d>>11) & 8
		if m <= 9 {
			e.out = append(e.out, m4Marker|h|byte(m-2))
		} else {
			e.out = append(e.out, m4Marker|h)
			e.out = appendExt(e.out, m-9)
		}
		e.sbit = len(e.out)
		e.out = append(e.out, byte(d<<2), byte(d>>6))
	}
}

// appendExt appends a length extension of n >= 1: a zero byte per 255,
// then the rest.
func appendExt(out []byte, n int) []byte {
	for n > 255 {
		out = append(out, 0)
		n -= 255
	}
	return append(out, byte(n))
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
