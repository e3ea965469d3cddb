package diskdump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

var defaultFP = FormatParams{BlockSize: 4096, Order: binary.LittleEndian, BlockOrder: 2, SampleRate: 8}

func withTotal(fp FormatParams, total uint64) FormatParams {
	fp.TotalBlocks = total
	return fp
}

func TestNormalFormatBlocks(t *testing.T) {
	bo0 := FormatParams{BlockSize: 4096, Order: binary.LittleEndian, BlockOrder: 0, SampleRate: 8}
	noCheck := defaultFP
	noCheck.SampleRate = -1
	tests := []struct {
		name   string
		device uint64
		fp     FormatParams
		want   []Chunk
	}{
		// doc/FORMAT.md §3.2 example for 3000 blocks: (0,4) (1024,4) (2048,4) tail (2996,4).
		{"spec example 3000", 3000, defaultFP, []Chunk{{1, 3}, {1024, 4}, {2048, 4}, {2996, 4}}},
		{"total below device adds its tail", 3000, withTotal(defaultFP, 2500), []Chunk{{1, 3}, {1024, 4}, {2048, 4}, {2496, 4}, {2996, 4}}},
		{"total above device is clamped", 3000, withTotal(defaultFP, 1<<30), []Chunk{{1, 3}, {1024, 4}, {2048, 4}, {2996, 4}}},
		{"grid reaches the end", 2049, defaultFP, []Chunk{{1, 3}, {1024, 4}, {2048, 1}}},
		{"tail overlaps last grid chunk", 1030, defaultFP, []Chunk{{1, 3}, {1024, 6}}},
		{"one-block chunks", 600, bo0, []Chunk{{1, 2}, {256, 1}, {512, 1}, {599, 1}}},
		{"sample_rate < 0: blocks 1 and 2 only", 5000, noCheck, []Chunk{{1, 2}}},
		{"tiny device", 3, defaultFP, []Chunk{{1, 2}}},
		{"two blocks", 2, defaultFP, []Chunk{{1, 1}}},
		{"one block", 1, defaultFP, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Chunk
			for c := range NormalFormatBlocks(tc.device, tc.fp) {
				got = append(got, c)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestNormalFormatBlocksExact compares NormalFormatBlocks with the set the
// spec defines, built block by block: {1, 2} plus everything the kernel
// samples for the device and for min(total_blocks, device), minus block 0.
func TestNormalFormatBlocksExact(t *testing.T) {
	params := []FormatParams{
		defaultFP,
		{BlockSize: 4096, Order: binary.LittleEndian, BlockOrder: 0, SampleRate: 3},
		{BlockSize: 4096, Order: binary.LittleEndian, BlockOrder: 3, SampleRate: 2},
		{BlockSize: 4096, Order: binary.LittleEndian, BlockOrder: 1, SampleRate: 0},
	}
	for _, fp := range params {
		for device := uint64(0); device < 1200; device += 7 {
			for _, total := range []uint64{0, device / 3, device - min(device, 5), device + 9} {
				fp := withTotal(fp, total)
				want := make([]bool, device)
				mark := func(p uint64) {
					for c := range SampledChunks(p, fp.BlockOrder, fp.SampleRate) {
						for b := c.Blk; b < c.Blk+c.N; b++ {
							want[b] = true
						}
					}
				}
				mark(device)
				mark(fp.partitionBlocks(device))
				for b := uint64(1); b <= 2 && b < device; b++ {
					want[b] = true
				}
				if device > 0 {
					want[0] = false
				}
				got := make([]bool, device)
				prevEnd := uint64(0)
				for c := range NormalFormatBlocks(device, fp) {
					if c.N == 0 || c.Blk <= prevEnd || c.Blk+c.N > device {
						t.Fatalf("device %d %+v: chunk %+v after block %d: empty, out of order, touching or past the end", device, fp, c, prevEnd)
					}
					for b := c.Blk; b < c.Blk+c.N; b++ {
						got[b] = true
					}
					prevEnd = c.Blk + c.N
				}
				if !slices.Equal(want, got) {
					require.Equal(t, want, got, "device %d, %+v", device, fp)
				}
			}
		}
	}
}

func TestNormalFormatBlocksStopsEarly(t *testing.T) {
	n := 0
	for range NormalFormatBlocks(1<<20, defaultFP) {
		n++
		if n == 3 {
			break
		}
	}
	assert.Equal(t, 3, n)
}

func image(blocks uint64, bs int, extra int) []byte {
	return make([]byte, int(blocks)*bs+extra)
}

func TestFormatInitial(t *testing.T) {
	tests := []struct {
		name   string
		fp     FormatParams
		blocks uint64
	}{
		{"x86_64", defaultFP, 2500},
		{"ppc64 big-endian", FormatParams{BlockSize: 4096, Order: binary.BigEndian, BlockOrder: 2, SampleRate: 8}, 1100},
		{"ia64 16 KiB", FormatParams{BlockSize: 16384, Order: binary.LittleEndian, BlockOrder: 2, SampleRate: 8}, 300},
		{"more than one buffer", defaultFP, 3*formatIOBytes/4096 + 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A trailing partial block, which the kernel does not count.
			img := image(tc.blocks, tc.fp.BlockSize, 100)
			img[len(img)-1] = 0x55
			var calls, last uint64
			err := FormatInitial(memfile.New(img), tc.blocks, tc.fp, func(done, total uint64) {
				calls++
				assert.Equal(t, tc.blocks, total)
				assert.Greater(t, done, last)
				last = done
			})
			require.NoError(t, err)
			assert.Equal(t, tc.blocks, last)
			assert.Positive(t, calls)
			bs := tc.fp.BlockSize
			for blk := range tc.blocks {
				if !IsSignatureBlock(img[int(blk)*bs:int(blk+1)*bs], blk, tc.fp.Order) {
					t.Fatalf("block %d has no signature", blk)
				}
			}
			assert.Equal(t, byte(0x55), img[len(img)-1], "partial block past the last one untouched")
			assert.Equal(t, make([]byte, 99), img[len(img)-100:len(img)-1])
		})
	}
}

func TestFormatRejects(t *testing.T) {
	img := image(10, 4096, 0)
	tests := []struct {
		name   string
		fp     FormatParams
		blocks uint64
		want   error
	}{
		{"small block size", FormatParams{BlockSize: 512, Order: binary.LittleEndian, BlockOrder: 2, SampleRate: 8}, 10, ErrUnsupportedVersion},
		{"no byte order", FormatParams{BlockSize: 4096, BlockOrder: 2, SampleRate: 8}, 10, ErrUnsupportedVersion},
		{"block order", FormatParams{BlockSize: 4096, Order: binary.LittleEndian, BlockOrder: 31}, 10, ErrCorrupt},
		{"sample rate", FormatParams{BlockSize: 4096, Order: binary.LittleEndian, BlockOrder: 2, SampleRate: 61}, 10, ErrCorrupt},
		{"too small", defaultFP, 2, ErrTooSmall},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := memfile.New(img)
			assert.ErrorIs(t, FormatInitial(f, tc.blocks, tc.fp, nil), tc.want)
			assert.ErrorIs(t, FormatNormal(f, f, tc.blocks, tc.fp, false, nil), tc.want)
			_, err := CheckPartition(f, int64(len(img)), tc.fp)
			if tc.want != ErrTooSmall {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
	assert.Equal(t, make([]byte, len(img)), img, "nothing written")
}

func formatted(t testing.TB, blocks uint64, fp FormatParams) []byte {
	t.Helper()
	img := image(blocks, fp.BlockSize, 0)
	require.NoError(t, FormatInitial(memfile.New(img), blocks, fp, nil))
	return img
}

func damage(img []byte, blk uint64, bs int) {
	b := img[int(blk)*bs : int(blk+1)*bs]
	b[bs/2] ^= 0xff
}

func TestFormatNormal(t *testing.T) {
	const blocks = 2100
	fp := withTotal(defaultFP, 1500)
	sampled := map[uint64]bool{}
	for c := range NormalFormatBlocks(blocks, fp) {
		for b := c.Blk; b < c.Blk+c.N; b++ {
			sampled[b] = true
		}
	}
	require.True(t, sampled[1] && sampled[2] && sampled[1499] && sampled[2099] && sampled[2048] && !sampled[2047])
	bs := fp.BlockSize

	for _, all := range []bool{false, true} {
		name := "sampled"
		if all {
			name = "all"
		}
		t.Run(name, func(t *testing.T) {
			img := formatted(t, blocks, fp)
			// Bytes 4-7 of block 0 are not checked: the format accepts
			// block 0, and the damage shows that it is not rewritten.
			copy(img[4:8], "XXXX")
			for blk := uint64(1); blk < blocks; blk++ {
				damage(img, blk, bs)
			}
			f := memfile.New(img)
			var last, total uint64
			require.NoError(t, FormatNormal(f, f, blocks, fp, all, func(d, tot uint64) { last, total = d, tot }))
			assert.Equal(t, total, last)
			assert.Equal(t, "XXXX", string(img[4:8]), "block 0 not written")
			var written uint64
			for blk := uint64(1); blk < blocks; blk++ {
				ok := IsSignatureBlock(img[int(blk)*bs:int(blk+1)*bs], blk, fp.Order)
				if ok {
					written++
				}
				if ok != (all || sampled[blk]) {
					t.Fatalf("block %d: signature %v, want %v", blk, ok, all || sampled[blk])
				}
			}
			assert.Equal(t, written, total)
		})
	}

	t.Run("needs initial format", func(t *testing.T) {
		img := image(blocks, bs, 0)
		f := memfile.New(img)
		err := FormatNormal(f, f, blocks, fp, false, nil)
		require.ErrorIs(t, err, ErrBadSignature)
		var fe *FormatError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, int64(0), fe.Blk)
		assert.Equal(t, make([]byte, len(img)), img, "nothing written")
	})
}

// countingDevice is a sparse device: block 0 carries its signature, every
// other block reads as zeros, and writes are only counted.
type countingDevice struct {
	bs      int
	size    int64
	mu      sync.Mutex
	written map[int64]int // block -> times written
}

func (d *countingDevice) ReadAt(p []byte, off int64) (int, error) {
	if off >= d.size {
		return 0, io.EOF
	}
	clear(p)
	if off == 0 && len(p) >= d.bs {
		FillSignature(p[:d.bs], 0, binary.LittleEndian)
	}
	if off+int64(len(p)) > d.size {
		return int(d.size - off), io.EOF
	}
	return len(p), nil
}

func (d *countingDevice) WriteAt(p []byte, off int64) (int, error) {
	if off%int64(d.bs) != 0 || len(p)%d.bs != 0 || off+int64(len(p)) > d.size {
		return 0, errors.New("unaligned or out of range")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for b := off / int64(d.bs); b < (off+int64(len(p)))/int64(d.bs); b++ {
		// The start of the pattern identifies the block; TestFormatNormal
		// checks whole blocks.
		blk := p[(b-off/int64(d.bs))*int64(d.bs):][:16]
		if string(blk[:8]) != PartitionSignature || binary.LittleEndian.Uint32(blk[8:]) != uint32(b) {
			return 0, errors.New("wrong signature written")
		}
		d.written[b]++
	}
	return len(p), nil
}

func TestFormatNormal64GiB(t *testing.T) {
	const size = 64 << 30
	d := &countingDevice{bs: 4096, size: size, written: map[int64]int{}}
	blocks := uint64(size / 4096)
	require.NoError(t, FormatNormal(d, d, blocks, defaultFP, false, nil))
	// 16384 grid chunks of 4 blocks (block 0 excluded) = 65535 blocks, plus
	// the device's tail chunk: 1/256 of the device and 3 blocks.
	assert.Len(t, d.written, 65539)
	assert.LessOrEqual(t, uint64(len(d.written)), blocks/256+4)
	for b, n := range d.written {
		if n != 1 || b == 0 {
			t.Fatalf("block %d written %d times", b, n)
		}
	}
	for _, b := range []int64{1, 2, 3, 1024, 1027, int64(blocks) - 1024, int64(blocks) - 4, int64(blocks) - 1} {
		assert.Contains(t, d.written, b)
	}
	assert.NotContains(t, d.written, int64(4))
	assert.NotContains(t, d.written, int64(1028))
}

func TestFormatWriteError(t *testing.T) {
	const blocks = 1100
	img := formatted(t, blocks, defaultFP)
	for _, all := range []bool{false, true} {
		dev := blockdevtest.NewFaultDevice(bytes.Clone(img))
		dev.FailWrite = blockdevtest.BadRange(1024*4096, 1025*4096)
		err := FormatNormal(dev, dev, blocks, defaultFP, all, nil)
		assert.ErrorIs(t, err, syscall.EIO, "all=%v", all)
		assert.ErrorIs(t, FormatInitial(dev, blocks, defaultFP, nil), syscall.EIO)
	}
	dev := blockdevtest.NewFaultDevice(bytes.Clone(img))
	dev.FailRead = blockdevtest.BadRange(0, 1)
	assert.ErrorIs(t, FormatNormal(dev, dev, blocks, defaultFP, false, nil), syscall.EIO)
	_, err := CheckPartition(dev, int64(len(img)), defaultFP)
	assert.ErrorIs(t, err, syscall.EIO)
	dev.FailRead = blockdevtest.BadRange(1024*4096, 1024*4096+1)
	_, err = CheckPartition(dev, int64(len(img)), defaultFP)
	assert.ErrorIs(t, err, syscall.EIO, "sampled block unreadable")
}

// swapHeader makes block 0 a version-1 swap header for a device of blocks
// blocks, as mkswap writes it.
func swapHeader(img []byte, bs int, order binary.ByteOrder, lastPage uint32) {
	clear(img[:bs])
	order.PutUint32(img[1024:], 1)
	order.PutUint32(img[1028:], lastPage)
	copy(img[bs-10:bs], "SWAPSPACE2")
}

func dumpHeaderBlock(t testing.TB, bs int, a Arch, devBlocks uint32) []byte {
	h := &Header{Layout: LayoutOf(a), Signature: DumpSignature, Utsname: Utsname{Sysname: "Linux", Nodename: "node", Release: "2.6.9-89.ELsmp", Version: "#1 SMP", Machine: a.Machine()},
		Sec: 1246291200, Frac: 5, Status: StatusCompleted | StatusCompressed, BlockSize: int32(bs), SubHdrSize: 1, BitmapBlocks: 2, MaxMapnr: 4096,
		TotalRAMBlocks: 4000, DeviceBlocks: devBlocks, WrittenBlocks: 1000, NrCPUs: 2, CurrentCPU: 1, Tasks: []uint64{0x1000, 0x2000}}
	b, err := h.EncodeBlock(bs)
	require.NoError(t, err)
	return b
}

func TestCheckPartition(t *testing.T) {
	const blocks = 1100
	bs := 4096
	le := binary.LittleEndian
	tests := []struct {
		name     string
		blocks   uint64
		fp       FormatParams
		prepare  func(img []byte)
		want     CheckStatus
		firstBad int64
	}{
		{"zeroed", blocks, defaultFP, func(img []byte) { clear(img) }, CheckNeedsInitial, -1},
		{"formatted", blocks, defaultFP, nil, CheckReady, -1},
		{"sampled block damaged", blocks, defaultFP, func(img []byte) { damage(img, 1024, bs); damage(img, 1099, bs) }, CheckNeedsFormat, 1024},
		{"block 1 damaged", blocks, defaultFP, func(img []byte) { damage(img, 1, bs) }, CheckNeedsFormat, 1},
		{"block 2 is never checked", blocks, defaultFP, func(img []byte) { damage(img, 2, bs) }, CheckReady, -1},
		{"unsampled block damaged", blocks, defaultFP, func(img []byte) { damage(img, 5, bs); damage(img, 1095, bs) }, CheckReady, -1},
		{"bytes 4-7 are not checked", blocks, defaultFP, func(img []byte) { copy(img[1024*4096+4:], "XXXX") }, CheckReady, -1},
		{"block 0 damaged", blocks, defaultFP, func(img []byte) { damage(img, 0, bs) }, CheckNeedsInitial, -1},
		{"big-endian partition checked as little-endian", blocks, defaultFP, func(img []byte) {
			require.NoError(t, FormatInitial(memfile.New(img), blocks, FormatParams{BlockSize: 4096, Order: binary.BigEndian}, nil))
		}, CheckNeedsInitial, -1},
		{"tail of the device sampled besides total_blocks", blocks, withTotal(defaultFP, 1060), func(img []byte) { damage(img, 1099, bs) }, CheckNeedsFormat, 1099},
		{"grid beyond total_blocks is sampled", blocks, withTotal(defaultFP, 1000), func(img []byte) { damage(img, 1025, bs) }, CheckNeedsFormat, 1025},
		{"block between the tails not sampled", blocks, withTotal(defaultFP, 1060), func(img []byte) { damage(img, 1070, bs) }, CheckReady, -1},
		{"tail of a recorded dump size sampled", blocks, withAlso(defaultFP, 700), func(img []byte) { damage(img, 697, bs) }, CheckNeedsFormat, 697},
		{"tail of total_blocks sampled", blocks, withTotal(defaultFP, 1060), func(img []byte) { damage(img, 1059, bs) }, CheckNeedsFormat, 1059},
		{"holds a dump", blocks, defaultFP, func(img []byte) { copy(img[bs:], dumpHeaderBlock(t, bs, ArchX86_64, blocks)) }, CheckHoldsDump, -1},
		{"holds a dump, block 0 zeroed", blocks, defaultFP, func(img []byte) {
			clear(img[:bs])
			copy(img[bs:], dumpHeaderBlock(t, bs, ArchX86_64, blocks))
		}, CheckHoldsDump, -1},
		{"swap", blocks, defaultFP, func(img []byte) { clear(img); swapHeader(img, bs, le, blocks-1) }, CheckSwap, -1},
		{"swap holding a dump", blocks, defaultFP, func(img []byte) {
			swapHeader(img, bs, le, blocks-1)
			copy(img[bs:], dumpHeaderBlock(t, bs, ArchX86_64, blocks))
		}, CheckSwapDump, -1},
		{"swap of another size is not swap", blocks, defaultFP, func(img []byte) { clear(img); swapHeader(img, bs, le, blocks) }, CheckNeedsInitial, -1},
		{"swap version 0 is not swap", blocks, defaultFP, func(img []byte) {
			clear(img)
			swapHeader(img, bs, le, blocks-1)
			le.PutUint32(img[1024:], 0)
		}, CheckNeedsInitial, -1},
		{"big-endian formatted", blocks, FormatParams{BlockSize: 4096, Order: binary.BigEndian, BlockOrder: 2, SampleRate: 8}, func(img []byte) {
			require.NoError(t, FormatInitial(memfile.New(img), blocks, FormatParams{BlockSize: 4096, Order: binary.BigEndian}, nil))
		}, CheckReady, -1},
		{"big-endian swap", blocks, FormatParams{BlockSize: 4096, Order: binary.BigEndian, BlockOrder: 2, SampleRate: 8}, func(img []byte) {
			clear(img)
			swapHeader(img, bs, binary.BigEndian, blocks-1)
		}, CheckSwap, -1},
		{"too small for blocks 0-2", 2, defaultFP, func(img []byte) { clear(img) }, CheckUnsuitable, -1},
		{"formatted but too small for two bitmaps", 4, defaultFP, nil, CheckUnsuitable, -1},
		{"formatted, total_blocks needs bitmaps the device lacks", 600, withTotal(defaultFP, 20_000_000), nil, CheckUnsuitable, -1},
		{"formatted, smaller than total_blocks but usable", blocks, withTotal(defaultFP, 20_000), nil, CheckReady, -1},
		{"too small but needs initial format", 4, defaultFP, func(img []byte) { clear(img) }, CheckNeedsInitial, -1},
	}
	cache := map[uint64][]byte{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := image(tc.blocks, bs, 0)
			if tc.blocks >= 3 {
				if _, ok := cache[tc.blocks]; !ok {
					cache[tc.blocks] = formatted(t, tc.blocks, defaultFP)
				}
				copy(img, cache[tc.blocks])
			}
			if tc.prepare != nil {
				tc.prepare(img)
			}
			before := bytes.Clone(img)
			res, err := CheckPartition(bytes.NewReader(img), int64(len(img)), tc.fp)
			require.NoError(t, err)
			assert.Equal(t, tc.want, res.Status, res.Reason)
			assert.Equal(t, tc.firstBad, res.FirstBad)
			assert.NotEmpty(t, res.Reason)
			assert.Equal(t, tc.blocks, res.DeviceBlocks)
			assert.Equal(t, before, img)
			if tc.want == CheckHoldsDump || tc.want == CheckSwapDump {
				require.NoError(t, res.HeaderErr)
				require.NotNil(t, res.Header)
				assert.Equal(t, "node", res.Header.Utsname.Nodename)
				assert.Equal(t, uint32(1000), res.Header.WrittenBlocks)
			} else {
				assert.Nil(t, res.Header)
			}
			if tc.want == CheckReady {
				assert.Positive(t, res.Sampled)
				assert.Zero(t, res.Bad)
			}
		})
	}
}

func withAlso(fp FormatParams, totals ...uint64) FormatParams {
	for _, v := range totals {
		fp.Also = append(fp.Also, SampleSize{Blocks: v, Source: SizeFromDump})
	}
	return fp
}

func TestCheckPartitionSampledCount(t *testing.T) {
	// doc/FORMAT.md §3.2: 262042 blocks give 257 chunks of 4; block 2 is skipped.
	const blocks = 262042
	d := &countingDevice{bs: 4096, size: blocks * 4096}
	// Only block 0 is valid on this device: every other sampled block is bad.
	res, err := CheckPartition(d, d.size, defaultFP)
	require.NoError(t, err)
	assert.Equal(t, CheckNeedsFormat, res.Status)
	assert.Equal(t, uint64(257*4-1), res.Sampled)
	assert.Equal(t, uint64(257*4-2), res.Bad)
	assert.Equal(t, int64(1), res.FirstBad)
}

func TestCheckPartitionBadHeader(t *testing.T) {
	img := formatted(t, 1100, defaultFP)
	copy(img[4096:], "DISKDUMP") // signature, garbage after it
	res, err := CheckPartition(bytes.NewReader(img), int64(len(img)), defaultFP)
	require.NoError(t, err)
	assert.Equal(t, CheckHoldsDump, res.Status)
	assert.Nil(t, res.Header)
	var fe *FormatError
	assert.ErrorAs(t, res.HeaderErr, &fe)
}

func TestCheckPartitionOtherBlockSize(t *testing.T) {
	// An ia64 dump (16 KiB blocks) checked with x86_64 parameters: the
	// first 4 KiB of its block 0 look like a valid 4 KiB block 0.
	ia64 := FormatParams{BlockSize: 16384, Order: binary.LittleEndian, BlockOrder: 2, SampleRate: 8}
	const blocks = 300
	img := formatted(t, blocks, ia64)
	res, err := CheckPartition(bytes.NewReader(img), int64(len(img)), defaultFP)
	require.NoError(t, err)
	require.Equal(t, CheckNeedsFormat, res.Status, "no dump: block 1 of 4 KiB is part of block 0")

	copy(img[16384:], dumpHeaderBlock(t, 16384, ArchIA64, blocks))
	res, err = CheckPartition(bytes.NewReader(img), int64(len(img)), defaultFP)
	require.NoError(t, err)
	assert.Equal(t, CheckHoldsDump, res.Status)
	require.NotNil(t, res.Header)
	assert.Equal(t, int32(16384), res.Header.BlockSize)
	assert.Equal(t, "ia64", res.Header.Utsname.Machine)

	// A header naming another block size is not taken for a dump.
	img = formatted(t, blocks, ia64)
	copy(img[16384:], dumpHeaderBlock(t, 8192, ArchIA64, blocks))
	res, err = CheckPartition(bytes.NewReader(img), int64(len(img)), defaultFP)
	require.NoError(t, err)
	assert.Equal(t, CheckNeedsFormat, res.Status)
	assert.Nil(t, res.Header)
}

func TestInvalidateDump(t *testing.T) {
	const blocks = 1100
	bs := 4096
	t.Run("dedicated", func(t *testing.T) {
		img := formatted(t, blocks, defaultFP)
		copy(img[bs:], dumpHeaderBlock(t, bs, ArchX86_64, blocks))
		res, err := CheckPartition(bytes.NewReader(img), int64(len(img)), defaultFP)
		require.NoError(t, err)
		require.Equal(t, CheckHoldsDump, res.Status)
		require.NoError(t, InvalidateDump(memfile.New(img), bs, binary.LittleEndian, false))
		assert.True(t, IsSignatureBlock(img[bs:2*bs], 1, binary.LittleEndian))
		res, err = CheckPartition(bytes.NewReader(img), int64(len(img)), defaultFP)
		require.NoError(t, err)
		assert.Equal(t, CheckReady, res.Status)
	})
	t.Run("swap", func(t *testing.T) {
		img := image(blocks, bs, 0)
		swapHeader(img, bs, binary.LittleEndian, blocks-1)
		copy(img[bs:], dumpHeaderBlock(t, bs, ArchX86_64, blocks))
		block0 := bytes.Clone(img[:bs])
		require.NoError(t, InvalidateDump(memfile.New(img), bs, binary.LittleEndian, true))
		assert.Equal(t, make([]byte, bs), img[bs:2*bs])
		assert.Equal(t, block0, img[:bs], "swap header kept")
		res, err := CheckPartition(bytes.NewReader(img), int64(len(img)), defaultFP)
		require.NoError(t, err)
		assert.Equal(t, CheckSwap, res.Status)
	})
	t.Run("16 KiB big-endian", func(t *testing.T) {
		img := image(4, 16384, 0)
		require.NoError(t, InvalidateDump(memfile.New(img), 16384, binary.BigEndian, false))
		assert.True(t, IsSignatureBlock(img[16384:32768], 1, binary.BigEndian))
		assert.Equal(t, make([]byte, 16384), img[:16384])
	})
	t.Run("errors", func(t *testing.T) {
		img := image(4, 4096, 0)
		assert.ErrorIs(t, InvalidateDump(memfile.New(img), 1000, binary.LittleEndian, false), ErrUnsupportedVersion)
		assert.ErrorIs(t, InvalidateDump(memfile.New(img), 4096, nil, false), ErrUnsupportedVersion)
		dev := blockdevtest.NewFaultDevice(img)
		dev.FailWrite = blockdevtest.BadRange(4096, 4097)
		assert.ErrorIs(t, InvalidateDump(dev, 4096, binary.LittleEndian, false), syscall.EIO)
	})
}

func TestCheckStatusString(t *testing.T) {
	for s := CheckReady; s <= CheckMounted; s++ {
		assert.NotContains(t, s.String(), "CheckStatus(")
	}
	assert.Equal(t, "needs initial format", CheckNeedsInitial.String())
	assert.Equal(t, "CheckStatus(9)", CheckStatus(9).String())
}

func TestFormattedBlock0IsNotProbedAsSomethingElse(t *testing.T) {
	// The signature of block 0 must not contain a swap magic.
	for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, bs := range []int{4096, 16384} {
			b := make([]byte, bs)
			FillSignature(b, 0, o)
			assert.False(t, IsSwapHeader(b, bs, o, 100))
		}
	}
}

func FuzzCheckPartition(f *testing.F) {
	const blocks = 8
	bs := 4096
	img := formatted(f, blocks, defaultFP)
	f.Add(bytes.Clone(img))
	copy(img[bs:], dumpHeaderBlock(f, bs, ArchX86_64, blocks))
	f.Add(bytes.Clone(img))
	swapHeader(img, bs, binary.LittleEndian, blocks-1)
	f.Add(bytes.Clone(img))
	f.Add(img[:3*bs])
	f.Add([]byte("diskdump"))
	// The first blocks of partitions holding dumps from the writer, raw and
	// compressed.
	for _, compress := range []bool{false, true} {
		const devBlocks = 600
		part := formatted(f, devBlocks, defaultFP)
		part, _, err := writeTestDump(part, devBlocks, TestDump{Arch: ArchX86_64, MemBytes: 2 << 20, Seed: 3, Compress: compress})
		require.NoError(f, err)
		f.Add(part[:8*bs])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fp := range []FormatParams{defaultFP, withTotal(defaultFP, 5)} {
			res, err := CheckPartition(bytes.NewReader(data), int64(len(data)), fp)
			require.NoError(t, err)
			require.GreaterOrEqual(t, res.Status, CheckReady)
			require.Less(t, res.Status, CheckMounted)
			if res.Header != nil {
				hbs := int(res.Header.BlockSize)
				b, err := res.Header.EncodeBlock(hbs)
				require.NoError(t, err)
				h2, err := ParseHeader(b, HeaderCheck{DeviceBlocks: uint64(len(data) / hbs), BaseOff: int64(hbs), BaseBlk: 1})
				require.NoError(t, err)
				require.Equal(t, res.Header, h2)
			}
		}
	})
}
