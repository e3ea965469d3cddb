// Command dumpfilter writes a smaller copy of a saved vmcore, leaving out
// the pages that diskdump's dump_level rules exclude, as diskdumputils'
// dumpfilter did (doc/FORMAT.md §11.3, §6.4).
//
//	dumpfilter [-f] [-l dump_level] [-p] [-q] [-v] [-F elf|diskdump|kdump] [--compress zlib|lzo|snappy|zstd] OLD NEW
//	dumpfilter -V
//
// OLD is any of our vmcore formats (ELF, DISKDUMP, KDUMP) and is only
// read; NEW is written under a temporary name, fsynced, renamed and its
// directory fsynced. Run dumpfilter -h for the flags and exit codes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/internal/buildinfo"
	"github.com/dumpkit/dumpkit/vmcore"
)

// Exit codes (README "Exit codes").
const (
	exitOK    = 0 // NEW written
	exitFail  = 1 // any error
	exitUsage = 2 // usage error
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "devel"

// defaultLevel is diskdumputils' default: 16 (keep private cache) + 2 (zero
// pages) + 1 (cache pages).
const defaultLevel = 19

const help = `Usage:
  dumpfilter [-f] [-l dump_level] [-p] [-q] [-v] [-F elf|diskdump|kdump] [--compress ALGO] OLD NEW
  dumpfilter -V

Write NEW, a copy of the vmcore OLD without the pages that diskdump's
dump_level rules exclude. OLD may be an ELF, DISKDUMP or KDUMP vmcore; it is
never modified. NEW is written under a temporary name in its directory,
fsynced and renamed, so an interrupted run leaves no partial NEW.

The level is diskdump's (not makedumpfile's -d): the sum of
   1  cache pages (page cache, not anonymous, not private unless 16)
   2  zero pages (all bytes zero)
   4  free pages: cannot be told apart after the dump, never applied
   8  anonymous (user) pages
  16  keep private cache pages that 1 would leave out
Page flags come from the records of compressed dumps (DISKDUMP). A KDUMP or
ELF file, or a raw dump, carries no page flags: only 2 applies to them, and
dumpfilter says which bits it could not apply.

Flags:
  -l LEVEL         dump_level, 0..31 (default 19)
  -f               overwrite NEW if it exists
  -F FORMAT        output format: elf, diskdump or kdump (default: OLD's)
  --compress ALGO  page compression of a kdump NEW: zlib (default, as
                   makedumpfile -c), lzo, snappy or zstd
  -p               show progress on stderr (default when stderr is a terminal)
  -q               quiet: print errors only
  -v               verbose: print what was left out and why
  -V               print the version and exit
  -h, --help       print this help and exit

Exit status:
  0  NEW written
  1  any error (OLD unreadable or not a vmcore, NEW exists without -f,
     NEW is OLD, no space, I/O error)
  2  usage error
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// flags holds the parsed command line.
type flags struct {
	force, prog, quiet, verbose, showVer bool
	level                                int
	format, compress                     string
	set                                  map[string]bool
}

// newFlagSet declares every flag of dumpfilter into f; the man page test
// enumerates it.
func newFlagSet(f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("dumpfilter", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.BoolVar(&f.force, "f", false, "overwrite NEW")
	fs.IntVar(&f.level, "l", defaultLevel, "dump_level")
	fs.BoolVar(&f.prog, "p", false, "show progress")
	fs.BoolVar(&f.quiet, "q", false, "quiet")
	fs.BoolVar(&f.verbose, "v", false, "verbose")
	fs.BoolVar(&f.showVer, "V", false, "print the version")
	fs.StringVar(&f.format, "F", "", "output format")
	fs.StringVar(&f.compress, "compress", "", "kdump page compression")
	return fs
}

func usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "dumpfilter: "+format+" (dumpfilter -h for help)\n", args...)
	return exitUsage
}

func versionString() string { return buildinfo.String("dumpfilter", version) }

// job is a checked command line: what to read, what to write and how.
type job struct {
	old, new string
	opt      vmcore.Options
	flags    *flags
}

// parse parses and checks args; a nil job means exit with code.
func parse(args []string, stdout, stderr io.Writer) (*job, int) {
	f := &flags{set: map[string]bool{}}
	fs := newFlagSet(f)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		io.WriteString(stdout, help)
		return nil, exitOK
	}
	if err != nil {
		return nil, usageError(stderr, "%v", err)
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if f.showVer {
		fmt.Fprintln(stdout, versionString())
		return nil, exitOK
	}
	switch {
	case fs.NArg() != 2:
		return nil, usageError(stderr, "want OLD and NEW, got %d arguments", fs.NArg())
	case f.level < 0 || f.level > 31:
		return nil, usageError(stderr, "-l %d: want a dump_level from 0 to 31", f.level)
	case f.verbose && f.quiet:
		return nil, usageError(stderr, "-v and -q exclude each other")
	}
	j := &job{old: fs.Arg(0), new: fs.Arg(1), flags: f}
	j.opt.DumpLevel = vmcore.DumpLevel(f.level)
	if f.format != "" {
		if j.opt.Format, err = vmcore.ParseFormat(f.format); err != nil {
			return nil, usageError(stderr, "-F %s: want elf, diskdump or kdump", f.format)
		}
	}
	if f.compress != "" {
		if j.opt.Compression, err = vmcore.ParseCompression(f.compress); err != nil {
			return nil, usageError(stderr, "--compress %s: want zlib, lzo, snappy or zstd", f.compress)
		}
	}
	return j, -1
}

func run(args []string, stdout, stderr io.Writer) int {
	j, code := parse(args, stdout, stderr)
	if j == nil {
		return code
	}
	con := newConsole(stderr, j.flags)
	if err := j.filter(con); err != nil {
		con.errorf("%v", err)
		return exitFail
	}
	return exitOK
}

// filter opens OLD, refuses what must not be overwritten and writes NEW.
func (j *job) filter(con *console) error {
	in, err := os.Open(j.old)
	if err != nil {
		return fmt.Errorf("%s: cannot open the vmcore: %w", j.old, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", j.old, err)
	}
	if err := j.checkNew(st); err != nil {
		return err
	}
	vf, err := vmcore.Open(in, st.Size())
	if err != nil {
		return fmt.Errorf("%s: not a vmcore dumpfilter can read: %w", j.old, err)
	}
	if j.opt.Format == vmcore.FormatAuto {
		j.opt.Format = vf.Format()
	}
	if j.flags.set["compress"] && j.opt.Format != vmcore.FormatKdump {
		return fmt.Errorf("--compress applies to kdump output only; NEW would be %v (add -F kdump)", j.opt.Format)
	}
	j.opt.Progress = con.progress
	res, err := j.write(vf)
	if err != nil {
		return err
	}
	con.summary(j, vf, res)
	return nil
}

// checkNew refuses NEW when it is OLD (same path or same file) and when it
// exists without -f.
func (j *job) checkNew(old os.FileInfo) error {
	if filepath.Clean(j.old) == filepath.Clean(j.new) {
		return fmt.Errorf("%s: NEW is OLD; dumpfilter never modifies its input, name another file", j.new)
	}
	st, err := os.Stat(j.new)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", j.new, err)
	case os.SameFile(old, st):
		return fmt.Errorf("%s: NEW is the same file as %s; dumpfilter never modifies its input, name another file", j.new, j.old)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s: exists and is not a regular file", j.new)
	case !j.flags.force:
		return fmt.Errorf("%s: exists; use -f to overwrite it", j.new)
	}
	return nil
}

// write writes NEW durably: a temporary file in NEW's directory, fsynced
// and renamed over NEW, then the directory fsynced so that the rename
// survives a power cut.
func (j *job) write(vf *vmcore.File) (*vmcore.Result, error) {
	dir := filepath.Dir(j.new)
	pf, err := renameio.TempFile(dir, j.new)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot create a temporary file in %s: %w", j.new, dir, err)
	}
	defer pf.Cleanup()
	res, err := vmcore.WriteFile(pf, vf, j.opt)
	if err != nil {
		return nil, fmt.Errorf("%s: writing the filtered vmcore failed: %w", j.new, err)
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return nil, fmt.Errorf("%s: %w", j.new, err)
	}
	if err := blockdev.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("%s: syncing the directory: %w", dir, err)
	}
	return res, nil
}
