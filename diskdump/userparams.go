package diskdump

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

// UserParamsMagic starts dumpkit's record in block 2, the user parameter
// block the kernel never checks (doc/FORMAT.md §3.3). It cannot be mistaken for
// the format signature ("disk…") or a dump header ("DISKDUMP").
const UserParamsMagic = "dumpkitP"

// userParamsVersion is the layout version of the record.
const userParamsVersion = 1

// MaxRecordedSizes bounds the total_blocks values the record keeps.
const MaxRecordedSizes = 8

// Sources of a recorded total_blocks value.
const (
	SizeFromDump   = "dump"   // the dump header of a dump saved from the partition
	SizeFromModule = "module" // the loaded module's total_blocks
	SizeFromUser   = "option" // given on a command line (--total-blocks)
	SizeFromDevice = "device" // the size of the device itself
	SizeFromBlock2 = "block 2"
)

// SampleSize is one partition_size the kernel may sample with at the next
// panic (doc/FORMAT.md §3.2), and where the value comes from.
type SampleSize struct {
	Blocks uint64
	Source string // SizeFromDump, SizeFromModule, ...
}

// UserParams is dumpkit's record in block 2 (doc/FORMAT.md §3.3): the
// total_blocks values a panic may sample with, most recent first, so that
// a later format or check knows them while no module is loaded.
//
// Layout (little-endian whatever the machine): magic "dumpkitP"; u32
// version (1); u32 count n (at most MaxRecordedSizes); n entries of u64
// total_blocks and u8[8] source (NUL-padded); u32 CRC-32 (IEEE) of every
// byte before it. The rest of the block is left as the signature pattern.
type UserParams struct {
	Sizes []SampleSize
}

const (
	userParamsHead  = 16 // magic, version, count
	userParamsEntry = 16 // total_blocks, source
)

// Add puts s first, dropping an older entry of the same value and the
// oldest ones beyond MaxRecordedSizes. A zero value is ignored.
func (u *UserParams) Add(s SampleSize) {
	if s.Blocks == 0 {
		return
	}
	u.Sizes = slices.DeleteFunc(u.Sizes, func(e SampleSize) bool { return e.Blocks == s.Blocks })
	u.Sizes = append([]SampleSize{s}, u.Sizes...)
	if len(u.Sizes) > MaxRecordedSizes {
		u.Sizes = u.Sizes[:MaxRecordedSizes]
	}
}

// Encode returns block 2 holding the record: the signature of block 2 with
// the record over its start. blockSize must be a valid block size.
func (u *UserParams) Encode(blockSize int, order binary.ByteOrder) []byte {
	b := make([]byte, blockSize)
	FillSignature(b, 2, order)
	n := min(len(u.Sizes), MaxRecordedSizes)
	copy(b, UserParamsMagic)
	binary.LittleEndian.PutUint32(b[8:], userParamsVersion)
	binary.LittleEndian.PutUint32(b[12:], uint32(n))
	off := userParamsHead
	for _, s := range u.Sizes[:n] {
		binary.LittleEndian.PutUint64(b[off:], s.Blocks)
		src := make([]byte, 8)
		copy(src, s.Source)
		copy(b[off+8:], src)
		off += userParamsEntry
	}
	binary.LittleEndian.PutUint32(b[off:], crc32.ChecksumIEEE(b[:off]))
	return b
}

// DecodeUserParams reads the record from the bytes of block 2. A block
// without the magic (a signature, a sub-header, anything else) gives nil
// and no error; a record whose version, count or checksum is wrong gives
// an error naming the field and ErrCorrupt. Both mean: no record.
func DecodeUserParams(b []byte) (*UserParams, error) {
	if len(b) < userParamsHead || !bytes.HasPrefix(b, []byte(UserParamsMagic)) {
		return nil, nil
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != userParamsVersion {
		return nil, &FormatError{Off: 8, Blk: 2, Field: "version", Msg: fmt.Sprintf("user parameter record version %d, want %d", v, userParamsVersion), Err: ErrCorrupt}
	}
	n := binary.LittleEndian.Uint32(b[12:])
	end := userParamsHead + int(min(n, MaxRecordedSizes+1))*userParamsEntry
	if n > MaxRecordedSizes || end+4 > len(b) {
		return nil, &FormatError{Off: 12, Blk: 2, Field: "count", Msg: fmt.Sprintf("user parameter record of %d entries", n), Err: ErrCorrupt}
	}
	if got, want := binary.LittleEndian.Uint32(b[end:]), crc32.ChecksumIEEE(b[:end]); got != want {
		return nil, &FormatError{Off: int64(end), Blk: 2, Field: "crc", Msg: fmt.Sprintf("user parameter record checksum %#x, want %#x", got, want), Err: ErrCorrupt}
	}
	u := &UserParams{}
	for off := userParamsHead; off < end; off += userParamsEntry {
		src := string(bytes.TrimRight(b[off+8:off+16], "\x00"))
		u.Sizes = append(u.Sizes, SampleSize{Blocks: binary.LittleEndian.Uint64(b[off:]), Source: src})
	}
	return u, nil
}

// ReadUserParams reads the record from block 2 of a partition; see
// DecodeUserParams. Only read errors are returned as errors; a damaged
// record is returned as (nil, nil) and reported through bad.
func ReadUserParams(r io.ReaderAt, blockSize int) (u *UserParams, bad error, err error) {
	b := make([]byte, blockSize)
	if err := readAtFull(r, b, 2*int64(blockSize)); err != nil {
		return nil, nil, err
	}
	u, bad = DecodeUserParams(b)
	return u, bad, nil
}

// WriteUserParams writes the record into block 2 of a partition. Block 2
// is never sampled by the kernel, and the next dump overwrites it with its
// sub-header.
func WriteUserParams(w io.WriterAt, blockSize int, order binary.ByteOrder, u *UserParams) error {
	if !ValidBlockSize(int64(blockSize)) {
		return fmt.Errorf("diskdump: user parameters: block size %d is not a power of two from 4096 to 65536: %w", blockSize, ErrUnsupportedVersion)
	}
	return writeFull(w, u.Encode(blockSize, order), 2*int64(blockSize))
}
