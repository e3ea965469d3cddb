package savecore

import (
	"encoding/binary"
	"io"
	"log/slog"

	"github.com/dumpkit/dumpkit/diskdump"
)

// readyParams are the format parameters that make a partition ready for
// the next panic whatever partition_size it samples with (doc/FORMAT.md §3.2):
// the device, the module's total_blocks when loaded, and the given
// total_blocks values (the dump just saved, the block 2 record).
func readyParams(bs int, order binary.ByteOrder, mp diskdump.ModuleParams, also []diskdump.SampleSize) diskdump.FormatParams {
	fp := diskdump.FormatParams{BlockSize: bs, Order: order, BlockOrder: mp.BlockOrder, SampleRate: mp.SampleRate, Also: also}
	if mp.HasTotalBlocks {
		fp.TotalBlocks, fp.TotalFrom = mp.TotalBlocks, diskdump.SizeFromModule
	}
	return fp
}

// record is the block 2 record (doc/FORMAT.md §3.3) that keeps the sizes of fp for
// later runs, the first of also most recent.
func record(fp diskdump.FormatParams) *diskdump.UserParams {
	u := &diskdump.UserParams{}
	for i := len(fp.Also) - 1; i >= 0; i-- {
		u.Add(fp.Also[i])
	}
	if fp.TotalBlocks != 0 {
		u.Add(diskdump.SampleSize{Blocks: fp.TotalBlocks, Source: fp.TotalFrom})
	}
	return u
}

// restoreSignatures makes a dedicated partition whose dump was just
// invalidated ready for the next panic: a normal format for the sizes the
// next panic may use, total_blocks of the dump (dumpTotal) included, then
// the block 2 record of those sizes, so that dumpformat knows them later
// with no module loaded.
func restoreSignatures(w io.WriterAt, dev Device, dumpTotal uint64, bs int, order binary.ByteOrder, mp diskdump.ModuleParams, log *slog.Logger) error {
	fp := readyParams(bs, order, mp, []diskdump.SampleSize{{Blocks: dumpTotal, Source: diskdump.SizeFromDump}})
	blocks := uint64(dev.Size()) / uint64(bs)
	if err := diskdump.FormatNormal(w, dev, blocks, fp, false, nil); err != nil {
		return err
	}
	log.Debug("format signatures restored", "sizes", fp.Sizes(blocks))
	return diskdump.WriteUserParams(w, bs, order, record(fp))
}
