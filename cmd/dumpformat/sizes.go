package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
)

// addRecorded adds the total_blocks values of the block 2 record (doc/FORMAT.md
// §3.3) to the sizes a format writes and a check checks. A damaged record
// is ignored with a debug message: it is only ever an addition.
func (c *command) addRecorded(r io.ReaderAt) error {
	u, bad, err := diskdump.ReadUserParams(r, c.fp.BlockSize)
	if errors.Is(err, diskdump.ErrTruncated) {
		return nil // no block 2: the check says the device is too small
	}
	if err != nil {
		return err
	}
	if bad != nil {
		c.log.Debug("block 2 record ignored", "err", bad)
	}
	if u != nil {
		c.fp.Also = append(c.fp.Also, u.Sizes...)
		c.log.Debug("block 2 record", "sizes", u.Sizes)
	}
	return nil
}

// record is the block 2 record a format leaves: the recorded sizes, then
// the module's or the command line's total_blocks, most recent first.
func (c *command) record() *diskdump.UserParams {
	u := &diskdump.UserParams{}
	for i := len(c.fp.Also) - 1; i >= 0; i-- {
		u.Add(c.fp.Also[i])
	}
	if c.fp.TotalBlocks != 0 {
		u.Add(diskdump.SampleSize{Blocks: c.fp.TotalBlocks, Source: c.fp.TotalFrom})
	}
	return u
}

// writeRecord writes the block 2 record when there is anything to keep.
func (c *command) writeRecord(dev *blockdev.Device) error {
	u := c.record()
	if len(u.Sizes) == 0 {
		return nil
	}
	// Direct I/O needs aligned buffers; the record is one block.
	if err := dev.SetDirect(false); err != nil {
		return err
	}
	return diskdump.WriteUserParams(dev, c.fp.BlockSize, c.fp.Order, u)
}

// strict reports whether the module dumps in strict mode (doc/FORMAT.md §3.2,
// §3.4): dump_level 0 and compress 0, known only when the module is loaded.
func (c *command) strict() bool {
	return c.mp.HasDumpLevel && c.mp.HasCompress && c.mp.DumpLevel == 0 && c.mp.Compress == 0
}

// strictTooSmall turns a ready verdict into "not suitable" when the loaded
// module dumps in strict mode and its total_blocks exceeds the device:
// the kernel then samples past the device's end and refuses it
// (doc/FORMAT.md §3.2).
func (c *command) strictTooSmall(res *diskdump.CheckResult) {
	if res.Status != diskdump.CheckReady || !c.strict() || c.fp.TotalFrom != diskdump.SizeFromModule || c.fp.TotalBlocks <= res.DeviceBlocks {
		return
	}
	res.Status = diskdump.CheckUnsuitable
	res.Reason = fmt.Sprintf("the module dumps whole memory (dump_level 0, compress 0) and needs %d blocks, the device has %d: the kernel would refuse it (use compress or dump_level)",
		c.fp.TotalBlocks, res.DeviceBlocks)
}

// sizeJSON is one partition_size a check covered.
type sizeJSON struct {
	Blocks uint64 `json:"blocks"`
	From   string `json:"from"`
}

// tailJSON is the tail chunk of one partition_size.
type tailJSON struct {
	PartitionBlocks uint64 `json:"partition_blocks"`
	From            string `json:"from"`
	First           uint64 `json:"first_block"`
	Count           uint64 `json:"count"`
	Bad             uint64 `json:"bad_blocks"`
}

// sizeSource says where a partition_size came from, for people.
func (c *command) sizeSource(src string) string {
	switch src {
	case diskdump.SizeFromDevice:
		return "device size"
	case diskdump.SizeFromModule:
		return "module total_blocks (" + c.params + ")"
	case diskdump.SizeFromUser:
		return "--total-blocks"
	case diskdump.SizeFromDump:
		return "total_blocks of the last saved dump (block 2)"
	}
	return src + " (block 2)"
}

func sizesJSON(res *diskdump.CheckResult) []sizeJSON {
	var out []sizeJSON
	for _, s := range res.Sizes {
		out = append(out, sizeJSON{Blocks: s.Blocks, From: s.Source})
	}
	return out
}

func tailsJSON(res *diskdump.CheckResult) []tailJSON {
	var out []tailJSON
	for _, t := range res.Tails {
		out = append(out, tailJSON{PartitionBlocks: t.Size.Blocks, From: t.Size.Source, First: t.Chunk.Blk, Count: t.Chunk.N, Bad: t.Bad})
	}
	return out
}

// sizesSummary adds the partition sizes and tail chunks to -c -v.
func (c *command) sizesSummary(b *strings.Builder, res *diskdump.CheckResult) {
	for _, s := range res.Sizes {
		fmt.Fprintf(b, "  partition:   %d blocks: %s\n", s.Blocks, c.sizeSource(s.Source))
	}
	for _, t := range res.Tails {
		state := "valid"
		if t.Bad > 0 {
			state = fmt.Sprintf("%d bad", t.Bad)
		}
		fmt.Fprintf(b, "  tail chunk:  blocks %d-%d of partition_size %d (%s): %s\n", t.Chunk.Blk, t.Chunk.Blk+t.Chunk.N-1,
			t.Size.Blocks, c.sizeSource(t.Size.Source), state)
	}
}
