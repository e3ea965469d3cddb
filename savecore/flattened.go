package savecore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/dumpkit/dumpkit/internal/failpoint"
	"github.com/dumpkit/dumpkit/vmcore"
)

// Dumps stored as makedumpfile's flattened stream: what kdump's `raw`
// target writes onto a partition (doc/FLATTENED.md §5). The stream is
// rebuilt into the vmcore file it holds, byte for byte what
// `makedumpfile -R` makes of it, without its waits (doc/FLATTENED.md §7).

// isFlattenedInput reports whether the device starts with a flattened
// stream's start block.
func isFlattenedInput(dev Device) bool {
	block := make([]byte, min(dev.Size(), vmcore.FlattenedStartSize))
	if n, err := dev.ReadAt(block, 0); n < len(block) && err != nil {
		return false
	}
	return vmcore.IsFlattened(block)
}

// saveFlattened saves (or with Options.DeleteOnly erases) the flattened
// dump on one device and fills r. It follows the rules of a diskdump
// partition: dump root check, space check with diskdump-nospace, durable
// write, -D erase once durable, diskdump-success.
func saveFlattened(ctx context.Context, r *Result, in Input, opt Options, log *slog.Logger) {
	sum, err := vmcore.ScanFlattened(in.Dev, in.Dev.Size())
	if err != nil {
		r.Err = err
		log.Error("cannot read the flattened dump", "device", in.Name, "err", err)
		return
	}
	r.Header = sum.Header
	crashed, known := time.Now(), false
	if sum.Header != nil {
		crashed, known = sum.Header.Time(), true
	}
	r.Dir = filepath.Join(opt.root(), DirName(crashed, opt.Location))
	logFlattened(log, in.Name, sum, crashed, known)
	if opt.DeleteOnly {
		if err := eraseFlattened(in, log); err != nil {
			r.Err = err
			return
		}
		r.Outcome, r.Erased = OutcomeErased, true
		return
	}
	if err := saveFlattenedVmcore(ctx, r, in, sum, opt, log); err != nil {
		r.Err = err
		log.Error("dump not saved", "device", in.Name, "err", err)
		return
	}
	if opt.Delete {
		if err := eraseFlattened(in, log); err != nil {
			r.Err = err
		} else {
			r.Erased = true
		}
	}
	runScript(ctx, opt.root(), SuccessScript, r.Dir, opt.ScriptTimeout, log)
}

// logFlattened says what the stream holds.
func logFlattened(log *slog.Logger, dev string, sum *vmcore.FlattenedSummary, crashed time.Time, known bool) {
	attrs := []any{"device", dev, "format", sum.Format.String(), "records", sum.Records, "end", sum.Stop.End.String()}
	if known {
		h := sum.Header
		attrs = append(attrs, "crashed", crashed.Format("2006-01-02 15:04:05 MST"), "host", h.Utsname.Nodename,
			"release", h.Utsname.Release, "machine", h.Utsname.Machine)
	}
	log.Info("found flattened dump (kdump raw target)", attrs...)
	if !known {
		log.Info("no crash time in the stream: the dump directory is named after the current time", "device", dev)
	}
}

// saveFlattenedVmcore rebuilds the vmcore into DIR/127.0.0.1-DATE/vmcore.
func saveFlattenedVmcore(ctx context.Context, r *Result, in Input, sum *vmcore.FlattenedSummary, opt Options, log *slog.Logger) error {
	pl, err := planFlattened(opt, sum) // flattened_convert.go
	if err != nil {
		return err
	}
	if err := checkRoot(opt.root()); err != nil {
		return err
	}
	d, err := prepareDir(opt.root(), filepath.Base(r.Dir), opt.Force, log)
	if err != nil {
		return err
	}
	// The rebuilt file allocates at most the records' data; the space
	// minfree asks to leave free counts as needed (minfree.go).
	need, basis := sum.DataBytes, "the data of the stream's records"
	if pl.convert {
		// The rebuilt stream (a scratch file) and the converted vmcore.
		need, basis = need+convertedSize(sum, pl), basis+", rebuilt, plus the converted vmcore"
	}
	if err := checkSpace(ctx, d, need+opt.reserve(log), basis, opt.ScriptTimeout, log); err != nil {
		return err
	}
	if err := d.create(); err != nil {
		return err
	}
	path := filepath.Join(d.path, VmcoreName)
	log.Info("saving vmcore", "device", in.Name, "path", path, "format", sum.Format.String(), "size", iec(float64(sum.FileSize))+"B")
	ropt := &vmcore.RearrangeOptions{}
	if opt.Progress != nil {
		ropt.Progress = func(done, total int64) { opt.Progress(in.Name, done, total) }
	}
	var ur *vmcore.UnflattenResult
	var cr *vmcore.Result
	err = writeDurable(ctx, path, func(w io.WriterAt) (int64, error) {
		var err error
		if pl.convert {
			ur, cr, err = convertFlattened(ctx, w, in, d.path, pl, ropt, opt, log)
			if err != nil {
				return 0, err
			}
			return cr.Size, nil
		}
		rw, ok := w.(vmcore.ReadWriterAt)
		if !ok {
			return 0, fmt.Errorf("savecore: the vmcore output cannot be read back")
		}
		ur, _, err = rebuildFlattened(ctx, rw, in, d.path, ropt, opt, log)
		if ur == nil {
			return 0, err
		}
		return ur.Size, nil
	}, nil)
	if err != nil {
		d.removeIfEmpty()
		return fmt.Errorf("savecore: writing %s: %w", path, err)
	}
	r.Outcome, r.Path, r.Format = OutcomeSaved, path, ur.Format.String()
	r.Size, r.Pages, r.Lost, r.Incomplete = ur.Size, ur.Pages, ur.Lost, ur.Incomplete
	if cr != nil {
		r.Format, r.Size, r.Pages, r.Incomplete = cr.Format.String(), cr.Size, cr.Pages, cr.MarkedIncomplete() || ur.Incomplete
		logDumpLevel(log, in.Name, opt.DumpLevel, cr)
	}
	if ur.Header != nil {
		r.Header = ur.Header
	}
	logUnflattened(log, in.Name, ur)
	log.Info("vmcore saved", "path", path, "size", iec(float64(ur.Size))+"B", "pages", ur.Pages)
	return nil
}

// logUnflattened warns about a torn stream: what was kept and what was lost.
func logUnflattened(log *slog.Logger, dev string, ur *vmcore.UnflattenResult) {
	if !ur.Torn() {
		return
	}
	rr := ur.Rearrange
	attrs := []any{"device", dev, "end", rr.End.String(), "stream_offset", rr.Off, "records", rr.Records}
	switch ur.Format {
	case vmcore.FormatKdump:
		attrs = append(attrs, "pages_saved", ur.Pages, "pages_lost", ur.Lost)
		if ur.Header != nil && ur.UnknownFromPFN < uint64(ur.Header.MaxMapnr) {
			attrs = append(attrs, "pages_unknown_from_pfn", ur.UnknownFromPFN)
		}
		log.Warn("flattened dump was torn (the capture did not finish): saved every page that arrived, vmcore marked incomplete", attrs...)
	default:
		attrs = append(attrs, "missing_bytes", ur.HoleBytes)
		log.Warn("flattened dump was torn (the capture did not finish): the parts of memory that did not arrive read as zeros", attrs...)
	}
}

// eraseFlattened zeroes the start block of the stream, so that neither
// savecore nor `makedumpfile -R` finds the dump again (doc/FLATTENED.md
// §6); the records are left alone, as kdumpctl leaves them. The device is
// flushed so the erase survives a crash.
func eraseFlattened(in Input, log *slog.Logger) error {
	w, ok := in.Dev.(io.WriterAt)
	if !ok {
		return fmt.Errorf("savecore: %s: %w", in.Name, ErrNotWritable)
	}
	failpoint.Hit("before-erase")
	n := min(in.Dev.Size(), vmcore.FlattenedStartSize)
	if _, err := w.WriteAt(make([]byte, n), 0); err != nil {
		return fmt.Errorf("savecore: erasing the flattened dump on %s: %w", in.Name, err)
	}
	failpoint.Hit("after-invalidate")
	if f, ok := in.Dev.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			return fmt.Errorf("savecore: flushing %s: %w", in.Name, err)
		}
	}
	failpoint.Hit("after-flush")
	log.Info("flattened dump erased from the partition (start block zeroed)", "device", in.Name)
	return nil
}

// ReadAt lets vmcore.Unflatten read back the vmcore it rebuilds, to repair
// a torn one.
func (c ctxFile) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.f.ReadAt(p, off)
}
