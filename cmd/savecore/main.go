// Command savecore saves the crash dumps that the diskdump kernel module
// left on dump partitions as vmcore files for crash(8).
//
//	savecore [-D] [-f] [-p] [-P flags] [-v|-q] [-X] [-d DIR] [-F elf|diskdump|kdump] [--verify] [-C CONFIG] [DEVICE...]
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
	"runtime/debug"
	"syscall"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/savecore"
)

// Exit codes (README "Exit codes", doc/FORMAT.md §9.1).
const (
	exitOK    = 0 // saved; in CONFIG mode also: no dump anywhere
	exitFail  = 1 // any failure
	exitUsage = 2 // usage error
	// exitLocked: a device or the dump root was locked by another savecore
	// or dumpformat for longer than the wait (the others were handled).
	exitLocked = 3
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "devel"

const help = `Usage:
  savecore [-D] [-f] [-p] [-P flags] [-v|-q] [-X] [-d DIR] [-F elf|diskdump|kdump] [--verify] [-C CONFIG] [DEVICE...]
  savecore -V

Save the crash dumps that the diskdump kernel module left on dump partitions
as vmcore files for crash(8), in DIR/127.0.0.1-YYYY-MM-DD-HH:MM/vmcore (local
time of the crash). DEVICE is a partition or a partition image file. With no
DEVICE, every device of the DEVICE list in CONFIG is examined in order. The
path of each vmcore written is printed on stdout; messages go to stderr.

Flags:
  -C CONFIG  sysconfig file (default /etc/sysconfig/diskdump) with
             DEVICE=/dev/sda3:/dev/hda and optionally DUMPDIR=DIR
  -d DIR     dump root (default DUMPDIR from CONFIG, else /var/crash);
             scripts are looked for in DIR/scripts
  -F FORMAT  vmcore format: elf, diskdump or kdump (default, or auto: elf
             for uncompressed dumps, diskdump for compressed ones)
  --verify   compressed dumps: inflate every zlib record before it is copied
             into a diskdump or kdump vmcore (about 4.5 s of CPU per GiB dumped,
             spread over the cores); a damaged record is not copied and its
             page is reported lost, like a page the kernel did not write
             (extension; in the rc script: SAVECORE_OPTS=--verify)
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

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return "savecore (dumpkit) " + v
}

// flags holds the parsed command line.
type flags struct {
	del, delOnly, force, prog, verbose, quiet, showVer, verify bool
	dir, format, confPath                                      string
	mask                                                       uint64
	devs                                                       []string
	set                                                        map[string]bool // flags given explicitly
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
	}
	if err := savecore.CheckFormat(f.format); err != nil {
		return usageError(stderr, "-F: %s", trimPkg(err))
	}
	if f.set["P"] {
		var err error
		if f.mask, err = savecore.ParseMask(mask); err != nil {
			return usageError(stderr, "-P: %s", trimPkg(err))
		}
	}
	return -1
}

// newLogger builds the command's handler: a text handler on the console
// without timestamps (the console and the journal stamp lines themselves).
func newLogger(con io.Writer, f *flags) *slog.Logger {
	level := slog.LevelInfo
	switch {
	case f.verbose:
		level = slog.LevelDebug
	case f.quiet:
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(con, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// devicesAndRoot resolves the devices and the dump root. CONFIG is required
// with no DEVICE or with -C; otherwise the default file is read, if it
// exists, for DUMPDIR only. ok false means exit with code.
func devicesAndRoot(f *flags, log *slog.Logger) (devs []string, root string, code int, ok bool) {
	configMode := len(f.devs) == 0
	var cfg *savecore.Config
	if configMode || f.set["C"] || !f.set["d"] {
		var err error
		cfg, err = savecore.LoadConfig(f.confPath)
		if err != nil {
			if configMode || f.set["C"] || !errors.Is(err, os.ErrNotExist) {
				log.Error("cannot read the configuration", "config", f.confPath, "err", err)
				return nil, "", exitFail, false
			}
			cfg = nil
		}
	}
	devs = f.devs
	if configMode {
		devs = cfg.Devices
		if len(devs) == 0 {
			log.Warn("no DEVICE in the configuration: nothing to do", "config", f.confPath)
			return nil, "", exitOK, false
		}
		log.Debug("devices from the configuration", "config", f.confPath, "devices", devs)
	}
	root = f.dir
	if root == "" && cfg != nil {
		root = cfg.DumpDir
	}
	if root == "" {
		root = savecore.DefaultDir
	}
	return devs, root, 0, true
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
	showProgress := f.prog
	if file, ok := stderr.(*os.File); ok && !f.quiet && blockdev.IsTerminal(file) {
		showProgress = true
	}
	con := newConsole(stderr, showProgress)
	log := newLogger(con, f)
	devs, root, code, ok := devicesAndRoot(f, log)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer watchStatus(con)()
	opt := savecore.Options{
		Dir:              root,
		Format:           f.format,
		Delete:           f.del,
		DeleteOnly:       f.delOnly,
		Force:            f.force,
		AbsentOK:         len(f.devs) == 0,
		UncompressedMask: f.mask,
		VerifyRecords:    f.verify,
		Progress:         con.progress,
		Logger:           log,
	}
	return report(ctx, savecore.SaveDevices(ctx, devs, opt), len(f.devs) == 0, stdout, log)
}

// report prints the vmcore paths on stdout and returns the exit status.
func report(ctx context.Context, rep *savecore.Report, configMode bool, stdout io.Writer, log *slog.Logger) int {
	if !configMode {
		for _, r := range rep.Results {
			if r.Outcome == savecore.OutcomeNoDump {
				log.Error("no dump on the device", "device", r.Device)
			}
		}
	}
	for _, p := range rep.Paths() {
		fmt.Fprintln(stdout, p)
	}
	switch {
	case ctx.Err() != nil:
		log.Error("interrupted")
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
