package savecore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/renameio/v2"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/internal/failpoint"
)

// VmcoreName is the name of the saved dump in its directory (doc/FORMAT.md §9.2).
const VmcoreName = "vmcore"

// Modes of what savecore creates (doc/FORMAT.md §9.2 [REC]): a crash dump holds all
// of the machine's memory, passwords and keys included.
const (
	DirMode  os.FileMode = 0o700
	FileMode os.FileMode = 0o600
)

// checkRoot makes sure the dump root exists (creating it, mode 0700, when it
// does not) and refuses one that others may write to without the sticky
// bit: anyone could then plant a symlink or a directory where savecore is
// about to write as root.
func checkRoot(root string) error {
	fi, err := os.Stat(root)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(root, DirMode); err != nil {
			return err
		}
		fi, err = os.Stat(root)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &os.PathError{Op: "savecore", Path: root, Err: errors.New("dump root is not a directory")}
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		uid, _ := fileOwner(fi)
		return &UnsafeError{Path: root, Mode: fi.Mode(), UID: uid,
			Why: "dump root is group- or world-writable without the sticky bit"}
	}
	return nil
}

// isStaleTemp reports whether name is a temporary file renameio made for
// the vmcore or the dump-id: "." + VmcoreName or DumpIDName + decimal
// digits.
func isStaleTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, "."+VmcoreName)
	if !ok {
		rest, ok = strings.CutPrefix(name, "."+DumpIDName)
	}
	if !ok || rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return false
		}
	}
	return true
}

// dumpDir is the directory one crash is saved into.
type dumpDir struct {
	root    string // dump root
	path    string // root/127.0.0.1-...
	existed bool   // the directory was there before this run
}

// prepareDir looks at the dump directory of a crash before anything is
// written. A directory that does not exist is left for create. One that
// exists is refused (ErrDirExists) unless force is set or it holds nothing
// but temporary files of an interrupted save, which are removed: a rerun
// after an interruption then succeeds without -f, and nothing of a finished
// save is ever overwritten without it. A symlink is refused in every case,
// and so is a directory not owned by root (or us) or writable by group or
// others (ErrUnsafe), even with force.
func prepareDir(root, name string, force bool, log *slog.Logger) (*dumpDir, error) {
	d := &dumpDir{root: root, path: filepath.Join(root, name)}
	fi, err := os.Lstat(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("savecore: %s exists and is not a directory: %w", d.path, ErrDirExists)
	}
	// In a dump root where others may create entries (mode 1777) the
	// directory may have been planted; one that others may write to lets
	// them replace the vmcore. Never write into either.
	if err := checkTrusted(d.path, fi); err != nil {
		return nil, err
	}
	d.existed = true
	ents, err := os.ReadDir(d.path)
	if err != nil {
		return nil, err
	}
	var other []string
	var stale []string
	for _, e := range ents {
		if isStaleTemp(e.Name()) && e.Type().IsRegular() {
			stale = append(stale, e.Name())
		} else if e.Name() != DmesgName || !e.Type().IsRegular() { // a lone log: its vmcore was not saved
			other = append(other, e.Name())
		}
	}
	if len(other) > 0 && !force {
		return nil, fmt.Errorf("savecore: %s holds %s (use -f to save anyway): %w",
			d.path, strings.Join(other, ", "), ErrDirExists)
	}
	for _, s := range stale {
		p := filepath.Join(d.path, s)
		log.Info("removing {file}, left by an interrupted save", "file", p)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return d, nil
}

// create makes the dump directory (mode 0700) if it does not exist yet.
func (d *dumpDir) create() error {
	if d.existed {
		return nil
	}
	if err := os.Mkdir(d.path, DirMode); err != nil {
		return err
	}
	// Mkdir applies the umask; a crash dump directory must be 0700 whatever
	// the umask says.
	return os.Chmod(d.path, DirMode)
}

// removeIfEmpty undoes create after a failed save: a directory this run
// made is removed when nothing is left in it.
func (d *dumpDir) removeIfEmpty() {
	if d.existed {
		return
	}
	if err := os.Remove(d.path); err == nil {
		_ = blockdev.SyncDir(d.root)
	}
}

// ctxFile fails writes once ctx is done, so that an interrupted save stops
// at the next page and its temporary file is removed. It passes Truncate
// on, which lets the vmcore writer size a sparse file exactly.
type ctxFile struct {
	ctx     context.Context
	f       *os.File
	written *atomic.Int64 // bytes written, for the "write" failpoint
	wb      *writeback
}

func (c ctxFile) WriteAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.f.WriteAt(p, off)
	w := c.written.Add(int64(n))
	for mib := (w - int64(n)) >> 20; mib < w>>20; mib++ {
		failpoint.Hit("write")
	}
	if err == nil && c.wb != nil {
		c.wb.wrote(off, off+int64(n))
	}
	return n, err
}

// writebackChunk is how much written data savecore lets accumulate before
// it starts its write-back.
const writebackChunk = 16 << 20

// writebackQueue is how many write-back requests may wait for the
// write-back goroutine before a write blocks: with writebackChunk, it
// bounds the dirty data of a save to about (writebackQueue+2) chunks.
const writebackQueue = 2

// writeback overlaps writing the vmcore to the disk with reading the
// partition. The vmcore writers write the data front to back: each time
// writebackChunk more bytes are written, write-back of them is started,
// and the chunk before is waited for and dropped from the page cache.
// Writes below the window (the DISKDUMP and KDUMP page_desc table, written
// in batches at the start of the file while the data goes on further on,
// and the headers written last) have their write-back started at once:
// left to the final fsync, the table alone was 24 MB to write for a 4 GiB
// machine after the data was done. The final fsync then has at most two
// chunks left to write instead of the whole vmcore, and a save keeps a
// bounded amount of dirty memory.
//
// The sync_file_range calls run on a goroutine of their own:
// SYNC_FILE_RANGE_WRITE is not asynchronous in practice (it allocates the
// delayed-allocation blocks and submits the I/O in the caller, and blocks
// while the device queue is full), and measured 27 ms per 16 MiB chunk on
// average (0.35 s of a 1 GiB compressed save, up to 3 s of a 4 GiB one)
// during which the vmcore writer, and so the reading of the partition,
// stood still.
//
// Errors are ignored: this only changes when data reaches the disk, and
// the fsync that makes the vmcore durable reports any write error.
type writeback struct {
	mu      sync.Mutex
	started int64 // write-back requested for [0, started)
	waited  int64 // to be written and dropped: [0, waited)
	ops     chan writebackOp
	done    chan struct{}
	stopped sync.Once
}

// writebackOp asks the goroutine to start write-back of [startOff,
// startOff+startN), then wait for [waitOff, waitOff+waitN) and drop it.
type writebackOp struct {
	startOff, startN int64
	waitOff, waitN   int64
}

// newWriteback starts the write-back goroutine of f; stop ends it.
func newWriteback(f *os.File) *writeback {
	wb := &writeback{ops: make(chan writebackOp, writebackQueue), done: make(chan struct{})}
	go func() {
		defer close(wb.done)
		for op := range wb.ops {
			if op.startN > 0 {
				_ = blockdev.StartWriteback(f, op.startOff, op.startN)
			}
			if op.waitN > 0 {
				_ = blockdev.AwaitWriteback(f, op.waitOff, op.waitN)
			}
		}
	}()
	return wb
}

// wrote is called after [off, end) of the file was written.
func (wb *writeback) wrote(off, end int64) {
	wb.mu.Lock()
	defer wb.mu.Unlock()
	if end <= wb.started {
		wb.ops <- writebackOp{startOff: off, startN: end - off}
		return
	}
	if end < wb.started+writebackChunk {
		return
	}
	op := writebackOp{startOff: wb.started, startN: end - wb.started}
	if wb.started > wb.waited {
		op.waitOff, op.waitN = wb.waited, wb.started-wb.waited
		wb.waited = wb.started
	}
	wb.started = end
	wb.ops <- op
}

// stop waits for the requests made so far and ends the goroutine. It must
// be called before the file is closed; calling it again does nothing.
func (wb *writeback) stop() {
	wb.stopped.Do(func() {
		close(wb.ops)
		<-wb.done
	})
}

func (c ctxFile) Truncate(size int64) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	return c.f.Truncate(size)
}

// writeDurable writes path atomically and durably. write gets a WriterAt on
// a renameio temporary file in the same directory and returns the file's
// final size; the file is truncated to it (an ELF vmcore may end in a hole),
// made mode 0600, fsynced and renamed over path; then the directory and its
// parent are fsynced, because a rename is atomic but not durable until the
// directory entries reach the disk. On any error the temporary file is
// removed and path is untouched. beforeRename, if not nil, runs just
// before the rename; its error stops it.
func writeDurable(ctx context.Context, path string, write func(w io.WriterAt) (int64, error), beforeRename func() error) error {
	dir := filepath.Dir(path)
	pf, err := renameio.TempFile(dir, path)
	if err != nil {
		return err
	}
	defer pf.Cleanup()
	if err := pf.Chmod(FileMode); err != nil {
		return err
	}
	failpoint.Hit("before-write")
	wb := newWriteback(pf.File)
	defer wb.stop()
	size, err := write(ctxFile{ctx: ctx, f: pf.File, written: new(atomic.Int64), wb: wb})
	wb.stop()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// WriteAt only makes the file as long as its last written byte; holes
	// at the end need the size set explicitly.
	if err := pf.Truncate(size); err != nil {
		return err
	}
	failpoint.Hit("before-rename")
	if beforeRename != nil {
		if err := beforeRename(); err != nil {
			return err
		}
	}
	// CloseAtomicallyReplace fsyncs the file before the rename.
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return err
	}
	failpoint.Hit("after-rename")
	if err := blockdev.SyncDir(dir); err != nil {
		return err
	}
	if err := blockdev.SyncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	failpoint.Hit("after-dirsync")
	return nil
}
