package kernel

import (
	"fmt"

	"github.com/dumpkit/dumpkit/diskdump"
)

// checkPartition is what the kernel does before its first write: the size
// check, then check_swap_partition or check_dump_partition. A refusal is
// logged and returned.
func (d *dumpWriter) checkPartition() error {
	g := d.g
	d.console("disk_dump: total blocks required: %d (header %d + bitmap %d + memory %d)",
		g.TotalBlocks(), g.HeaderBlocks(), g.RAMBitmapBlocks, g.RAMBlocks)
	name := d.cfg.DeviceName
	if name == "" {
		name = "dump"
	}
	d.console("start dumping to %s", name)
	if d.devBlocks < g.FirstDataBlock() {
		d.console("disk_dump: dump partition is too small. Aborted")
		d.refused()
		return fmt.Errorf("diskdump: dump partition is too small: %d blocks, headers and bitmaps need %d: %w",
			d.devBlocks, g.FirstDataBlock(), diskdump.ErrTooSmall)
	}
	d.console("check dump partition...")
	if d.checkSwap() {
		return nil
	}
	if err := d.checkSignatures(); err != nil {
		d.console("disk_dump: check partition failed.")
		d.refused()
		return err
	}
	return nil
}

// readBlocks reads n blocks at blk the way the dump driver does: a block
// past the end of the device fails.
func (d *dumpWriter) readBlocks(blk uint64, buf []byte) error {
	n := uint64(len(buf) / d.bs)
	if blk+n > d.devBlocks {
		return &diskdump.FormatError{Off: int64(blk) * int64(d.bs), Blk: int64(blk), Field: "partition", Err: diskdump.ErrTooSmall,
			Msg: fmt.Sprintf("read of blocks %d..%d past the end of the %d-block device", blk, blk+n-1, d.devBlocks)}
	}
	if err := diskdump.ReadFull(d.w, buf, int64(blk)*int64(d.bs)); err != nil {
		return &diskdump.FormatError{Off: int64(blk) * int64(d.bs), Blk: int64(blk), Field: "partition", Msg: "read error", Err: err}
	}
	return nil
}

// checkSwap is check_swap_partition (doc/FORMAT.md §3.4): block 0 is a
// swap header for exactly this device (diskdump.IsSwapHeader) and, in
// strict mode, big enough.
func (d *dumpWriter) checkSwap() bool {
	b := make([]byte, d.bs)
	if d.readBlocks(0, b) != nil {
		return false
	}
	if !diskdump.IsSwapHeader(b, d.bs, d.order, d.devBlocks) {
		return false
	}
	// Test 4, strict mode only: last_page (= device blocks - 1) must reach
	// total_blocks.
	return !d.strict || d.devBlocks-1 >= d.g.TotalBlocks()
}

// checkSignatures is check_dump_partition (doc/FORMAT.md §3.2).
func (d *dumpWriter) checkSignatures() error {
	size := d.g.TotalBlocks()
	if !d.strict && d.devBlocks < size {
		size = d.devBlocks
	}
	buf := make([]byte, d.bs<<d.cfg.BlockOrder)
	for c := range diskdump.SampledChunks(size, d.cfg.BlockOrder, d.cfg.SampleRate) {
		b := buf[:c.N*uint64(d.bs)]
		if err := d.readBlocks(c.Blk, b); err != nil {
			d.console("disk_dump: read error on block %d", c.Blk)
			return err
		}
		for i := uint64(0); i < c.N; i++ {
			blk := c.Blk + i
			if blk == 2 {
				continue // the user parameter block is never checked
			}
			if !diskdump.CheckSignature(b[i*uint64(d.bs):(i+1)*uint64(d.bs)], blk, d.order) {
				d.console("disk_dump: bad signature in block %d", blk)
				return &diskdump.FormatError{Off: int64(blk) * int64(d.bs), Blk: int64(blk), Field: "signature",
					Msg: "not a formatted dump partition", Err: diskdump.ErrBadSignature}
			}
		}
	}
	return nil
}
