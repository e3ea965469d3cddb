package savecore

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"strings"

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
	log.Debug("format signatures restored for the partition sizes {sizes}", "sizes", sizesText(fp.Sizes(blocks)))
	return diskdump.WriteUserParams(w, bs, order, record(fp))
}

// formatOf finds the block size and byte order a partition was formatted
// with from the signature of its block 0 (doc/FORMAT.md §3.1): the largest block
// size whose block 0 checks, since the first bytes of a larger block 0
// hold the signatures of the following smaller blocks instead.
func formatOf(dev Device) (bs int, order binary.ByteOrder, ok bool) {
	b := make([]byte, 65536)
	n, _ := dev.ReadAt(b, 0)
	for _, size := range []int{65536, 16384, 8192, 4096} {
		if n < size {
			continue
		}
		for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			if diskdump.CheckSignature(b[:size], 0, o) {
				return size, o, true
			}
		}
	}
	return 0, nil, false
}

// ensureReady makes sure a device without a dump is ready for the next
// panic, under savecore -D: a device whose block 0 is valid but some block
// the kernel samples is not (an erase cut short after block 1 was
// invalidated: the dump's total_blocks went with its header) gets the
// signature of every block but block 0 rewritten, which is valid for any
// partition_size, and says so in one line. A device that cannot be made
// ready says why. Swap devices are left alone.
func ensureReady(in Input, mp diskdump.ModuleParams, log *slog.Logger) {
	if in.ActiveSwap || mp.SampleRate < 0 {
		return
	}
	bs, order, ok := formatOf(in.Dev)
	if !ok {
		if !isSwap(in.Dev) {
			log.Warn("device not ready for the next panic: block 0 carries no diskdump signature (dumpformat -f)", "device", in.Name)
		}
		return
	}
	var also []diskdump.SampleSize
	if u, _, err := diskdump.ReadUserParams(in.Dev, bs); err == nil && u != nil {
		also = u.Sizes
	}
	fp := readyParams(bs, order, mp, also)
	res, err := diskdump.CheckPartition(in.Dev, in.Dev.Size(), fp)
	switch {
	case err != nil:
		log.Warn("device not ready for the next panic: unreadable", "device", in.Name, "err", err)
		return
	case res.Status == diskdump.CheckReady || res.Status == diskdump.CheckSwap:
		return
	case res.Status != diskdump.CheckNeedsFormat:
		log.Warn("device not ready for the next panic", "device", in.Name, "status", res.Status.String(), "reason", res.Reason)
		return
	}
	w, ok := in.Dev.(io.WriterAt)
	blocks := uint64(in.Dev.Size()) / uint64(bs)
	if ok {
		err = diskdump.FormatNormal(w, in.Dev, blocks, fp, true, nil)
	}
	if ok && err == nil && len(record(fp).Sizes) > 0 {
		err = diskdump.WriteUserParams(w, bs, order, record(fp))
	}
	if f, canFlush := in.Dev.(interface{ Flush() error }); ok && err == nil && canFlush {
		err = f.Flush()
	}
	if !ok || err != nil {
		log.Warn("device not ready for the next panic: "+res.Reason+" (run dumpformat)", "device", in.Name, "err", err)
		return
	}
	log.Info("repaired an erase cut short: no dump, but sampled blocks were invalid; every block's signature rewritten, ready for the next panic",
		"device", in.Name, "first_bad_block", res.FirstBad)
}

// isSwap reports whether block 0 is a swap header of any block size and
// byte order (doc/FORMAT.md §3.4).
func isSwap(dev Device) bool {
	b := make([]byte, 65536)
	n, _ := dev.ReadAt(b, 0)
	for _, size := range []int{4096, 8192, 16384, 65536} {
		for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			if n >= size && diskdump.IsSwapHeader(b[:size], size, o, uint64(dev.Size())/uint64(size)) {
				return true
			}
		}
	}
	return false
}

// sizesText says the partition sizes a format covered, e.g. "40960 blocks
// (device), 30628 blocks (dump)".
func sizesText(sizes []diskdump.SampleSize) string {
	parts := make([]string, len(sizes))
	for i, sz := range sizes {
		parts[i] = fmt.Sprintf("%d blocks (%s)", sz.Blocks, sz.Source)
	}
	return strings.Join(parts, ", ")
}
