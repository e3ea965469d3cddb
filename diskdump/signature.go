package diskdump

import (
	"bytes"
	"encoding/binary"
	"iter"
)

// PartitionSignature is the ASCII pattern diskdumpfmt puts at the start of
// every block of a formatted partition (doc/FORMAT.md §3.1).
const PartitionSignature = "diskdump"

// FillSignature writes the format signature of block blk into buf, whose
// length is the block size (a multiple of 4, at least 12). The pattern is
// "diskdump", then 32-bit words: word[2] = blk, word[i+1] = (word[i]+7)*11
// mod 2^32, in the machine's byte order (doc/FORMAT.md §3.1; the code uses +7, the
// announcement's "+3" is wrong).
func FillSignature(buf []byte, blk uint64, order binary.ByteOrder) {
	copy(buf, PartitionSignature)
	w := uint32(blk)
	n := len(buf) &^ 3
	// Two specialised loops: the generic ByteOrder interface call per word
	// would halve the throughput.
	if order == binary.BigEndian {
		for off := 8; off < n; off += 4 {
			binary.BigEndian.PutUint32(buf[off:], w)
			w = (w + 7) * 11
		}
		return
	}
	for off := 8; off < n; off += 4 {
		binary.LittleEndian.PutUint32(buf[off:], w)
		w = (w + 7) * 11
	}
}

// CheckSignature reports whether buf holds the signature of block blk the
// way the kernel checks it: only the first 4 bytes ("disk") of the ASCII
// part are compared, then words 2 to the end (doc/FORMAT.md §3.1).
func CheckSignature(buf []byte, blk uint64, order binary.ByteOrder) bool {
	if len(buf) < 12 || !bytes.Equal(buf[:4], []byte(PartitionSignature[:4])) {
		return false
	}
	w := uint32(blk)
	n := len(buf) &^ 3
	if order == binary.BigEndian {
		for off := 8; off < n; off += 4 {
			if binary.BigEndian.Uint32(buf[off:]) != w {
				return false
			}
			w = (w + 7) * 11
		}
		return true
	}
	for off := 8; off < n; off += 4 {
		if binary.LittleEndian.Uint32(buf[off:]) != w {
			return false
		}
		w = (w + 7) * 11
	}
	return true
}

// IsSignatureBlock is CheckSignature plus bytes 4-7 ("dump"): a block that
// the formatter wrote and nothing overwrote since.
func IsSignatureBlock(buf []byte, blk uint64, order binary.ByteOrder) bool {
	return len(buf) >= 8 && string(buf[4:8]) == PartitionSignature[4:] && CheckSignature(buf, blk, order)
}

// Chunk is a run of consecutive blocks [Blk, Blk+N).
type Chunk struct {
	Blk uint64
	N   uint64
}

// SampledChunks yields the chunks the kernel reads to check the signatures
// before a dump, for a partition of partitionBlocks blocks (doc/FORMAT.md §3.2):
// chunks of 1<<blockOrder blocks every chunk<<sampleRate blocks, then the
// tail chunk ending at partitionBlocks when the grid's last chunk does not
// reach it. sampleRate < 0 means no check: nothing is yielded.
func SampledChunks(partitionBlocks uint64, blockOrder uint, sampleRate int) iter.Seq[Chunk] {
	return func(yield func(Chunk) bool) {
		if sampleRate < 0 || partitionBlocks == 0 || blockOrder > 30 || sampleRate > 62-int(blockOrder) {
			return
		}
		chunk := uint64(1) << blockOrder
		skip := chunk << uint(sampleRate)
		var blk uint64
		for blk = 0; blk < partitionBlocks; blk += skip {
			if !yield(Chunk{Blk: blk, N: min(chunk, partitionBlocks-blk)}) {
				return
			}
		}
		if blk-skip+chunk < partitionBlocks {
			start := uint64(0)
			if partitionBlocks > chunk {
				start = partitionBlocks - chunk
			}
			yield(Chunk{Blk: start, N: partitionBlocks - start})
		}
	}
}
