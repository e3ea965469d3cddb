package diskdump

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rdrSwapBlock builds block 0 of a swap area the way mkswap does (version 1,
// last_page, SWAPSPACE2 at the end of the page).
func rdrSwapBlock(bs int, o binary.ByteOrder, deviceBlocks uint64) []byte {
	b := make([]byte, bs)
	o.PutUint32(b[1024:], 1)
	o.PutUint32(b[1028:], uint32(deviceBlocks-1))
	copy(b[bs-10:], SwapMagic)
	return b
}

func TestIsSwapHeader(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	tests := []struct {
		name   string
		block  func() []byte
		bs     int
		order  binary.ByteOrder
		blocks uint64
		want   bool
	}{
		{"valid LE", func() []byte { return rdrSwapBlock(4096, le, 1000) }, 4096, le, 1000, true},
		{"valid BE", func() []byte { return rdrSwapBlock(4096, be, 1000) }, 4096, be, 1000, true},
		{"valid 16 KiB", func() []byte { return rdrSwapBlock(16384, le, 77) }, 16384, le, 77, true},
		{"wrong byte order", func() []byte { return rdrSwapBlock(4096, le, 1000) }, 4096, be, 1000, false},
		{"magic at 4 KiB in a 16 KiB block", func() []byte {
			b := make([]byte, 16384)
			copy(b, rdrSwapBlock(4096, le, 77))
			return b
		}, 16384, le, 77, false},
		{"no magic", func() []byte {
			b := rdrSwapBlock(4096, le, 1000)
			copy(b[4086:], "SWAP-SPACE")
			return b
		}, 4096, le, 1000, false},
		{"old SWAP-SPACE magic", func() []byte {
			b := rdrSwapBlock(4096, le, 1000)
			copy(b[4086:], "SWAP-SPACE")
			return b
		}, 4096, le, 1000, false},
		{"version 2", func() []byte {
			b := rdrSwapBlock(4096, le, 1000)
			le.PutUint32(b[1024:], 2)
			return b
		}, 4096, le, 1000, false},
		{"last_page does not match the device", func() []byte { return rdrSwapBlock(4096, le, 1001) }, 4096, le, 1000, false},
		{"last_page 0xffffffff does not wrap", func() []byte {
			b := rdrSwapBlock(4096, le, 1000)
			le.PutUint32(b[1028:], 0xffffffff)
			return b
		}, 4096, le, 0, false},
		{"short buffer", func() []byte { return rdrSwapBlock(4096, le, 1000)[:4000] }, 4096, le, 1000, false},
		{"tiny block size", func() []byte { return make([]byte, 512) }, 512, le, 1, false},
		{"nil order", func() []byte { return rdrSwapBlock(4096, le, 1000) }, 4096, nil, 1000, false},
		{"formatted block 0", func() []byte {
			b := make([]byte, 4096)
			FillSignature(b, 0, le)
			return b
		}, 4096, le, 1000, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, IsSwapHeader(tc.block(), tc.bs, tc.order, tc.blocks))
		})
	}
}

func TestPartitionIsSwap(t *testing.T) {
	for _, a := range []Arch{ArchX86_64, ArchPPC64, ArchI386} {
		t.Run(a.String(), func(t *testing.T) {
			d := rdrBuild(t, rdrSpec{arch: a, compress: true, spare: 4})
			dev := uint64(len(d.img) / d.bs)
			copy(d.img, rdrSwapBlock(d.bs, d.order, dev))
			p := d.open(t)
			assert.True(t, p.IsSwap())
			found, errs := rdrRun(t, d, p)
			assert.Empty(t, errs)
			assert.Equal(t, d.pfns, found)

			// An image longer than the swap partition (whole-disk copy) is
			// still recognised through the header's device_blocks.
			long := append(bytes.Clone(d.img), make([]byte, 8*d.bs)...)
			p, err := OpenPartition(bytes.NewReader(long), int64(len(long)))
			require.NoError(t, err)
			assert.True(t, p.IsSwap())

			// A swap header for another size is not this device's.
			copy(d.img, rdrSwapBlock(d.bs, d.order, dev+1))
			assert.False(t, d.open(t).IsSwap())
		})
	}
}
