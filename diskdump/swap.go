package diskdump

import (
	"bytes"
	"encoding/binary"
)

// SwapMagic is the signature mkswap puts in the last 10 bytes of block 0
// of a version-1 swap area (doc/FORMAT.md §1, §3.4).
const SwapMagic = "SWAPSPACE2"

// Offsets in block 0 of a swap header (union swap_header, info part).
const (
	swapVersionOff  = 1024 // info.version, u32
	swapLastPageOff = 1028 // info.last_page, u32
)

// IsSwapHeader reports whether block0, the first blockSize bytes of a
// device of deviceBlocks blocks, is a swap header the diskdump kernel
// accepts as a dump device (doc/FORMAT.md §3.4 tests 1-3, u32 fields in order):
// SWAPSPACE2 in the last 10 bytes of the block, version 1, and last_page+1
// equal to the device size in blocks. Test 4 (strict mode: last_page >=
// total_blocks) depends on the kernel's settings and is left to the caller.
func IsSwapHeader(block0 []byte, blockSize int, order binary.ByteOrder, deviceBlocks uint64) bool {
	if order == nil || blockSize < swapLastPageOff+4+len(SwapMagic) || len(block0) < blockSize {
		return false
	}
	if !bytes.Equal(block0[blockSize-len(SwapMagic):blockSize], []byte(SwapMagic)) {
		return false
	}
	if order.Uint32(block0[swapVersionOff:]) != 1 {
		return false
	}
	return uint64(order.Uint32(block0[swapLastPageOff:]))+1 == deviceBlocks
}
