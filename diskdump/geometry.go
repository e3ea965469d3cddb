package diskdump

import "fmt"

// Geometry is the block layout of a dump partition (doc/FORMAT.md §2). All counts are
// in blocks of BlockSize bytes.
type Geometry struct {
	BlockSize       int    // block size = page size of the crashed machine
	SubHdrBlocks    uint64 // S, sub_hdr_size (1 on every supported arch)
	MaxPFN          uint64 // max_mapnr in the header: one past the highest PFN
	RAMBlocks       uint64 // total_ram_blocks: RAM pages below MaxPFN
	RAMBitmapBlocks uint64 // R = ceil(MaxPFN / (8*BlockSize))
	BitmapBlocks    uint64 // R, or 2R when a second (dumpable) bitmap is written
}

// NewGeometry computes the layout for a machine with maxPFN page frames of
// which ramPages are RAM. twoBitmaps is the kernel's "not strict size check"
// condition: dump_level != 0 || compress != 0.
func NewGeometry(blockSize int, maxPFN, ramPages uint64, twoBitmaps bool) Geometry {
	g := Geometry{BlockSize: blockSize, SubHdrBlocks: 1, MaxPFN: maxPFN, RAMBlocks: ramPages}
	g.RAMBitmapBlocks = BitmapBlocksFor(maxPFN, blockSize)
	g.BitmapBlocks = g.RAMBitmapBlocks
	if twoBitmaps {
		g.BitmapBlocks *= 2
	}
	return g
}

// BitmapBlocksFor is ceil(maxPFN / (8*blockSize)), the blocks one PFN bitmap takes.
func BitmapBlocksFor(maxPFN uint64, blockSize int) uint64 {
	bits := uint64(blockSize) * 8
	if bits == 0 {
		return 0
	}
	return (maxPFN + bits - 1) / bits
}

// HeaderBlocks is 2 + S: block 0, the header block and the sub-header.
func (g Geometry) HeaderBlocks() uint64 { return 2 + g.SubHdrBlocks }

// TwoBitmaps reports whether a dense dumpable bitmap follows the RAM bitmap.
func (g Geometry) TwoBitmaps() bool {
	return g.BitmapBlocks != g.RAMBitmapBlocks
}

// TotalBlocks is what the kernel reports as total_blocks: header blocks, one
// RAM bitmap and every RAM page. It never includes the second bitmap.
func (g Geometry) TotalBlocks() uint64 {
	return g.HeaderBlocks() + g.RAMBitmapBlocks + g.RAMBlocks
}

// RAMBitmapBlock is the first block of the RAM bitmap.
func (g Geometry) RAMBitmapBlock() uint64 { return g.HeaderBlocks() }

// DumpBitmapBlock is the first block of the dense dumpable bitmap (valid only
// when TwoBitmaps).
func (g Geometry) DumpBitmapBlock() uint64 { return g.HeaderBlocks() + g.RAMBitmapBlocks }

// FirstDataBlock is header_blocks + bitmap_blocks.
func (g Geometry) FirstDataBlock() uint64 { return g.HeaderBlocks() + g.BitmapBlocks }

func (g Geometry) String() string {
	return fmt.Sprintf("block %d, header %d + bitmap %d (ram bitmap %d) + memory %d = %d blocks, data from block %d",
		g.BlockSize, g.HeaderBlocks(), g.BitmapBlocks, g.RAMBitmapBlocks, g.RAMBlocks, g.TotalBlocks(), g.FirstDataBlock())
}

// ValidBlockSize reports whether n is a block size diskdump can have: a power
// of two from 4096 to 65536.
func ValidBlockSize(n int64) bool {
	return n >= 4096 && n <= 65536 && n&(n-1) == 0
}
