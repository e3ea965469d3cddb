package diskdump

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBitmapBasics(t *testing.T) {
	m := MakeBitmap(20)
	assert.Equal(t, uint64(24), m.Len())
	for _, p := range []uint64{0, 3, 8, 19} {
		m.Set(p)
	}
	assert.Equal(t, []byte{0x09, 0x01, 0x08}, m.Bytes(), "LSB-first bit order")
	assert.True(t, m.Test(3))
	assert.False(t, m.Test(4))
	assert.False(t, m.Test(1000), "beyond the end reads clear")
	assert.Equal(t, uint64(4), m.Count())
	assert.Equal(t, uint64(2), m.CountBelow(8))
	assert.Equal(t, uint64(3), m.CountBelow(9))
	assert.Equal(t, uint64(4), m.CountBelow(1<<40))
	assert.Equal(t, []uint64{0, 3, 8, 19}, slices.Collect(m.All()))
	m.Truncate(8)
	assert.Equal(t, []uint64{0, 3}, slices.Collect(m.All()))
	m.Clear(0)
	assert.Equal(t, uint64(1), m.Count())
}

func TestDenseToPFN(t *testing.T) {
	// RAM: PFNs 1, 2, 5, 9, 10; dense bits 1,0,1,1,0 -> PFNs 1, 5, 9.
	ram := MakeBitmap(16)
	for _, p := range []uint64{1, 2, 5, 9, 10} {
		ram.Set(p)
	}
	dense := []byte{0b01101, 0}
	pfn, extra := DenseToPFN(ram, dense)
	assert.Equal(t, []uint64{1, 5, 9}, slices.Collect(pfn.All()))
	assert.Zero(t, extra)
	assert.Equal(t, []byte{0b01101}, PFNToDense(ram, pfn))

	// Dense bits beyond the RAM pages are counted, not mapped.
	_, extra = DenseToPFN(ram, []byte{0xff, 0x01})
	assert.Equal(t, uint64(4), extra)
	// A short dense bitmap leaves the rest clear.
	pfn, _ = DenseToPFN(ram, nil)
	assert.Zero(t, pfn.Count())
}

func FuzzDenseToPFN(f *testing.F) {
	f.Add([]byte{0xff, 0x0f, 0x80}, []byte{0x5a, 0x01})
	f.Add([]byte{}, []byte{0xff})
	f.Fuzz(func(t *testing.T, ramBytes, dense []byte) {
		ram := NewBitmap(ramBytes)
		pfn, extra := DenseToPFN(ram, dense)
		require.Equal(t, len(ramBytes), len(pfn.Bytes()))
		// Every PFN set is RAM, and the conversion round-trips on the RAM part.
		for p := range pfn.All() {
			require.True(t, ram.Test(p))
		}
		back := PFNToDense(ram, pfn)
		nram := ram.Count()
		for k := uint64(0); k < nram; k++ {
			want := k < uint64(len(dense))*8 && dense[k>>3]&(1<<(k&7)) != 0
			require.Equal(t, want, back[k>>3]&(1<<(k&7)) != 0, "bit %d", k)
		}
		require.LessOrEqual(t, extra, uint64(len(dense))*8)
	})
}
