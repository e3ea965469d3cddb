package diskdump

import (
	"iter"
	"math/bits"
)

// Bitmap is a PFN-indexed bitmap in the on-disk bit order: the bit of PFN p
// is bit p&7 (LSB first) of byte p>>3 (doc/FORMAT.md §2).
type Bitmap struct {
	b []byte
}

// NewBitmap wraps b (not copied).
func NewBitmap(b []byte) *Bitmap { return &Bitmap{b: b} }

// MakeBitmap allocates a zeroed bitmap for n bits. Callers bound n by the
// device size before calling it.
func MakeBitmap(n uint64) *Bitmap { return &Bitmap{b: make([]byte, (n+7)/8)} }

// Bytes returns the underlying bytes.
func (m *Bitmap) Bytes() []byte { return m.b }

// Len is the number of bits the bitmap can hold.
func (m *Bitmap) Len() uint64 { return uint64(len(m.b)) * 8 }

// Test reports whether bit p is set; bits past the end are clear.
func (m *Bitmap) Test(p uint64) bool {
	i := p >> 3
	return i < uint64(len(m.b)) && m.b[i]&(1<<(p&7)) != 0
}

// Set sets bit p, which must be below Len.
func (m *Bitmap) Set(p uint64) { m.b[p>>3] |= 1 << (p & 7) }

// Clear clears bit p, which must be below Len.
func (m *Bitmap) Clear(p uint64) { m.b[p>>3] &^= 1 << (p & 7) }

// Count is the number of set bits.
func (m *Bitmap) Count() uint64 { return popcount(m.b) }

// CountBelow is the number of set bits below p.
func (m *Bitmap) CountBelow(p uint64) uint64 {
	i := p >> 3
	if i >= uint64(len(m.b)) {
		return m.Count()
	}
	n := popcount(m.b[:i])
	return n + uint64(bits.OnesCount8(m.b[i]&(1<<(p&7)-1)))
}

// All yields the set bits in ascending order.
func (m *Bitmap) All() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		for i, c := range m.b {
			for c != 0 {
				j := bits.TrailingZeros8(c)
				if !yield(uint64(i)*8 + uint64(j)) {
					return
				}
				c &= c - 1
			}
		}
	}
}

// Truncate clears every bit at or above n.
func (m *Bitmap) Truncate(n uint64) {
	i := n >> 3
	if i >= uint64(len(m.b)) {
		return
	}
	m.b[i] &= 1<<(n&7) - 1
	clear(m.b[i+1:])
}

func popcount(b []byte) uint64 {
	var n int
	for len(b) >= 8 {
		n += bits.OnesCount64(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
		b = b[8:]
	}
	for _, c := range b {
		n += bits.OnesCount8(c)
	}
	return uint64(n)
}

// DenseToPFN converts the partition's dense dumpable bitmap (bit k is the
// k-th RAM page, i.e. the k-th set bit of ram) into a PFN-indexed bitmap of
// the same length as ram (doc/FORMAT.md §2, §10.2). Dense bits beyond the number of
// RAM pages are ignored and counted in extra. The result's size is bounded
// by ram's, which the caller read from the device.
func DenseToPFN(ram *Bitmap, dense []byte) (pfn *Bitmap, extra uint64) {
	out := &Bitmap{b: make([]byte, len(ram.b))}
	var k uint64
	nd := uint64(len(dense)) * 8
	for p := range ram.All() {
		if k >= nd {
			break
		}
		if dense[k>>3]&(1<<(k&7)) != 0 {
			out.Set(p)
		}
		k++
	}
	for ; k < nd; k++ {
		if dense[k>>3]&(1<<(k&7)) != 0 {
			extra++
		}
	}
	return out, extra
}

// PFNToDense is the inverse of DenseToPFN: one bit per set bit of ram, set
// when pfn has it.
func PFNToDense(ram, pfn *Bitmap) []byte {
	dense := make([]byte, (ram.Count()+7)/8)
	var k uint64
	for p := range ram.All() {
		if pfn.Test(p) {
			dense[k>>3] |= 1 << (k & 7)
		}
		k++
	}
	return dense
}
