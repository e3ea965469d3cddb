package diskdump

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGeometryAnnouncementExample(t *testing.T) {
	// Upstream announcement, 1 GiB at 4 KiB: 3 + 8 + 262031 = 262042 (doc/FORMAT.md §2, §12).
	g := NewGeometry(4096, 262144, 262031, false)
	assert.Equal(t, uint64(3), g.HeaderBlocks())
	assert.Equal(t, uint64(8), g.RAMBitmapBlocks)
	assert.Equal(t, uint64(8), g.BitmapBlocks)
	assert.Equal(t, uint64(262042), g.TotalBlocks())
	assert.Equal(t, uint64(11), g.FirstDataBlock())
	assert.False(t, g.TwoBitmaps())

	c := NewGeometry(4096, 262144, 262031, true)
	assert.Equal(t, uint64(16), c.BitmapBlocks)
	assert.Equal(t, uint64(262042), c.TotalBlocks(), "total_blocks never includes the second bitmap")
	assert.Equal(t, uint64(19), c.FirstDataBlock())
	assert.Equal(t, uint64(3), c.RAMBitmapBlock())
	assert.Equal(t, uint64(11), c.DumpBitmapBlock())
	assert.True(t, c.TwoBitmaps())
}

func TestBitmapBlocksFor(t *testing.T) {
	tests := []struct {
		name   string
		maxPFN uint64
		bs     int
		want   uint64
	}{
		{"one bit", 1, 4096, 1},
		{"exact", 32768, 4096, 1},
		{"one more", 32769, 4096, 2},
		{"16k pages", 131072, 16384, 1},
		{"zero", 0, 4096, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, BitmapBlocksFor(tc.maxPFN, tc.bs))
		})
	}
}

func TestValidBlockSize(t *testing.T) {
	for _, n := range []int64{4096, 8192, 16384, 65536} {
		assert.True(t, ValidBlockSize(n), n)
	}
	for _, n := range []int64{0, 512, 2048, 4095, 5000, 131072, -4096} {
		assert.False(t, ValidBlockSize(n), n)
	}
}
