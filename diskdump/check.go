package diskdump

import (
	"bytes"
	"fmt"
	"io"
)

// CheckStatus is the result of checking a partition, numbered like the exit
// codes of diskdumpfmt -c (doc/FORMAT.md §11.1).
type CheckStatus int

// Check results.
const (
	CheckReady        CheckStatus = 0 // formatted, no dump: nothing to do
	CheckHoldsDump    CheckStatus = 1 // block 1 holds a dump header
	CheckNeedsInitial CheckStatus = 2 // block 0 carries no signature: format with -f
	CheckNeedsFormat  CheckStatus = 3 // block 0 valid, some sampled block is not
	CheckUnsuitable   CheckStatus = 4 // not usable: unreadable or too small
	CheckSwap         CheckStatus = 5 // a swap partition the kernel can dump to
	CheckSwapDump     CheckStatus = 6 // a swap partition holding a dump
	CheckMounted      CheckStatus = 7 // mounted or in use (decided by the caller)
)

var checkStatusNames = [...]string{
	CheckReady:        "ready",
	CheckHoldsDump:    "holds a dump",
	CheckNeedsInitial: "needs initial format",
	CheckNeedsFormat:  "needs format",
	CheckUnsuitable:   "not suitable",
	CheckSwap:         "swap partition",
	CheckSwapDump:     "swap partition holding a dump",
	CheckMounted:      "mounted or in use",
}

// String says the status in words, as dumpformat -c prints it.
func (s CheckStatus) String() string {
	if s >= 0 && int(s) < len(checkStatusNames) {
		return checkStatusNames[s]
	}
	return fmt.Sprintf("CheckStatus(%d)", int(s))
}

// CheckResult is what CheckPartition found.
type CheckResult struct {
	Status CheckStatus
	Reason string // one line saying why, for messages

	BlockSize       int
	DeviceBlocks    uint64 // device size in blocks (truncated, like the kernel)
	PartitionBlocks uint64 // blocks the kernel samples: min(total_blocks, device)
	TotalBlocks     uint64 // total_blocks of the parameters, 0 if unknown
	MinBlocks       uint64 // smallest usable device: header_blocks + 2*ram_bitmap_blocks

	Swap        bool   // block 0 is a swap header (doc/FORMAT.md §3.4 tests 1-3)
	Block0Valid bool   // block 0 carries the signature of block 0
	Sampled     uint64 // blocks whose signature was checked (block 2 excluded)
	Bad         uint64 // of those, blocks with a bad signature
	FirstBad    int64  // first bad sampled block, -1 if none
	// Sizes are the partition sizes checked (FormatParams.Sizes), Tails
	// their tail chunks with the bad blocks of each.
	Sizes []SampleSize
	Tails []Tail

	// Header is block 1's dump header when it holds a dump and decodes;
	// HeaderErr says why a "DISKDUMP" block 1 did not decode.
	Header    *Header
	HeaderErr error
}

// minBlocksFor is the smallest device that can take a dump when the module
// says a full dump needs total blocks: header blocks plus two RAM bitmaps
// (doc/FORMAT.md §11.1, status 4). total = 3 + R + RAM with RAM <= 8*B*R, so R is at
// least (total-3)/(8*B+1); with total unknown, R is at least 1.
func minBlocksFor(total uint64, blockSize int) uint64 {
	const headerBlocks = 3
	r := uint64(1)
	if total > headerBlocks {
		per := 8*uint64(blockSize) + 1
		r = max(1, (total-headerBlocks+per-1)/per)
	}
	return headerBlocks + 2*r
}

// CheckPartition decides the diskdumpfmt -c status of a partition of size
// bytes (doc/FORMAT.md §11.1), everything except "mounted", which needs the host and
// is the caller's: swap (5, or 6 with a dump), holds a dump (1), block 0
// without signature (2), a kernel-sampled block without signature (3),
// too small (4), else ready (0). Read errors are returned as errors.
func CheckPartition(r io.ReaderAt, size int64, fp FormatParams) (*CheckResult, error) {
	if err := fp.validate(); err != nil {
		return nil, err
	}
	bs := fp.BlockSize
	res := &CheckResult{BlockSize: bs, FirstBad: -1, TotalBlocks: fp.TotalBlocks}
	if size > 0 {
		res.DeviceBlocks = uint64(size) / uint64(bs)
	}
	res.PartitionBlocks = fp.partitionBlocks(res.DeviceBlocks)
	res.MinBlocks = minBlocksFor(fp.TotalBlocks, bs)
	if res.DeviceBlocks < minFormatBlocks {
		res.Status = CheckUnsuitable
		res.Reason = fmt.Sprintf("%d bytes cannot hold blocks 0-2 of %d bytes", size, bs)
		return res, nil
	}
	head := make([]byte, 2*bs)
	if err := readAtFull(r, head, 0); err != nil {
		return nil, err
	}
	b0, b1 := head[:bs], head[bs:]
	res.Swap = IsSwapHeader(b0, bs, fp.Order, res.DeviceBlocks)
	res.Block0Valid = CheckSignature(b0, 0, fp.Order)
	holdsDump := bytes.HasPrefix(b1, []byte(DumpSignature))
	if holdsDump {
		res.Header, res.HeaderErr = ParseHeader(b1, HeaderCheck{DeviceBlocks: res.DeviceBlocks, BaseOff: int64(bs), BaseBlk: 1})
	} else if h, err := otherBlockSizeDump(r, size, bs); err != nil {
		return nil, err
	} else if h != nil {
		holdsDump, res.Header = true, h
	}
	switch {
	case res.Swap && holdsDump:
		res.Status, res.Reason = CheckSwapDump, "block 0 is a swap header and block 1 holds a dump header"
		return res, nil
	case res.Swap:
		res.Status, res.Reason = CheckSwap, "block 0 is a swap header the kernel accepts"
		return res, nil
	case holdsDump:
		res.Status, res.Reason = CheckHoldsDump, "block 1 holds a dump header"
		return res, nil
	case !res.Block0Valid:
		res.Status, res.Reason = CheckNeedsInitial, "block 0 carries no diskdump signature"
		return res, nil
	}
	if err := checkSampled(r, res, fp); err != nil {
		return nil, err
	}
	if res.Bad > 0 {
		res.Status = CheckNeedsFormat
		res.Reason = fmt.Sprintf("%d of %d sampled blocks carry no valid signature, the first is block %d", res.Bad, res.Sampled, res.FirstBad)
		return res, nil
	}
	if res.DeviceBlocks < res.MinBlocks {
		res.Status = CheckUnsuitable
		res.Reason = fmt.Sprintf("%d blocks are fewer than the %d that headers and bitmaps need", res.DeviceBlocks, res.MinBlocks)
		return res, nil
	}
	res.Status, res.Reason = CheckReady, fmt.Sprintf("block 0 and all %d sampled blocks carry valid signatures", res.Sampled)
	return res, nil
}

// dumpBlockSizes are the page sizes of kernels that may have written a dump.
var dumpBlockSizes = []int{4096, 8192, 16384, 65536}

// otherBlockSizeDump looks for a dump written with a block size other than
// the one being checked (an ia64 dump checked with x86_64 parameters): a
// dump header in block 1 of that size that decodes and names that block
// size. A dump is a dump whatever the parameters of the check.
func otherBlockSizeDump(r io.ReaderAt, size int64, bs int) (*Header, error) {
	for _, alt := range dumpBlockSizes {
		if alt == bs || size < 3*int64(alt) {
			continue
		}
		b := make([]byte, alt)
		if err := readAtFull(r, b, int64(alt)); err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(b, []byte(DumpSignature)) {
			continue
		}
		h, err := ParseHeader(b, HeaderCheck{DeviceBlocks: uint64(size) / uint64(alt), BaseOff: int64(alt), BaseBlk: 1})
		if err == nil && int(h.BlockSize) == alt {
			return h, nil
		}
	}
	return nil, nil
}

// checkSampled checks the signature of every block the kernel may sample
// at the next panic, whatever partition_size of FormatParams.Sizes it
// uses, except block 2, which the kernel accepts unconditionally
// (doc/FORMAT.md §3.1, §3.2).
func checkSampled(r io.ReaderAt, res *CheckResult, fp FormatParams) error {
	bs := uint64(fp.BlockSize)
	per := uint64(formatIOBytes) / bs
	var buf []byte
	res.Sizes = fp.Sizes(res.DeviceBlocks)
	res.Tails = fp.tails(res.DeviceBlocks)
	for c := range fp.checkedChunks(res.DeviceBlocks) {
		for blk, end := c.Blk, c.Blk+c.N; blk < end; {
			n := min(end-blk, per)
			if need := int(n * bs); cap(buf) < need {
				buf = make([]byte, need)
			}
			b := buf[:n*bs]
			if err := readAtFull(r, b, int64(blk*bs)); err != nil {
				return err
			}
			for i := range n {
				if blk+i == 2 {
					continue
				}
				res.Sampled++
				if !CheckSignature(b[i*bs:(i+1)*bs], blk+i, fp.Order) {
					res.Bad++
					if res.FirstBad < 0 {
						res.FirstBad = int64(blk + i)
					}
					for t := range res.Tails {
						if c := res.Tails[t].Chunk; blk+i >= c.Blk && blk+i < c.Blk+c.N {
							res.Tails[t].Bad++
						}
					}
				}
			}
			blk += n
		}
	}
	return nil
}
