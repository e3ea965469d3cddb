package savecore

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/dumpkit/dumpkit/blockdev"
)

// checkSpace compares the estimated vmcore size (need, estimated from
// basis, which messages state) with the free space of the
// filesystem that will hold d (doc/FORMAT.md §9.4 step 6). When it is short it runs
// diskdump-nospace with the arguments "127.0.0.1" and d.path (doc/FORMAT.md §9.3): a
// non-zero exit asks for one more check (the script freed space), exit 0
// means "do not save". A missing or untrusted script counts as exit 0.
func checkSpace(ctx context.Context, d *dumpDir, need int64, basis string, timeout time.Duration, log *slog.Logger) error {
	where := d.root
	if d.existed {
		where = d.path
	}
	free, err := blockdev.FreeSpace(where)
	if err != nil {
		return err
	}
	log.Debug("space check in {dir}: {need} bytes needed, {free} free", "dir", where, "need", need, "free", free)
	if need <= 0 || uint64(need) <= free {
		return nil
	}
	log.Warn("not enough free space for {dir}: {need} needed (minfree included; estimate from {estimate_basis}), {free} free; free space, or see diskdump-nospace", "dir", d.path, "need", iec(float64(need))+"B", "estimate_basis", basis, "free", iec(float64(free))+"B")
	res := runScript(ctx, d.root, NospaceScript, d.path, timeout, log)
	serr := &SpaceError{Dir: d.path, Need: need, Free: free, Basis: basis}
	switch {
	case res.Status == scriptAbsent:
		serr.Script = "absent"
		return serr
	case res.Status == scriptUntrusted:
		serr.Script = "not trusted"
		return serr
	case res.Status == scriptExited && res.Exit == 0:
		serr.Script = "declined (exit 0)"
		return serr
	case res.Status == scriptFailed:
		// Killed or not startable: nothing says it freed space, but it
		// did not decline either; check once more like a non-zero exit.
		serr.Script = "failed: " + res.Err.Error()
	default:
		serr.Script = "ran (exit " + strconv.Itoa(res.Exit) + ")"
	}
	if free, err = blockdev.FreeSpace(where); err != nil {
		return err
	}
	serr.Free = free
	if uint64(need) <= free {
		log.Info("enough free space after diskdump-nospace: {free} free", "free", iec(float64(free))+"B")
		return nil
	}
	return serr
}
