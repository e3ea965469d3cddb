package lzo

import (
	"encoding/binary"
	"math/bits"
)

const (
	// hashBits sizes the hash table: 4096 entries, one per byte of a
	// 4 KiB page. More entries gain 0.1 to 0.3% on 64 KiB blocks and cost
	// as much time in clearing the table on 4 KiB pages.
	hashBits = 12
	hashMul  = 0x9e3779b1 // Knuth's multiplicative hash (2^32 / golden ratio)
	// skipShift sets how fast the search steps through data that does
	// not compress: 1 + (bytes since the last match)>>skipShift, as in
	// LZO1X-1.
	skipShift = 5
	// outSize bounds the stream of any block before encode falls back
	// to one literal run (at most n + n/23 + n/255 + 6 bytes: each match
	// saves at least a byte, and the run after it costs at most
	// 2 + (length-19)/255 bytes on top of its literals); a power of two,
	// so that indexes masked with outSize-1 need no bounds check.
	outSize = 1 << 17
	outMask = outSize - 1
)

// window holds the block: any 16-bit position can be read 8 bytes at a
// time, and then 8 more, without a bounds check.
type window [MaxBlock + 16]byte

func (w *window) load32(i uint16) uint32 { return binary.LittleEndian.Uint32(w[i:]) }
func (w *window) load64(i uint16) uint64 { return binary.LittleEndian.Uint64(w[i:]) }

// load64At8 reads the 8 bytes after those of load64(i).
func (w *window) load64At8(i uint16) uint64 { return binary.LittleEndian.Uint64(w[int(i)+8:]) }

// tailLen extends a match of m bytes at b from a (a < b) a byte at a
// time up to the end of the block, n.
func (w *window) tailLen(a, b, m, n int) int {
	for b+m < n && w[uint16(a+m)] == w[uint16(b+m)] {
		m++
	}
	return m
}

// outBuf holds the stream; it is written at op&outMask (op < outSize
// always) 1 to 8 bytes at a time.
type outBuf [outSize + 16]byte

func (o *outBuf) put16(op int, v uint16) { binary.LittleEndian.PutUint16(o[op&outMask:], v) }
func (o *outBuf) put32(op int, v uint32) { binary.LittleEndian.PutUint32(o[op&outMask:], v) }
func (o *outBuf) put64(op int, v uint64) { binary.LittleEndian.PutUint64(o[op&outMask:], v) }

// encode writes the stream of the n bytes in c.win to c.out and returns
// its length, at most storedLen(n). It is a greedy single pass: at each
// position it looks up the last position with the same hash of 4 bytes and
// takes the match there if its 4 bytes agree, extended back over the
// literals the search stepped past and forward 16 bytes at a time; between
// matches it steps faster the longer it has found nothing, like LZO1X-1.
// Literal runs up to 16 bytes and M2 and M3 matches without a length
// extension are written here, the others by putLiterals and putMatch.
func (c *Compressor) encode(n int) int {
	tab, w, o := &c.table, &c.win, &c.out
	clear(tab[:])
	op, lit := 0, 0
	for ip, last := 1, n-minMatch; ip <= last; {
		cur := w.load32(uint16(ip))
		h := cur * hashMul >> (32 - hashBits)
		cand := int(tab[h])
		tab[h] = uint16(ip)
		dist := ip - cand
		if w.load32(uint16(cand)) != cur || dist > m4MaxDist {
			ip += 1 + (ip-lit)>>skipShift
			continue
		}
		m := minMatch
		// The search may have stepped over the match's start: take
		// back the literals that belong to it.
		for ip > lit && cand > 0 && w[uint16(ip-1)] == w[uint16(cand-1)] {
			ip--
			cand--
			m++
		}
		for {
			if ip+m+16 > n {
				m = w.tailLen(cand, ip, m, n)
				break
			}
			if x := w.load64(uint16(cand+m)) ^ w.load64(uint16(ip+m)); x != 0 {
				m += bits.TrailingZeros64(x) >> 3
				break
			}
			if x := w.load64At8(uint16(cand+m)) ^ w.load64At8(uint16(ip+m)); x != 0 {
				m += 8 + bits.TrailingZeros64(x)>>3
				break
			}
			m += 16
		}
		switch t := ip - lit; {
		case t == 0:
		case t <= 3 && op > 0: // in the S bits of the last match
			o[(op-2)&outMask] |= byte(t)
			o.put32(op, w.load32(uint16(lit)))
			op += t
		case t <= 16 && (op > 0 || t > 3):
			if op == 0 {
				o[0] = byte(17 + t)
			} else {
				o[op&outMask] = byte(t - 3)
			}
			o.put64(op+1, w.load64(uint16(lit)))
			o.put64(op+9, w.load64At8(uint16(lit)))
			op += 1 + t
		default:
			op = putLiterals(o[:], op, w[lit:ip])
		}
		switch dist--; {
		case m <= m2MaxLen && dist < m2MaxDist:
			o.put16(op, uint16((m-1)<<5|(dist&7)<<2|(dist>>3)<<8))
			op += 2
		case m <= m3MaxLen && dist < m3MaxDist:
			o.put32(op, uint32(m3Marker|(m-2)|dist<<10))
			op += 3
		default:
			op = putMatch(o[:], op, dist+1, m)
		}
		ip += m
		lit = ip
	}
	op = putLiterals(o[:], op, w[lit:n])
	if op+3 > storedLen(n) {
		// Matches of 4 bytes in 3, each followed by a run of 19
		// literals or more, which costs 2 bytes on top of them, can
		// make the stream longer than the block as one literal run:
		// write that instead.
		op = putLiterals(o[:], 0, w[:n])
	}
	o.put32(op, m4Marker|1)
	return op + 3
}

// storedLen bounds the length of the stream of n bytes as one literal run:
// the literals, a run length of 1 byte, or 2 + (n-19)/255 bytes from 239
// literals on, and the end marker.
func storedLen(n int) int { return n + n/255 + 5 }

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
