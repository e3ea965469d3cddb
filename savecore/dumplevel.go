package savecore

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/dumpkit/dumpkit/vmcore"
)

// ParseDumpLevel parses a diskdump dump_level (--dump-level, DUMPLEVEL=):
// the sum of the bits of doc/FORMAT.md §6.4, 0 to 31. These are not
// makedumpfile's -d bits.
func ParseDumpLevel(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 31 {
		return 0, fmt.Errorf("savecore: dump level %q: want diskdump's dump_level, 0 to 31", s)
	}
	return n, nil
}

// CheckCompression checks a --compress value: zlib, lzo, snappy or zstd.
func CheckCompression(s string) error {
	if s == "" {
		return nil
	}
	if _, err := vmcore.ParseCompression(s); err != nil {
		return fmt.Errorf("savecore: compression %q: want zlib, lzo, snappy or zstd", s)
	}
	return nil
}

// filterOptions adds the dump level and the KDUMP compression of opt to
// vopt (CheckCompression has accepted opt.Compress).
func (o *Options) filterOptions(vopt *vmcore.Options) {
	vopt.DumpLevel = vmcore.DumpLevel(o.DumpLevel)
	if o.Compress != "" {
		vopt.Compression, _ = vmcore.ParseCompression(o.Compress)
	}
}

// logDumpLevel says once what the dump level did: savecore never refuses a
// dump because of it, it applies what the dump lets it decide and says
// what it could not (free pages are never known after the dump; a raw dump
// carries no page flags, so only zero pages can be told).
func logDumpLevel(log *slog.Logger, dev string, requested int, vr *vmcore.Result) {
	if requested == 0 {
		return
	}
	log.Info("dump level {level} left out {excluded} pages (bits applied: {applied})", "device", dev,
		"level", requested, "excluded", vr.Excluded, "applied", int(vr.DumpLevel))
	if vr.DumpLevelUnapplied == 0 {
		return
	}
	why := "free pages cannot be told apart after the dump"
	if vr.DumpLevelUnapplied&^vmcore.ExcludeFree != 0 {
		why = "this dump carries no page flags, only zero pages (bit 2) can be told"
	}
	log.Warn("dump level bits {unapplied} not applied: {why}; the pages they name are kept", "device", dev,
		"unapplied", int(vr.DumpLevelUnapplied), "why", why)
}
