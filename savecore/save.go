package savecore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dumpkit/dumpkit/internal/failpoint"
	"github.com/dumpkit/dumpkit/internal/modparams"
	"github.com/dumpkit/dumpkit/vmcore"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
)

// Device is a dump partition: a block device, an image file, or memory.
// Erasing a dump (Options.Delete, Options.DeleteOnly) also needs
// io.WriterAt; a device with a Flush() error method is flushed after the
// erase.
type Device interface {
	io.ReaderAt
	Size() int64
}

// Input is one device to examine.
type Input struct {
	Name string // for messages; blockdev names resolved symlinks as "given (real)"
	Dev  Device // nil when Err is set
	Err  error  // why the device could not be opened
	// ActiveSwap: the device is in use as swap (opened read-only). Its
	// dump is saved but never erased: swap is writing over it.
	ActiveSwap bool
}

// Outcome says what savecore did with one device.
type Outcome int

// Outcomes.
const (
	// OutcomeFailed: the device could not be read or its dump could not be
	// saved; Result.Err says why. Nothing was erased.
	OutcomeFailed Outcome = iota
	// OutcomeNoDump: the device holds no dump (block 1 is not "DISKDUMP").
	OutcomeNoDump
	// OutcomeSaved: the dump was saved to Result.Path.
	OutcomeSaved
	// OutcomeDuplicate: the device holds a less complete copy of a crash
	// whose other copy, on Result.SavedFrom, was saved (or was to be).
	OutcomeDuplicate
	// OutcomeErased: the dump was erased without saving (DeleteOnly).
	OutcomeErased
	// OutcomeAlreadySaved: the dump directory already holds a vmcore of
	// this crash (its dump-id says so) with at least as many pages;
	// nothing was written, and with Options.Delete the dump is erased.
	OutcomeAlreadySaved
)

func (o Outcome) String() string {
	switch o {
	case OutcomeFailed:
		return "failed"
	case OutcomeNoDump:
		return "no dump"
	case OutcomeSaved:
		return "saved"
	case OutcomeDuplicate:
		return "duplicate"
	case OutcomeErased:
		return "erased"
	case OutcomeAlreadySaved:
		return "already saved"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is what happened to one device.
type Result struct {
	Device     string // Input.Name
	Outcome    Outcome
	Err        error            // set exactly when something failed, also after a save (erase failed)
	Header     *diskdump.Header // the dump's header, when one was read
	Dir        string           // dump directory of the crash (saved or meant to be)
	Path       string           // the vmcore written (OutcomeSaved)
	Format     string           // vmcore format written
	Size       int64            // apparent size of the vmcore in bytes
	Pages      uint64           // pages stored in the vmcore
	Lost       uint64           // pages the dump should have held but that could not be recovered
	BadRecords uint64           // zlib records rejected by Options.VerifyRecords (counted in Lost too)
	Incomplete bool             // the vmcore is marked partial or incomplete (vmcore.Result.MarkedIncomplete)
	Erased     bool             // the dump was invalidated on the partition
	SavedFrom  string           // OutcomeDuplicate: the device whose copy was saved
}

// Failed reports whether anything went wrong with this device.
func (r *Result) Failed() bool { return r.Err != nil }

// Report lists the results in the order of the inputs.
type Report struct {
	Results []Result
}

// Paths returns the vmcore files written, in input order.
func (r *Report) Paths() []string {
	var ps []string
	for _, res := range r.Results {
		if res.Outcome == OutcomeSaved {
			ps = append(ps, res.Path)
		}
	}
	return ps
}

// Locked reports whether a device or the dump root was left alone because
// another savecore or dumpformat held its lock past Options.LockWait
// (blockdev.ErrLocked).
func (r *Report) Locked() bool {
	for _, res := range r.Results {
		if errors.Is(res.Err, blockdev.ErrLocked) {
			return true
		}
	}
	return false
}

// Failed reports whether any device failed; with noDumpFails, a device
// without a dump counts as a failure too (savecore DEVICE, doc/FORMAT.md §9.1).
func (r *Report) Failed(noDumpFails bool) bool {
	for _, res := range r.Results {
		if res.Failed() || (noDumpFails && res.Outcome == OutcomeNoDump) {
			return true
		}
	}
	return false
}

// OpenDevices opens each path with blockdev.OpenLocked, read-write when
// write is set (erasing needs it; on a block device that also refuses one
// that is mounted or active swap) and read-only otherwise, holding an
// exclusive lock on each device for as long as it is open and waiting at
// most wait for another savecore or dumpformat to release one (a
// *blockdev.LockedError when it does not). Locks are taken in the order of
// the resolved paths, so two runs over the same devices listed in
// different orders cannot wait for each other. A path that cannot be
// opened gives an Input with Err set, so the caller reports it and goes on
// with the next one. closeAll closes what was opened.
func OpenDevices(paths []string, write bool, wait time.Duration) (inputs []Input, closeAll func()) {
	mode := blockdev.ReadOnly
	if write {
		mode = blockdev.ReadWrite
	}
	order := make([]int, len(paths))
	keys := make([]string, len(paths))
	for i, p := range paths {
		order[i] = i
		keys[i] = p
		if r, err := filepath.EvalSymlinks(p); err == nil {
			keys[i] = r
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	inputs = make([]Input, len(paths))
	var opened []*blockdev.Device
	for _, i := range order {
		d, err := blockdev.OpenLocked(paths[i], mode, false, wait)
		swap := false
		var ie *blockdev.InUseError
		if errors.As(err, &ie) && ie.Swap && mode == blockdev.ReadWrite {
			// A swap partition is a dump device by design (doc/FORMAT.md
			// §3.4); active, it can still be read and its dump saved.
			swap = true
			d, err = blockdev.OpenLocked(paths[i], blockdev.ReadOnly, false, wait)
		}
		if err != nil {
			inputs[i] = Input{Name: paths[i], Err: err}
			continue
		}
		opened = append(opened, d)
		inputs[i] = Input{Name: d.Name(), Dev: d, ActiveSwap: swap}
	}
	return inputs, func() {
		for _, d := range opened {
			d.Close()
		}
	}
}

// SaveDevices opens the devices at paths and saves their dumps (see Save).
func SaveDevices(ctx context.Context, paths []string, opt Options) *Report {
	inputs, closeAll := OpenDevices(paths, opt.Delete || opt.DeleteOnly, opt.lockWait())
	defer closeAll()
	return Save(ctx, inputs, opt)
}

// candidate is a device that holds a dump.
type candidate struct {
	res      *Result
	in       Input
	p        *diskdump.Partition
	complete bool   // status COMPLETED
	found    uint64 // recoverable pages, counted only to rank copies
	unread   uint64 // pages lost to read errors while saving
}

// crashKey identifies a crash: the kernel writes the same header start on
// every device it falls back to (doc/FORMAT.md §3.5).
type crashKey struct {
	sec, frac int64
	uts       diskdump.Utsname
	maxMapnr  uint32
	blockSize int32
}

// Save examines every input in order and saves each dump found. Errors on
// one device (cannot open, unreadable, corrupt, no space, ...) are recorded
// in its Result and logged, and the next device is examined. Two devices
// holding copies of the same crash (the kernel fell back to the next device
// in the middle of the dump) give one vmcore, from the most complete copy;
// with Options.Delete both copies are erased once it is durable.
func Save(ctx context.Context, inputs []Input, opt Options) *Report {
	log := opt.logger()
	rep := &Report{Results: make([]Result, len(inputs))}
	var cands []*candidate
	var mp diskdump.ModuleParams
	if opt.Delete || opt.DeleteOnly {
		if opt.Module != nil {
			mp = *opt.Module
		} else {
			var src string
			mp, src = modparams.Load(modparams.ProcPath, modparams.SysDir, log)
			log.Debug("module parameters for restoring signatures", "source", src, "block_order", mp.BlockOrder, "sample_rate", mp.SampleRate)
		}
	}
	for i, in := range inputs {
		r := &rep.Results[i]
		r.Device = in.Name
		if err := ctx.Err(); err != nil {
			r.Err = err
			continue
		}
		if in.Err != nil && opt.AbsentOK && errors.Is(in.Err, fs.ErrNotExist) {
			r.Outcome = OutcomeNoDump
			log.Warn("device absent: skipped (a device of the list that is not there holds no dump)", "device", in.Name)
			continue
		}
		if in.Err != nil {
			r.Err = in.Err
			log.Error("cannot open the device: {err}; check the name in DEVICE= or on the command line", "device", in.Name, "err", in.Err)
			continue
		}
		if isFlattenedInput(in.Dev) { // kdump raw target (savecore/flattened.go)
			saveFlattened(ctx, r, in, opt, log)
			continue
		}
		p, err := diskdump.OpenPartition(in.Dev, in.Dev.Size())
		if errors.Is(err, diskdump.ErrNoDump) {
			r.Outcome = OutcomeNoDump
			log.Log(ctx, opt.noDumpLevel(), "no dump on the device", "device", in.Name) // options.go
			if opt.Delete {
				ensureReady(in, mp, log)
			}
			continue
		}
		if err != nil {
			r.Err = err
			log.Error("cannot read the dump: {err}; it stays on the partition (dumpformat -c says what the partition holds)", "device", in.Name, "err", err)
			continue
		}
		h := p.Header()
		r.Header = h
		r.Dir = filepath.Join(opt.root(), DirName(h.Time(), opt.Location))
		log.Info("found the dump of {host} ({release}, {arch}) that crashed at {crashed}, status {status}", "device", in.Name, "crashed", h.Time().In(loc(opt.Location)).Format("2006-01-02 15:04:05 MST"),
			"status", h.Status.String(), "host", h.Utsname.Nodename, "release", h.Utsname.Release, "arch", p.Arch().String())
		log.Debug("dump header", "device", in.Name, "block_size", h.BlockSize, "max_mapnr", h.MaxMapnr,
			"total_ram_blocks", h.TotalRAMBlocks, "bitmap_blocks", h.BitmapBlocks, "device_blocks", h.DeviceBlocks,
			"written_blocks", h.WrittenBlocks, "nr_cpus", h.NrCPUs, "swap", p.IsSwap(), "geometry", p.Geometry().String())
		cands = append(cands, &candidate{res: r, in: in, p: p, complete: h.Status.Complete()})
	}
	if len(cands) == 0 {
		return rep
	}
	if !opt.DeleteOnly {
		if err := checkRoot(opt.root()); err != nil {
			log.Error("cannot save into {dir}: {err}; nothing was saved or erased", "dir", opt.root(), "err", err)
			for _, c := range cands {
				c.res.Err = err
			}
			return rep
		}
	}
	for _, g := range groupCopies(cands) {
		if opt.DeleteOnly {
			for _, c := range g {
				if err := erase(c, mp, log); err != nil {
					c.res.Err = err
					continue
				}
				c.res.Outcome = OutcomeErased
			}
			continue
		}
		saveGroup(ctx, g, opt, mp, log)
	}
	pruneAfterSave(rep, opt, log) // --max-dumps (maxdumps.go)
	return rep
}

func loc(l *time.Location) *time.Location {
	if l == nil {
		return time.Local
	}
	return l
}

// groupCopies groups candidates holding the same crash, keeping the order
// of first appearance.
func groupCopies(cands []*candidate) [][]*candidate {
	var groups [][]*candidate
	idx := map[crashKey]int{}
	for _, c := range cands {
		h := c.p.Header()
		k := crashKey{sec: h.Sec, frac: h.Frac, uts: h.Utsname, maxMapnr: h.MaxMapnr, blockSize: h.BlockSize}
		if i, ok := idx[k]; ok {
			groups[i] = append(groups[i], c)
			continue
		}
		idx[k] = len(groups)
		groups = append(groups, []*candidate{c})
	}
	return groups
}

// rankCopies orders copies of one crash best first: the copy with the
// most recoverable pages (counted with a pass over each copy), then a
// COMPLETED one, then the one the kernel wrote furthest.
func rankCopies(ctx context.Context, g []*candidate, log *slog.Logger) []*candidate {
	if len(g) < 2 {
		return g
	}
	names := make([]string, len(g))
	for i, c := range g {
		names[i] = c.in.Name
	}
	log.Warn("{devices} hold copies of the same crash (the kernel fell back to the next device): saving the most complete one",
		"devices", names)
	for _, c := range g {
		c.found = countPages(ctx, c.p)
		log.Info("copy of the crash: status {status}, {recoverable_pages} pages recoverable", "device", c.in.Name, "status", c.p.Header().Status.String(), "recoverable_pages", c.found)
	}
	out := slices.Clone(g)
	slices.SortStableFunc(out, func(a, b *candidate) int {
		switch {
		case a.found != b.found:
			if a.found > b.found {
				return -1
			}
			return 1
		case a.complete != b.complete:
			if a.complete {
				return -1
			}
			return 1
		}
		wa, wb := a.p.Header().WrittenBlocks, b.p.Header().WrittenBlocks
		switch {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		}
		return 0
	})
	return out
}

// countPages counts the pages of a dump that can be recovered.
func countPages(ctx context.Context, p *diskdump.Partition) uint64 {
	var n uint64
	for pg, err := range p.Pages() {
		if ctx.Err() != nil {
			break
		}
		if err == nil && pg != nil {
			n++
		}
	}
	return n
}

// destinationError reports whether err is about where the vmcore goes
// rather than about the device it comes from: trying another copy of the
// same crash would fail the same way.
func destinationError(err error) bool {
	return errors.Is(err, ErrDirExists) || errors.Is(err, ErrNoSpace) || errors.Is(err, ErrUnsafe) || errors.Is(err, blockdev.ErrLocked) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// saveGroup saves one crash from the best of its copies, falling back to
// the next copy when reading one fails, then erases (Options.Delete) the
// saved copy and the less complete ones, and runs diskdump-success.
func saveGroup(ctx context.Context, g []*candidate, opt Options, mp diskdump.ModuleParams, log *slog.Logger) {
	order := rankCopies(ctx, g, log)
	var saved *candidate
	var tried []*candidate
	unlock, err := lockRoot(opt.root(), opt.lockWait(), log)
	if err != nil {
		for _, c := range order {
			c.res.Err = err
		}
		log.Error("dump not saved", "err", err)
		return
	}
	for _, c := range order {
		tried = append(tried, c)
		err := saveOne(ctx, c, opt, log)
		if err == nil {
			saved = c
			break
		}
		c.res.Err = err
		log.Error("dump not saved: {err}; it stays on the partition", "device", c.in.Name, "err", err)
		if destinationError(err) {
			break
		}
	}
	unlock()
	for _, c := range order {
		if c == saved || slices.Contains(tried, c) {
			continue
		}
		c.res.Outcome = OutcomeDuplicate
		if saved != nil {
			c.res.SavedFrom = saved.in.Name
			log.Info("less complete copy of the crash saved from {saved_from}: not saved again", "device", c.in.Name, "saved_from", saved.in.Name)
		}
	}
	if saved == nil {
		return
	}
	if opt.Delete && saved.unread > 0 {
		// Bad sectors may read on a retry or with another tool: a dump
		// saved with read errors is not erased, nor are its other copies.
		saved.res.Err = fmt.Errorf("savecore: %s: %d pages could not be read: the dump is kept on the partition despite -D (erase it with -X when the vmcore is enough)",
			saved.in.Name, saved.unread)
		log.Error("{unreadable_pages} pages could not be read: the dump stays on the partition despite -D; erase it with savecore -X once the vmcore is enough", "device", saved.in.Name, "unreadable_pages", saved.unread)
	} else if opt.Delete {
		// The saved copy first, then the others; a copy that failed to
		// save keeps its dump.
		for _, c := range order {
			if c.res.Outcome != OutcomeSaved && c.res.Outcome != OutcomeDuplicate && c.res.Outcome != OutcomeAlreadySaved {
				continue
			}
			if c.in.ActiveSwap {
				log.Warn("dump saved but not erased: the device is active swap; swap started before savecore, so pages of the dump may have been overwritten (order the swap unit after savecore.service)",
					"device", c.in.Name)
				continue
			}
			if err := erase(c, mp, log); err != nil {
				c.res.Err = err
				log.Error("cannot erase the dump: {err}; it will be found again at the next boot (erase it with savecore -X)", "device", c.in.Name, "err", err)
			}
		}
	}
	if saved.res.Outcome == OutcomeSaved {
		runScript(ctx, opt.root(), SuccessScript, saved.res.Dir, opt.ScriptTimeout, log)
	}
}

// sameCrashSaved decides about a dump whose crash already has a vmcore
// (old describes it): it is "already saved" unless this copy has more
// pages, or force is set; then the vmcore is replaced. It says which in
// one line.
func sameCrashSaved(ctx context.Context, c *candidate, old dumpID, force bool, log *slog.Logger) bool {
	found := c.found
	if found == 0 {
		found = countPages(ctx, c.p)
		c.found = found
	}
	switch {
	case found > old.Pages:
		log.Info("crash already saved from a less complete copy: replacing its vmcore with this one",
			"device", c.in.Name, "dir", c.res.Dir, "saved_pages", old.Pages, "pages", found)
		return false
	case force:
		log.Info("crash already saved: replacing its vmcore (-f)", "device", c.in.Name, "dir", c.res.Dir, "saved_pages", old.Pages, "pages", found)
		return false
	}
	log.Info("crash already saved: nothing to write", "device", c.in.Name, "dir", c.res.Dir,
		"saved_pages", old.Pages, "saved_from", old.Device, "pages", found)
	return true
}

// saveOne writes the vmcore of one copy: directory check, space check,
// durable write. It fills c.res.
func saveOne(ctx context.Context, c *candidate, opt Options, log *slog.Logger) error {
	p, r := c.p, c.res
	started := time.Now() // for the info file (info.go)
	id := newDumpID(p.Header())
	id.Device = c.in.Name
	d, old, err := chooseDir(opt.root(), filepath.Base(r.Dir), id, log)
	if err != nil {
		return err
	}
	r.Dir = d.path
	if old != nil && sameCrashSaved(ctx, c, *old, opt.Force, log) {
		r.Outcome, r.Path, r.Pages = OutcomeAlreadySaved, filepath.Join(d.path, VmcoreName), old.Pages
		return nil
	}
	format, err := vmcoreFormat(c, opt, log)
	if err != nil {
		return err
	}
	vopt := vmcore.Options{Format: format, UncompressedMask: opt.UncompressedMask, VerifyRecords: opt.VerifyRecords}
	opt.filterOptions(&vopt) // dumplevel.go
	if opt.Progress != nil {
		dev := c.in.Name
		vopt.Progress = func(done, total int64) { opt.Progress(dev, done, total) }
	}
	if err := d.create(); err != nil {
		return err
	}
	vopt.VMCOREINFO = saveDmesg(ctx, p, c.in.Name, d.path, opt, log) // before the vmcore: the log survives a failed save
	need, basis := spaceNeeded(p, vopt)
	// minfree (minfree.go): the space to leave free counts as needed.
	if err := checkSpace(ctx, d, need+opt.reserve(log), basis, opt.ScriptTimeout, log); err != nil {
		d.removeIfEmpty()
		return err
	}
	path := filepath.Join(d.path, VmcoreName)
	log.Info("saving {path} ({format} format, about {estimate}: {estimate_basis})", "device", c.in.Name, "path", path, "format", format.String(), "estimate", iec(float64(need))+"B", "estimate_basis", basis)
	var vr *vmcore.Result
	err = writeDurable(ctx, path, func(w io.WriterAt) (int64, error) {
		var err error
		vr, err = vmcore.Write(w, p, vopt)
		if err != nil {
			return 0, err
		}
		return vr.Size, nil
	}, func() error {
		// The dump-id goes first: a save cut between the two renames
		// leaves this crash's dump-id without a vmcore, which the next
		// run saves again into the same directory.
		id.Pages = vr.Pages
		return writeDumpID(d.path, id)
	})
	if err != nil {
		d.removeIfEmpty()
		return fmt.Errorf("savecore: writing %s: %w", path, err)
	}
	r.Outcome, r.Path, r.Format = OutcomeSaved, path, format.String()
	r.Size, r.Pages, r.Lost, r.Incomplete = vr.Size, vr.Pages, vr.Lost, vr.MarkedIncomplete()
	r.BadRecords = vr.BadRecords
	// The reader also counts pages it found written but could not
	// attribute to a PFN (written after the last bitmap flush).
	r.Lost = max(r.Lost, p.Stats().Lost)
	c.unread = p.Stats().LostBy[diskdump.LostIOError]
	if vr.BadRecords > 0 {
		log.Warn("--verify: {bad_records} damaged zlib records not copied; their pages are lost", "device", c.in.Name, "bad_records", vr.BadRecords)
		for _, pe := range badRecords(vr.Errors, maxLoggedBadRecords) {
			log.Warn("damaged zlib record of PFN {pfn} at offset {offset}: {err}", "device", c.in.Name, "pfn", pe.PFN, "offset", pe.Off, "err", pe.Err)
		}
	}
	switch {
	case r.Lost > 0 && p.Header().Status.Complete():
		// The kernel finished this dump; the partition lost pages since.
		log.Warn("dump damaged: the header says COMPLETED, but pages could not be recovered; saved every recoverable page, vmcore marked incomplete",
			"device", c.in.Name, "status", p.Header().Status.String(), "pages_saved", vr.Pages, "pages_lost", r.Lost)
	case r.Lost > 0 || !p.Header().Status.Complete():
		log.Warn("the dump is incomplete (status {status}): {pages_saved} pages saved, {pages_lost} lost; the vmcore is marked incomplete",
			"device", c.in.Name, "status", p.Header().Status.String(), "pages_saved", vr.Pages, "pages_lost", r.Lost)
	case vr.Incomplete:
		log.Info("partial dump: {pages_saved} pages saved; the pages the kernel left out (dump_level) are not in the vmcore",
			"device", c.in.Name, "pages_saved", vr.Pages)
	}
	logBeyond(log, c.in.Name, p.Stats()) // interrupted.go
	if vr.Errors != nil {
		log.Debug("lost pages: {errors}", "device", c.in.Name, "errors", vr.Errors.Error())
	}
	logDumpLevel(log, c.in.Name, opt.DumpLevel, vr)                                                                                                                // dumplevel.go
	saveInfo(c, opt, started)                                                                                                                                      // info.go
	log.Log(ctx, slog.LevelInfo+2, "saved {path}: {size}, {pages} pages", "device", c.in.Name, "path", path, "size", iec(float64(vr.Size))+"B", "pages", vr.Pages) // notice
	return nil
}

// spaceNeeded is the size the vmcore will take and what the estimate is
// based on, for the space check and its message.
func spaceNeeded(p *diskdump.Partition, vopt vmcore.Options) (int64, string) {
	est := vmcore.EstimateWithBasis(p, vopt)
	basis := fmt.Sprintf("%d pages stored whole", est.Pages)
	if est.Basis == "records" {
		basis = fmt.Sprintf("%sB of compressed records on the partition, copied as they are", iec(float64(est.RecordBytes)))
	}
	return est.Bytes, basis
}

// vmcoreFormat resolves Options.Format for one copy, so that the log and
// the Result say what was written.
func vmcoreFormat(c *candidate, opt Options, log *slog.Logger) (vmcore.Format, error) {
	format := vmcore.FormatAuto
	if opt.Format != "" {
		var err error
		if format, err = vmcore.ParseFormat(opt.Format); err != nil {
			return format, err
		}
	}
	if format != vmcore.FormatAuto {
		return format, nil
	}
	p := c.p
	format = vmcore.DefaultFormat(p)
	if format == vmcore.FormatELF && p.Arch() == diskdump.ArchUnknown {
		// An ELF core needs e_machine and the register layout, which
		// come from utsname.machine; a DISKDUMP file copies the header
		// as it is, so a damaged machine field does not cost the dump.
		log.Warn("unknown machine {machine} in the dump header: saving in diskdump format instead of ELF", "device", c.in.Name, "machine", p.Header().Utsname.Machine)
		format = vmcore.FormatDiskdump
	}
	return format, nil
}

// erase invalidates the dump on its device (doc/FORMAT.md §9.4 step 9): block 1
// gets its format signature back, or zeros on a swap partition; block 0 is
// never touched. On a dedicated partition the blocks the kernel samples
// before it dumps (doc/FORMAT.md §3.2) are then rewritten with their signatures, as
// the rc script's diskdumpfmt run after savecore does (doc/FORMAT.md §8.2), because
// the dump overwrote some of them and the kernel would refuse the partition
// at the next panic. The device is flushed so the erase survives a crash.
func erase(c *candidate, mp diskdump.ModuleParams, log *slog.Logger) error {
	if c.in.ActiveSwap {
		return fmt.Errorf("savecore: %s is active swap: the dump cannot be erased while swap is on (swapoff, then savecore -X)", c.in.Name)
	}
	w, ok := c.in.Dev.(io.WriterAt)
	if !ok {
		return fmt.Errorf("savecore: %s: %w", c.in.Name, ErrNotWritable)
	}
	p := c.p
	bs, order := p.BlockSize(), p.Header().Layout.Order
	failpoint.Hit("before-erase")
	if err := diskdump.InvalidateDump(w, bs, order, p.IsSwap()); err != nil {
		return fmt.Errorf("savecore: erasing the dump on %s: %w", c.in.Name, err)
	}
	c.res.Erased = true
	failpoint.Hit("after-invalidate")
	if !p.IsSwap() && mp.SampleRate >= 0 {
		if err := restoreSignatures(w, c.in.Dev, p.Geometry().TotalBlocks(), bs, order, mp, log); err != nil {
			if f, ok := c.in.Dev.(interface{ Flush() error }); ok {
				f.Flush()
			}
			return fmt.Errorf("savecore: %s: dump erased, but restoring the format signatures failed (run dumpformat): %w", c.in.Name, err)
		}
	}
	failpoint.Hit("after-erase")
	if f, ok := c.in.Dev.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			return fmt.Errorf("savecore: flushing %s: %w", c.in.Name, err)
		}
	}
	failpoint.Hit("after-flush")
	log.Info("dump erased; the partition is ready for the next crash", "device", c.in.Name)
	return nil
}

// maxLoggedBadRecords bounds the damaged records logged one by one.
const maxLoggedBadRecords = 8

// badRecords picks from the per-page errors of a vmcore the records that
// verification rejected: *diskdump.PageError not caused by a
// *diskdump.LostError (those are the reader's), at most n.
func badRecords(err error, n int) []*diskdump.PageError {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	var out []*diskdump.PageError
	for _, e := range errs {
		var pe *diskdump.PageError
		var le *diskdump.LostError
		if len(out) < n && errors.As(e, &pe) && !errors.As(e, &le) {
			out = append(out, pe)
		}
	}
	return out
}
