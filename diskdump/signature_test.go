package diskdump

import (
	"encoding/binary"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSignatureVectors(t *testing.T) {
	// Test vectors of doc/FORMAT.md §3.1 (4 KiB blocks).
	tests := []struct {
		name  string
		blk   uint64
		words []uint32 // word[2..7]
		last  uint32   // word[1023]
	}{
		{"block0", 0, []uint32{0, 0x4d, 0x39c, 0x2801, 0x1b858, 0x12ec15}, 0xe658d205},
		{"block1", 1, []uint32{1, 0x58, 0x415, 0x2d34, 0x1f189, 0x156130}, 0xfd9ce000},
		{"block3", 3, []uint32{3, 0x6e, 0x507, 0x379a, 0x263eb, 0x1a4b66}, 0x2c24fbf6},
		{"block1024", 1024, []uint32{0x400, 0x2c4d, 0x1e79c, 0x14f401, 0xe67c58, 0x9e75815}, 0xf690be05},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
				b := make([]byte, 4096)
				FillSignature(b, tc.blk, o)
				assert.Equal(t, "diskdump", string(b[:8]))
				for i, w := range tc.words {
					assert.Equal(t, w, o.Uint32(b[8+4*i:]), "word %d %v", i+2, o)
				}
				assert.Equal(t, tc.last, o.Uint32(b[4092:]))
				assert.True(t, CheckSignature(b, tc.blk, o))
				assert.True(t, IsSignatureBlock(b, tc.blk, o))
				assert.False(t, CheckSignature(b, tc.blk+1, o))
			}
		})
	}
}

func TestSignatureBytes(t *testing.T) {
	b := make([]byte, 4096)
	FillSignature(b, 0, binary.LittleEndian)
	assert.Equal(t, "6469736b64756d70000000004d0000009c0300000128000058b8010015ec1200", hex.EncodeToString(b[:32]))
	FillSignature(b, 0, binary.BigEndian)
	assert.Equal(t, "6469736b64756d70000000000000004d0000039c000028010001b8580012ec15", hex.EncodeToString(b[:32]))
	big := make([]byte, 16384)
	FillSignature(big, 1, binary.LittleEndian)
	assert.Equal(t, uint32(0x7c812800), binary.LittleEndian.Uint32(big[16380:]))
}

func TestCheckSignatureKernelSemantics(t *testing.T) {
	b := make([]byte, 4096)
	FillSignature(b, 7, binary.LittleEndian)
	copy(b[4:8], "XXXX") // the kernel compares only "disk"
	assert.True(t, CheckSignature(b, 7, binary.LittleEndian))
	assert.False(t, IsSignatureBlock(b, 7, binary.LittleEndian))
	b[4095] ^= 1
	assert.False(t, CheckSignature(b, 7, binary.LittleEndian))
	assert.False(t, CheckSignature(b[:8], 7, binary.LittleEndian))
	FillSignature(b, 7, binary.LittleEndian)
	b[0] = 'D'
	assert.False(t, CheckSignature(b, 7, binary.LittleEndian))
}

func TestSampledChunks(t *testing.T) {
	tests := []struct {
		name   string
		blocks uint64
		order  uint
		rate   int
		want   []Chunk
	}{
		{"3000", 3000, 2, 8, []Chunk{{0, 4}, {1024, 4}, {2048, 4}, {2996, 4}}},
		{"exact grid end", 1028, 2, 8, []Chunk{{0, 4}, {1024, 4}}},
		{"short last chunk", 1026, 2, 8, []Chunk{{0, 4}, {1024, 2}}},
		{"tiny", 3, 2, 8, []Chunk{{0, 3}}},
		{"disabled", 5000, 2, -1, nil},
		{"rate 0 covers all", 10, 1, 0, []Chunk{{0, 2}, {2, 2}, {4, 2}, {6, 2}, {8, 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, slices.Collect(SampledChunks(tc.blocks, tc.order, tc.rate)))
		})
	}
	// doc/FORMAT.md §3.2 example: 262042 blocks -> 256 grid chunks + tail.
	got := slices.Collect(SampledChunks(262042, 2, 8))
	require.Len(t, got, 257)
	assert.Equal(t, Chunk{261120, 4}, got[255])
	assert.Equal(t, Chunk{262038, 4}, got[256])
}

func BenchmarkFillSignature(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for i := 0; b.Loop(); i++ {
		for off := 0; off < len(buf); off += 4096 {
			FillSignature(buf[off:off+4096], uint64(i*256+off/4096), binary.LittleEndian)
		}
	}
}

func BenchmarkCheckSignature(b *testing.B) {
	buf := make([]byte, 1<<20)
	for off := 0; off < len(buf); off += 4096 {
		FillSignature(buf[off:off+4096], uint64(off/4096), binary.LittleEndian)
	}
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		for off := 0; off < len(buf); off += 4096 {
			if !CheckSignature(buf[off:off+4096], uint64(off/4096), binary.LittleEndian) {
				b.Fatal("mismatch")
			}
		}
	}
}
