package savecore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/dumpkit/dumpkit/vmcore"
)

// flattenedPlan is how a flattened stream is saved: as it is (the
// stream's own vmcore, byte for byte what makedumpfile -R makes of it), or
// converted (-F another format, --compress, --dump-level), which reads
// every page of the rebuilt vmcore and writes it anew.
type flattenedPlan struct {
	convert bool
	opt     vmcore.Options // the conversion's options
}

// planFlattened checks Options.Format against the stream's own format.
func planFlattened(opt Options, sum *vmcore.FlattenedSummary) (flattenedPlan, error) {
	pl := flattenedPlan{opt: vmcore.Options{Format: sum.Format}}
	if opt.Format != "" && !strings.EqualFold(opt.Format, "auto") {
		want, err := vmcore.ParseFormat(opt.Format)
		if err != nil {
			return pl, err
		}
		pl.opt.Format = want
	}
	opt.filterOptions(&pl.opt) // dumplevel.go
	pl.convert = pl.opt.Format != sum.Format || opt.Compress != "" || opt.DumpLevel != 0
	if pl.convert && sum.Header == nil {
		return pl, fmt.Errorf("savecore: the flattened stream has no vmcore header to convert from: save it without -F, --compress or --dump-level")
	}
	return pl, nil
}

// rebuildFlattened rebuilds the stream of in into rw, writes the kernel log
// beside the vmcore from it (before the vmcore is renamed into place) and
// returns the rebuilt file opened as a vmcore. A nil UnflattenResult means
// the rebuild failed; with a result, the error is vmcore.Open's, which
// only a conversion needs.
func rebuildFlattened(ctx context.Context, rw vmcore.ReadWriterAt, in Input, dir string, ropt *vmcore.RearrangeOptions,
	opt Options, log *slog.Logger) (*vmcore.UnflattenResult, *vmcore.File, error) {
	ur, err := vmcore.Unflatten(rw, in.Dev, in.Dev.Size(), ropt)
	if err != nil {
		return nil, nil, err
	}
	dm, merr := sourceMemory(rw, ur.Size)
	// The stream's own VMCOREINFO stays in its header: what saveDmesgFrom
	// returns is for vmcores written from a partition.
	saveDmesgFrom(ctx, dm, merr, in.Name, dir, opt, log)
	v, err := vmcore.Open(rw, ur.Size)
	return ur, v, err
}

// convertFlattened rebuilds the stream into an unlinked scratch file in
// dir (nothing is left behind if savecore is killed) and writes the vmcore
// of pl from it into w.
func convertFlattened(ctx context.Context, w io.WriterAt, in Input, dir string, pl flattenedPlan, ropt *vmcore.RearrangeOptions,
	opt Options, log *slog.Logger) (*vmcore.UnflattenResult, *vmcore.Result, error) {
	f, err := os.CreateTemp(dir, ".flattened-")
	if err != nil {
		return nil, nil, err
	}
	os.Remove(f.Name())
	defer f.Close()
	ur, v, err := rebuildFlattened(ctx, f, in, dir, ropt, opt, log)
	if ur == nil {
		return nil, nil, err
	}
	if err != nil {
		return ur, nil, fmt.Errorf("savecore: %s: the vmcore rebuilt from the stream cannot be read back to convert it: %w", in.Name, err)
	}
	res, err := vmcore.WriteFile(w, v, pl.opt)
	return ur, res, err
}

// convertedSize bounds the vmcore a conversion writes: an ELF file holds
// every page whole (max_mapnr pages), a KDUMP or DISKDUMP file about what
// the stream's records hold.
func convertedSize(sum *vmcore.FlattenedSummary, pl flattenedPlan) int64 {
	if pl.opt.Format == vmcore.FormatELF && sum.Header != nil {
		return int64(sum.Header.MaxMapnr) * int64(sum.Header.BlockSize)
	}
	return sum.DataBytes
}
