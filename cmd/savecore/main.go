// Command savecore saves the crash dumps that the diskdump kernel module
// left on dump partitions as vmcore files for crash(8).
//
//	savecore [-D] [-f] [-p] [-P flags] [-q|-v] [-X] [-d DIR] [-F elf|diskdump|kdump] [--verify]
//	         [--dump-level N] [--compress ALGO] [--max-dumps N] [--min-free SIZE]
//	         [--system-map FILE] [-C CONFIG] [DEVICE...]
//	savecore --check [-C CONFIG] [DEVICE...]
//	savecore -V
//
// Run savecore -h for the flags and exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/internal/buildinfo"
	"github.com/dumpkit/dumpkit/internal/cmdlog"
	"github.com/dumpkit/dumpkit/savecore"
)

// Exit codes (README "Exit codes", doc/FORMAT.md §9.1).
const (
	exitOK    = 0 // saved; in CONFIG mode also: no dump anywhere; --check: a dump waits
	exitFail  = 1 // any failure; --check: no dump waits
	exitUsage = 2 // usage error
	// exitLocked: a device or the dump root was locked by another savecore
	// or dumpformat for longer than the wait (the others were handled).
	exitLocked = 3
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "devel"

const help = `Usage:
  savecore [-D] [-f] [-p] [-P flags] [-q|-v] [-X] [-d DIR] [-F elf|diskdump|kdump] [--verify]
           [--dump-level N] [--compress ALGO] [--max-dumps N] [--min-free SIZE]
           [--system-map FILE] [-C CONFIG] [DEVICE...]
  savecore --check [-C CONFIG] [DEVICE...]
  savecore --dmesg SOURCE [--system-map FILE]
  savecore -V

Save the crash dumps that the diskdump kernel module left on dump partitions
as vmcore files for crash(8), in DIR/127.0.0.1-YYYY-MM-DD-HH:MM/vmcore (local
time of the crash), with an info file beside it that describes the dump.
DEVICE is a partition or a partition image file. With no DEVICE, every
device of the DEVICE list in CONFIG is examined in order. The path of each
vmcore written is printed on stdout; messages go to stderr, one line per
event ("savecore: DEVICE: what happened"), with the syslog priority prefix
("<3>" for errors) when stderr is the systemd journal.

Flags:
  -C CONFIG  sysconfig file (default /etc/sysconfig/diskdump) with
             DEVICE=/dev/sda3:/dev/hda and optionally DUMPDIR=DIR,
             MAXDUMPS=N, MINFREE=SIZE and DUMPLEVEL=N (the flags below
             win); a kdump.conf is recognised: its raw lines are the
             devices, its path the dump root
  --check    only report the dumps waiting, one line each on stdout
             (device, crash time, host, release, machine, status, sizes);
             opens the devices read-only and writes nothing
  --max-dumps N
             after a save, remove the oldest dump directories of DIR until
             N remain, the new one included; only directories savecore
             names (127.0.0.1-YYYY-MM-DD-HH:MM[.N]), that belong to its user
             and that hold nothing but what it writes (0: keep all)
  --min-free SIZE
             space to leave free in DIR: KiB (512000) or IEC (500Mi, 2Gi);
             a vmcore that does not fit with it to spare is handled like
             one that does not fit at all (diskdump-nospace); default
             MINFREE from CONFIG, else the KiB in DIR/minfree
  -d DIR     dump root (default DUMPDIR from CONFIG, else /var/crash);
             scripts are looked for in DIR/scripts
  -F FORMAT  vmcore format: elf, diskdump or kdump (default, or auto: elf
             for uncompressed dumps, diskdump for compressed ones)
  --dump-level N
             leave more pages out while saving, by diskdump's dump_level
             bits (not makedumpfile's -d): 1 cache, 2 zero, 4 free, 8 anon,
             16 keep private cache; bits the dump cannot decide (4 always,
             all but 2 for uncompressed dumps) are said once, never refused
             (default DUMPLEVEL from CONFIG, else 0)
  --compress ALGO
             page compression of a kdump vmcore (-F kdump): zlib (default,
             as makedumpfile -c), lzo, snappy or zstd
  --verify   compressed dumps: inflate every zlib record before it is copied
             into a diskdump or kdump vmcore (about 4.5 s of CPU per GiB dumped,
             spread over the cores); a damaged record is not copied and its
             page is reported lost, like a page the kernel did not write
             (extension; in the rc script: SAVECORE_OPTS=--verify)
  --system-map FILE
             System.map of the dumped kernel, for vmcore-dmesg.txt when the
             dump holds no VMCOREINFO (default /boot/System.map-RELEASE)
  --dmesg SOURCE
             print the kernel log of a dump partition or vmcore on stdout
             and write nothing
  -D         delete the dump from the partition once its vmcore is durable
             and restore the format signatures the kernel checks (a dump
             that met read errors is kept)
  -X         delete the dump from the partition without saving it
  -f         save even if the dump directory already exists
  -P FLAGS   page-flag mask (C integer: 8, 0x8, 010): pages whose page_flags
             have any of these bits are stored uncompressed (compressed dumps)
  -p         show progress on stderr (default when stderr is a terminal);
             SIGUSR1 prints a status line at any time
  -q         quiet: print errors only
  -v         verbose: print debug messages
  -V         print the version and exit
  -h, --help print this help and exit

Scripts, run with the arguments 127.0.0.1 and the dump directory when they
are executable, owned by root (or the caller) and not group/world-writable:
  DIR/scripts/diskdump-nospace  space is short: a non-zero exit makes savecore
                                check once more, exit 0 gives up
  DIR/scripts/diskdump-success  a vmcore was saved; its exit status is logged

Exit status:
  0  dump saved (with no DEVICE: every dump found was saved, or none was
     found; a device of the list that does not exist is only warned about)
  1  any failure, including no dump on a named DEVICE, an existing dump
     directory without -f, and not enough space (after diskdump-nospace)
  2  usage error
  3  a device or the dump root stayed locked by another savecore or
     dumpformat for longer than the wait (2 minutes); the other devices
     were handled
With --check:
  0  a dump waits on at least one device
  1  no dump waits (or no device could be read)
  2  usage error
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// parseInterspersed parses flags anywhere among the DEVICE arguments, as
// GNU-style tools do, so "savecore /dev/sdb1 -D" means what it says. An
// argument "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		consumed := args[:len(args)-fs.NArg()]
		rest := fs.Args()
		if len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "savecore: "+format+" (savecore -h for help)\n", args...)
	return exitUsage
}

func versionString() string { return buildinfo.String("savecore", version) }

// flags holds the parsed command line.
type flags struct {
	del, delOnly, force, prog, verbose, quiet, showVer, verify, checkOnly bool
	dir, format, confPath, minFreeArg                                     string
	mask                                                                  uint64
	maxDumps                                                              int
	minFree                                                               int64
	devs                                                                  []string
	systemMap, dmesgSrc                                                   string // --system-map, --dmesg
	dumpLevelArg, compress                                                string // --dump-level, --compress
	dumpLevel                                                             int
	set                                                                   map[string]bool // flags given explicitly
}

// newFlagSet declares every flag of savecore into f; mask receives -P as
// given. The man page test enumerates it.
func newFlagSet(f *flags, mask *string) *flag.FlagSet {
	fs := flag.NewFlagSet("savecore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.BoolVar(&f.del, "D", false, "delete the dump once saved")
	fs.BoolVar(&f.delOnly, "X", false, "delete the dump without saving it")
	fs.BoolVar(&f.force, "f", false, "save even if the dump directory exists")
	fs.BoolVar(&f.prog, "p", false, "show progress")
	fs.StringVar(mask, "P", "", "page-flag mask of pages stored uncompressed")
	fs.BoolVar(&f.verbose, "v", false, "verbose")
	fs.BoolVar(&f.quiet, "q", false, "quiet")
	fs.BoolVar(&f.showVer, "V", false, "print the version")
	fs.StringVar(&f.dir, "d", "", "dump root")
	fs.StringVar(&f.format, "F", "", "vmcore format")
	fs.BoolVar(&f.verify, "verify", false, "inflate every zlib record before copying it")
	fs.StringVar(&f.confPath, "C", savecore.DefaultConfigPath, "sysconfig file")
	fs.StringVar(&f.systemMap, "system-map", "", "System.map of the dumped kernel")
	fs.StringVar(&f.dmesgSrc, "dmesg", "", "print the kernel log of a partition or vmcore")
	fs.BoolVar(&f.checkOnly, "check", false, "only report the dumps waiting")
	fs.IntVar(&f.maxDumps, "max-dumps", 0, "dump directories to keep")
	fs.StringVar(&f.minFreeArg, "min-free", "", "space to leave free in DIR")
	fs.StringVar(&f.dumpLevelArg, "dump-level", "", "diskdump dump_level applied while saving")
	fs.StringVar(&f.compress, "compress", "", "page compression of a kdump vmcore")
	return fs
}

// parseFlags parses args; a non-negative code means exit with it now.
func parseFlags(args []string, stdout, stderr io.Writer) (*flags, int) {
	f := &flags{set: map[string]bool{}}
	mask := new(string)
	fs := newFlagSet(f, mask)
	devs, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		io.WriteString(stdout, help)
		return nil, exitOK
	}
	if err != nil {
		return nil, usageError(stderr, "%v", err)
	}
	f.devs = devs
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if f.showVer {
		fmt.Fprintln(stdout, versionString())
		return nil, exitOK
	}
	return f, f.check(*mask, stderr)
}

// check rejects contradictory or malformed flags (exit 2) and parses -P.
func (f *flags) check(mask string, stderr io.Writer) int {
	switch {
	case f.del && f.delOnly:
		return usageError(stderr, "-D and -X exclude each other")
	case f.verbose && f.quiet:
		return usageError(stderr, "-v and -q exclude each other")
	case f.set["d"] && f.dir == "":
		return usageError(stderr, "-d needs a directory")
	case f.checkOnly && (f.del || f.delOnly):
		return usageError(stderr, "--check only reads: it excludes -D and -X")
	case f.maxDumps < 0:
		return usageError(stderr, "--max-dumps %d: want the number of dump directories to keep (0: all)", f.maxDumps)
	}
	if f.set["min-free"] {
		var err error
		if f.minFree, err = savecore.ParseMinFree(f.minFreeArg); err != nil {
			return usageError(stderr, "--min-free: %s", trimPkg(err))
		}
	}
	if err := savecore.CheckFormat(f.format); err != nil {
		return usageError(stderr, "-F: %s", trimPkg(err))
	}
	if code := f.checkFilter(stderr); code >= 0 {
		return code
	}
	if f.set["P"] {
		var err error
		if f.mask, err = savecore.ParseMask(mask); err != nil {
			return usageError(stderr, "-P: %s", trimPkg(err))
		}
	}
	return -1
}

// checkFilter checks --dump-level and --compress (exit 2 when malformed).
func (f *flags) checkFilter(stderr io.Writer) int {
	if f.set["dump-level"] {
		var err error
		if f.dumpLevel, err = savecore.ParseDumpLevel(f.dumpLevelArg); err != nil {
			return usageError(stderr, "--dump-level: %s", trimPkg(err))
		}
	}
	if err := savecore.CheckCompression(f.compress); err != nil {
		return usageError(stderr, "--compress: %s", trimPkg(err))
	}
	if f.compress != "" && f.format != "kdump" {
		return usageError(stderr, "--compress chooses the page compression of a kdump vmcore: add -F kdump")
	}
	return -1
}

// newLogger builds the command's handler (internal/cmdlog): one plain line
// per event on the console, with the journal's priority prefix when stderr
// is the journal; -v adds debug lines, -q keeps errors only.
func newLogger(con io.Writer, f *flags, journal bool) *slog.Logger {
	level := slog.LevelInfo
	switch {
	case f.verbose:
		level = slog.LevelDebug
	case f.quiet:
		level = slog.LevelError
	}
	return slog.New(cmdlog.New(con, cmdlog.Options{Prog: "savecore", Level: level, Journal: journal}))
}

// settings is what the command line and CONFIG decide together.
type settings struct {
	devs      []string
	root      string
	maxDumps  int
	minFree   int64
	dumpLevel int
}

// loadConfig reads CONFIG. It is needed with no DEVICE or with -C;
// otherwise the default file is read if it exists, for DUMPDIR, MAXDUMPS
// and MINFREE. ok false means exit with exitFail.
func loadConfig(f *flags, log *slog.Logger) (cfg *savecore.Config, ok bool) {
	required := len(f.devs) == 0 || f.set["C"]
	cfg, err := savecore.LoadConfig(f.confPath)
	if err == nil {
		return cfg, true
	}
	if !required && errors.Is(err, os.ErrNotExist) {
		return nil, true
	}
	log.Error("cannot read the configuration: {err}", "err", err)
	return nil, false
}

// devicesAndRoot resolves the devices, the dump root and the limits from
// the flags and CONFIG. ok false means exit with code.
func devicesAndRoot(f *flags, log *slog.Logger) (s settings, code int, ok bool) {
	cfg, ok := loadConfig(f, log)
	if !ok {
		return s, exitFail, false
	}
	s.devs = f.devs
	if len(f.devs) == 0 {
		s.devs = cfg.Devices
		if len(s.devs) == 0 {
			log.Warn("no DEVICE in {config}: nothing to do; list the dump partitions there, or name them on the command line",
				"config", f.confPath)
			return s, exitOK, false
		}
		log.Debug("devices from {config}: {devices}", "config", f.confPath, "devices", s.devs)
	}
	s.root, s.maxDumps, s.minFree, s.dumpLevel = f.dir, f.maxDumps, f.minFree, f.dumpLevel
	if cfg != nil {
		if !f.set["dump-level"] {
			s.dumpLevel = cfg.DumpLevel
		}
		if s.root == "" {
			s.root = cfg.DumpDir
		}
		if !f.set["max-dumps"] {
			s.maxDumps = cfg.MaxDumps
		}
		if !f.set["min-free"] {
			s.minFree = cfg.MinFree
		}
	}
	if s.root == "" {
		s.root = savecore.DefaultDir
	}
	return s, 0, true
}

// openDevices opens the devices (read-write when write is set) and names
// each as the user gave it; the path it resolves to is shown with -v only.
func openDevices(paths []string, write bool, log *slog.Logger) ([]savecore.Input, func()) {
	inputs, closeAll := savecore.OpenDevices(paths, write, savecore.DefaultLockWait)
	for i := range inputs {
		if inputs[i].Dev == nil {
			continue
		}
		inputs[i].Name = paths[i]
		if d, ok := inputs[i].Dev.(*blockdev.Device); ok {
			kind := "an image file"
			if d.IsBlockDevice() {
				kind = "a block device"
			}
			mode := "read-only"
			if d.Mode() == blockdev.ReadWrite {
				mode = "read-write"
			}
			if d.RealPath() == paths[i] {
				log.Debug("{kind} of {size}, opened {mode}", "device", paths[i], "kind", kind,
					"size", iec(d.Size())+"B", "mode", mode)
				continue
			}
			log.Debug("{kind} of {size}, opened {mode} as {path}", "device", paths[i], "kind", kind,
				"size", iec(d.Size())+"B", "mode", mode, "path", d.RealPath())
		}
	}
	return inputs, closeAll
}

// watchStatus prints a status line on each SIGUSR1 until the returned
// function is called; a request that arrived as the save ended is still
// answered.
func watchStatus(con *console) (stop func()) {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-usr1:
				con.status()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(usr1)
		close(done)
		<-exited
		select {
		case <-usr1:
			con.status()
		default:
		}
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	f, code := parseFlags(args, stdout, stderr)
	if f == nil || code >= 0 {
		return code
	}
	if f.set["dmesg"] {
		return runDmesg(f, stdout, stderr) // dmesg.go
	}
	file, _ := stderr.(*os.File)
	journal := cmdlog.IsJournal(file)
	showProgress := f.prog || (file != nil && !f.quiet && blockdev.IsTerminal(file))
	con := newConsole(stderr, showProgress)
	if journal {
		con.prefix = fmt.Sprintf("<%d>", cmdlog.Priority(slog.LevelInfo))
	}
	log := newLogger(con, f, journal)
	s, code, ok := devicesAndRoot(f, log)
	if !ok {
		if f.checkOnly && code == exitOK {
			return exitFail // no device: no dump waits
		}
		return code
	}
	if f.checkOnly {
		return check(s, f.format, stdout, log)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer watchStatus(con)()
	opt := savecore.Options{
		Dir:              s.root,
		Format:           f.format,
		Delete:           f.del,
		DeleteOnly:       f.delOnly,
		Force:            f.force,
		AbsentOK:         len(f.devs) == 0,
		UncompressedMask: f.mask,
		VerifyRecords:    f.verify,
		SystemMap:        f.systemMap,
		MaxDumps:         s.maxDumps,
		MinFree:          s.minFree,
		DumpLevel:        s.dumpLevel,
		Compress:         f.compress,
		NoDumpFails:      len(f.devs) > 0,
		Version:          versionString(),
		Progress:         con.progress,
		Logger:           log,
	}
	inputs, closeAll := openDevices(s.devs, f.del || f.delOnly, log)
	defer closeAll()
	return report(ctx, savecore.Save(ctx, inputs, opt), len(f.devs) == 0, stdout, log)
}

// report prints the vmcore paths on stdout and returns the exit status.
func report(ctx context.Context, rep *savecore.Report, configMode bool, stdout io.Writer, log *slog.Logger) int {
	for _, p := range rep.Paths() {
		fmt.Fprintln(stdout, p)
	}
	switch {
	case ctx.Err() != nil:
		log.Error("interrupted: the dumps not saved yet stay on their partitions; run savecore again")
		return exitFail
	case rep.Locked():
		return exitLocked
	case rep.Failed(!configMode):
		return exitFail
	default:
		return exitOK
	}
}

func trimPkg(err error) string {
	s := err.Error()
	const p = "savecore: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
