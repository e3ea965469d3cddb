package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/buildinfo"
	"github.com/dumpkit/dumpkit/internal/cmdlog"
	"github.com/dumpkit/dumpkit/internal/failpoint"
	"github.com/dumpkit/dumpkit/internal/modparams"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

// Where the loaded diskdump module publishes its parameters (doc/FORMAT.md §7);
// variables so that tests can point them at fixtures.
var (
	procDiskdumpPath = modparams.ProcPath
	sysParamsDir     = modparams.SysDir
)

// statusSignal makes a running format print one status line.
var statusSignal os.Signal = syscall.SIGUSR1

const usageText = `Usage:
  dumpformat [-v|-q] [-i] [[-a] [-p] [-f] [-n] | -c] [--json] [--arch A] [--block-order N]
             [--sample-rate N] [--total-blocks N] [--wait D] DEVICE
  dumpformat -V
  dumpformat -R [-v|-q] [-m CORE.elf] [--arch A] [--compress] [--dump-level N] [--block-order N]
             [--sample-rate N] [--ram SIZE] [--seed N] [--release R] [--nodename N]
             [--system-map FILE] [--wait D] DEVICE
  dumpformat -R --flattened [--compress zlib|lzo|snappy|zstd] [-m CORE.elf] [--ram SIZE] ... DEVICE

Formats DEVICE (a partition or a partition image file) for diskdump crash
dumps, checks it (-c), or writes a rehearsal dump to it (-R). A device that
is mounted, active swap or otherwise in use is never written.

Modes:
  (none)   normal format: blocks 1 and 2 and the blocks the kernel samples
           before a dump; block 0 must already carry a valid signature
  -f       initial format: every block, block 0 included; formats over a
           filesystem, swap or dump that DEVICE holds (never over one in use)
  -a       normal format of every block except block 0
  -c       check only; the exit code is the status (see below)
  -R       write a kernel-exact rehearsal dump (synthetic machine, or the
           memory of CORE.elf with -m)
  -V       print the version

Options:
  -v                verbose: debug messages; with -c a summary on stdout
  -q                quiet: only errors on stderr
  -i                accepted and ignored (diskdumpfmt compatibility)
  -p                progress on stderr (default when stderr is a terminal);
                    SIGUSR1 prints one status line at any time
  -n                dry run: say what would be written, write nothing
  --json            with -c: the status, geometry and dump header as JSON;
                    with -n: the plan as JSON; with -R: what was written
  --arch A          x86_64, i386, ia64 or ppc64: block (page) size and byte
                    order of the signatures (default: the host, %s)
  --block-order N   module parameter block_order (default: the loaded
                    module's, from /proc/diskdump or
                    /sys/module/diskdump/parameters, else 2)
  --sample-rate N   module parameter sample_rate (default: the module's, else 8)
  --total-blocks N  blocks a full dump needs (default: the module's
                    total_blocks; 0 = the whole device)
  --wait DURATION   how long to wait while another dumpformat or savecore
                    holds DEVICE (flock(2) on the device or image file):
                    30s, 2m (default 2m); then exit 8
  -h, --help        this help

Rehearsal (-R):
  -m CORE.elf       take the memory from an ELF core file
  --compress        module parameter compress=1
  --dump-level N    module parameter dump_level (default 0)
  --ram SIZE        RAM of the synthetic machine, IEC units (256M, 1G, 256Mi);
                    default the largest whose uncompressed dump fits DEVICE,
                    at most 1 GiB
  --seed N          content seed of the synthetic machine (default 1)
  --release R       utsname.release (default 2.6.9-89.ELsmp; 2.6.9-89.EL on
                    ia64 and ppc64)
  --nodename N      utsname.nodename (default dumpkit.example.com)
  --system-map FILE write the System.map of the synthetic machine's kernel,
                    whose log (boot messages, an oops, the panic) savecore
                    saves as vmcore-dmesg.txt (x86_64 and i386; not with -m)
  --flattened       write what kdump's raw target writes instead: a flattened
                    KDUMP stream (makedumpfile -F) from byte 0, over the old
                    contents; --compress zlib|lzo|snappy|zstd names its page compression

Exit codes when formatting or rehearsing:
  0    done
  7    DEVICE is mounted or in use
  8    DEVICE stayed locked by another dumpformat or savecore (--wait)
  130, 143  interrupted by SIGINT or SIGTERM: a line says what DEVICE needs
  255  any other error, including usage errors
Exit codes of -c:
  0    ready: block 0 and every block the kernel samples carry signatures
  1    holds a dump (run savecore)
  2    needs initial format (dumpformat -f)
  3    needs format (dumpformat)
  4    not suitable: unreadable, or too small
  5    swap partition (usable for dumps as it is)
  6    swap partition holding a dump
  7    mounted or in use
  8    locked by another dumpformat or savecore for longer than --wait
`

// errUsage marks command-line errors: exit 255 with a one-line hint.
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// options are the parsed command line.
type options struct {
	// Modes and switches.
	check, initial, all, rehearse, dryRun, version bool
	verbose, quiet, ignored, progress, json        bool

	// Format parameters.
	arch                   diskdump.Arch
	blockOrder, sampleRate int
	totalBlocks            uint64

	set    map[string]bool // flags given explicitly
	device string

	// Rehearsal (-R).
	core, ram, release, nodename string
	systemMap                    string // --system-map: where -R writes the synthetic kernel's System.map
	compress                     bool
	compressAlgo                 string // --compress=NAME: flattened_rehearse.go
	flattened                    bool   // --flattened: flattened_rehearse.go
	dumpLevel                    int
	seed                         int64

	wait time.Duration // --wait: how long to wait for the device's lock
}

// exitLocked is the exit status when another dumpformat or savecore holds
// the device's lock for longer than --wait, in every mode.
const exitLocked = 8

// defaultWait is --wait's default.
const defaultWait = 2 * time.Minute

func hostArch() diskdump.Arch {
	switch runtime.GOARCH {
	case "386":
		return diskdump.ArchI386
	case "ppc64":
		return diskdump.ArchPPC64
	}
	return diskdump.ArchX86_64
}

// newFlagSet defines the flags into o; arch receives --arch.
func newFlagSet(o *options, arch *string) *flag.FlagSet {
	fs := flag.NewFlagSet("dumpformat", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.BoolVar(&o.verbose, "v", false, "verbose")
	fs.BoolVar(&o.quiet, "q", false, "quiet")
	fs.BoolVar(&o.ignored, "i", false, "ignored")
	fs.BoolVar(&o.all, "a", false, "all blocks")
	fs.BoolVar(&o.progress, "p", false, "progress")
	fs.BoolVar(&o.initial, "f", false, "initial format")
	fs.BoolVar(&o.check, "c", false, "check")
	fs.BoolVar(&o.dryRun, "n", false, "dry run")
	fs.BoolVar(&o.json, "json", false, "JSON output")
	fs.BoolVar(&o.version, "V", false, "version")
	fs.BoolVar(&o.rehearse, "R", false, "rehearsal dump")
	fs.StringVar(arch, "arch", hostArch().String(), "architecture")
	fs.IntVar(&o.blockOrder, "block-order", 2, "block_order")
	fs.IntVar(&o.sampleRate, "sample-rate", 8, "sample_rate")
	fs.Uint64Var(&o.totalBlocks, "total-blocks", 0, "total_blocks")
	fs.StringVar(&o.core, "m", "", "ELF core")
	fs.Var(compressFlag{o}, "compress", "compress")
	fs.BoolVar(&o.flattened, "flattened", false, "flattened KDUMP stream")
	fs.IntVar(&o.dumpLevel, "dump-level", 0, "dump_level")
	fs.StringVar(&o.ram, "ram", "", "RAM size")
	fs.Int64Var(&o.seed, "seed", 1, "seed")
	fs.StringVar(&o.release, "release", "", "utsname.release")
	fs.StringVar(&o.nodename, "nodename", "", "utsname.nodename")
	fs.StringVar(&o.systemMap, "system-map", "", "System.map to write")
	fs.DurationVar(&o.wait, "wait", defaultWait, "lock wait")
	return fs
}

func parseArgs(args []string) (*options, error) {
	o := &options{set: map[string]bool{}}
	arch := new(string)
	fs := newFlagSet(o, arch)
	if err := fs.Parse(joinCompressArg(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageErr("%v", err)
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if o.version {
		return o, nil
	}
	a, err := diskdump.ParseArch(*arch)
	if err != nil || (a.String() != *arch && o.set["arch"]) {
		return nil, usageErr("--arch %q: want x86_64, i386, ia64 or ppc64", *arch)
	}
	o.arch = a
	if fs.NArg() != 1 {
		return nil, usageErr("want exactly one DEVICE, got %d arguments", fs.NArg())
	}
	o.device = fs.Arg(0)
	if o.blockOrder < 0 || o.blockOrder > 30 {
		return nil, usageErr("--block-order %d: want 0..30", o.blockOrder)
	}
	if o.sampleRate > 62-o.blockOrder || o.sampleRate < -1 {
		return nil, usageErr("--sample-rate %d: want -1..%d", o.sampleRate, 62-o.blockOrder)
	}
	conflict := func(a string, bs ...string) error {
		for _, b := range bs {
			if o.set[b] {
				return usageErr("-%s cannot be combined with -%s", a, b)
			}
		}
		return nil
	}
	switch {
	case o.check:
		if err := conflict("c", "a", "f", "p", "n", "R"); err != nil {
			return nil, err
		}
	case o.rehearse:
		if err := conflict("R", "a", "f", "n"); err != nil {
			return nil, err
		}
	default:
		if o.json && !o.dryRun {
			return nil, usageErr("--json needs -c, -n or -R")
		}
	}
	if err := checkFlattenedArgs(o); err != nil {
		return nil, err
	}
	if o.rehearse && o.set["total-blocks"] {
		return nil, usageErr("--total-blocks cannot be combined with -R: a rehearsal's total_blocks is its machine's")
	}
	for _, f := range []struct{ name, v string }{{"release", o.release}, {"nodename", o.nodename}} {
		if len(f.v) > 64 {
			return nil, usageErr("--%s: %d bytes, the utsname field holds at most 64", f.name, len(f.v))
		}
	}
	if !o.rehearse {
		for _, name := range []string{"m", "compress", "dump-level", "ram", "seed", "release", "nodename", "system-map"} {
			if o.set[name] {
				return nil, usageErr("-%s needs -R", name)
			}
		}
	}
	if o.core != "" && o.systemMap != "" {
		return nil, usageErr("--system-map cannot be used with -m: the memory of the core is dumped as it is")
	}
	return o, nil
}

// command is one invocation: options, output streams and logger.
type command struct {
	o      *options
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	fp     diskdump.FormatParams
	params string // where the module parameters came from
	mp     diskdump.ModuleParams
}

// newLogger builds dumpformat's handler (internal/cmdlog): one plain line
// per event, "dumpformat: ...", with the journal's priority prefix when
// stderr is the journal; -v adds debug lines, -q keeps errors only.
func newLogger(w io.Writer, o *options) *slog.Logger {
	level := slog.LevelInfo
	switch {
	case o.verbose:
		level = slog.LevelDebug
	case o.quiet:
		level = slog.LevelError
	}
	out := w
	if sw, ok := w.(*syncWriter); ok {
		out = sw.w
	}
	file, _ := out.(*os.File)
	return slog.New(cmdlog.New(w, cmdlog.Options{Prog: "dumpformat", Level: level, Journal: cmdlog.IsJournal(file)}))
}

func versionString() string { return buildinfo.String("dumpformat", version) }

// run is the whole program: it parses args, does the work and returns the
// exit code.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, usageText, hostArch())
		return 0
	}
	if err == nil && o.version {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	var status diskdump.CheckStatus
	if err == nil {
		// The logger and the progress line share stderr.
		stderr := &syncWriter{w: stderr}
		c := &command{o: o, stdout: stdout, stderr: stderr, log: newLogger(stderr, o)}
		if o.ignored {
			c.log.Debug("-i accepted and ignored: its diskdumpfmt meaning is unknown (doc/FORMAT.md §13 item 5)")
		}
		c.setParams()
		switch {
		case o.check:
			status = c.check()
		case o.rehearse:
			err = c.rehearse()
		default:
			err = c.format()
		}
		if err != nil && !errors.Is(err, errUsage) {
			c.log.Error(err.Error())
		}
	}
	// The exit codes of diskdumpfmt (doc/FORMAT.md §11.1), which rc scripts test.
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "dumpformat: %s (see dumpformat -h)\n", strings.TrimPrefix(err.Error(), "usage: "))
		return 255
	case o != nil && o.check:
		return int(status) // 0..7
	case err == nil:
		return 0
	case errors.Is(err, blockdev.ErrInUse):
		return 7
	case errors.Is(err, blockdev.ErrLocked):
		return exitLocked
	case errors.As(err, new(*interruptedError)):
		var ie *interruptedError
		errors.As(err, &ie)
		return 128 + int(ie.sig)
	default:
		return 255
	}
}

// setParams chooses the format parameters: the architecture's page size
// and byte order, and the sampling parameters of the loaded module unless
// given on the command line, else the module's defaults.
func (c *command) setParams() {
	o := c.o
	mp, src := modparams.Load(procDiskdumpPath, sysParamsDir, c.log)
	c.params = src
	c.fp = diskdump.FormatParams{
		BlockSize:  o.arch.PageSize(),
		Order:      o.arch.ByteOrder(),
		BlockOrder: mp.BlockOrder,
		SampleRate: mp.SampleRate,
	}
	c.mp = mp
	if mp.HasTotalBlocks {
		c.fp.TotalBlocks, c.fp.TotalFrom = mp.TotalBlocks, diskdump.SizeFromModule
	}
	if o.set["block-order"] {
		c.fp.BlockOrder = uint(o.blockOrder)
	}
	if o.set["sample-rate"] {
		c.fp.SampleRate = o.sampleRate
	}
	if o.set["total-blocks"] {
		c.fp.TotalBlocks, c.fp.TotalFrom = o.totalBlocks, diskdump.SizeFromUser
	}
	c.log.Debug("parameters", "arch", o.arch, "block_size", c.fp.BlockSize, "block_order", c.fp.BlockOrder,
		"sample_rate", c.fp.SampleRate, "total_blocks", c.fp.TotalBlocks, "module_params", src)
}

// checkJSON is the --json output of -c.
type checkJSON struct {
	Device          string      `json:"device"`
	RealPath        string      `json:"real_path,omitempty"`
	Status          int         `json:"status"`
	StatusText      string      `json:"status_text"`
	Reason          string      `json:"reason"`
	Arch            string      `json:"arch"`
	BlockSize       int         `json:"block_size"`
	BlockOrder      uint        `json:"block_order"`
	SampleRate      int         `json:"sample_rate"`
	Params          string      `json:"params_from"`
	DeviceBytes     int64       `json:"device_bytes"`
	DeviceBlocks    uint64      `json:"device_blocks"`
	PartitionBlocks uint64      `json:"partition_blocks"`
	TotalBlocks     uint64      `json:"total_blocks"`
	MinBlocks       uint64      `json:"min_blocks"`
	Swap            bool        `json:"swap"`
	Block0Valid     bool        `json:"block0_valid"`
	Sampled         uint64      `json:"sampled_blocks"`
	Bad             uint64      `json:"bad_blocks"`
	FirstBad        int64       `json:"first_bad_block"`
	Header          *headerJSON `json:"header"`
	HeaderError     string      `json:"header_error,omitempty"`
	Sizes           []sizeJSON  `json:"partition_sizes,omitempty"`
	Tails           []tailJSON  `json:"tail_chunks,omitempty"`

	Flattened *flattenedJSON `json:"flattened,omitempty"` // kdump raw target: flattened.go
	// Recoverable counts the pages of an interrupted dump (recoverable.go).
	Recoverable *recoverableJSON `json:"recoverable,omitempty"`
}

type headerJSON struct {
	Signature      string            `json:"signature"`
	HeaderVersion  int32             `json:"header_version"`
	Layout         string            `json:"layout"`
	Utsname        map[string]string `json:"utsname"`
	Timestamp      map[string]int64  `json:"timestamp"`
	Time           string            `json:"time"`
	Status         uint32            `json:"status"`
	StatusNames    string            `json:"status_names"`
	Complete       bool              `json:"complete"`
	Compressed     bool              `json:"compressed"`
	BlockSize      int32             `json:"block_size"`
	SubHdrSize     int32             `json:"sub_hdr_size"`
	BitmapBlocks   uint32            `json:"bitmap_blocks"`
	MaxMapnr       uint32            `json:"max_mapnr"`
	TotalRAMBlocks uint32            `json:"total_ram_blocks"`
	DeviceBlocks   uint32            `json:"device_blocks"`
	WrittenBlocks  uint32            `json:"written_blocks"`
	HeaderBlocks   uint64            `json:"header_blocks"`    // 2 + sub_hdr_size
	FirstDataBlock uint64            `json:"first_data_block"` // header_blocks + bitmap_blocks
	NeededBlocks   uint64            `json:"needed_blocks"`    // first_data_block + total_ram_blocks: a full dump
	CurrentCPU     uint32            `json:"current_cpu"`
	NrCPUs         int32             `json:"nr_cpus"`
	Tasks          []uint64          `json:"tasks"`
}

// neededBlocks is what a full dump of the header's machine takes on the
// partition: header blocks, the bitmaps and one block per RAM page (an
// upper bound for compressed dumps).
func neededBlocks(h *diskdump.Header) uint64 {
	return 2 + uint64(max(h.SubHdrSize, 0)) + uint64(h.BitmapBlocks) + uint64(h.TotalRAMBlocks)
}

func newHeaderJSON(h *diskdump.Header) *headerJSON {
	if h == nil {
		return nil
	}
	u := h.Utsname
	frac := "nsec"
	if h.FracIsMicro() {
		frac = "usec"
	}
	return &headerJSON{
		Signature: h.Signature, HeaderVersion: h.Version, Layout: h.Layout.String(),
		Utsname: map[string]string{"sysname": u.Sysname, "nodename": u.Nodename, "release": u.Release,
			"version": u.Version, "machine": u.Machine, "domainname": u.Domainname},
		Timestamp: map[string]int64{"sec": h.Sec, frac: h.Frac},
		Time:      h.Time().UTC().Format(time.RFC3339Nano),
		Status:    uint32(h.Status), StatusNames: h.Status.String(),
		Complete: h.Status.Complete(), Compressed: h.Status.Compressed(),
		BlockSize: h.BlockSize, SubHdrSize: h.SubHdrSize, BitmapBlocks: h.BitmapBlocks, MaxMapnr: h.MaxMapnr,
		TotalRAMBlocks: h.TotalRAMBlocks, DeviceBlocks: h.DeviceBlocks, WrittenBlocks: h.WrittenBlocks,
		HeaderBlocks: 2 + uint64(max(h.SubHdrSize, 0)), FirstDataBlock: 2 + uint64(max(h.SubHdrSize, 0)) + uint64(h.BitmapBlocks),
		NeededBlocks: neededBlocks(h), CurrentCPU: h.CurrentCPU, NrCPUs: h.NrCPUs, Tasks: h.Tasks,
	}
}

// check is -c: it returns the status and prints the result.
func (c *command) check() diskdump.CheckStatus {
	o := c.o
	out := checkJSON{Device: o.device, Arch: o.arch.String(), BlockSize: c.fp.BlockSize, BlockOrder: c.fp.BlockOrder,
		SampleRate: c.fp.SampleRate, Params: c.params, TotalBlocks: c.fp.TotalBlocks, FirstBad: -1}
	var res *diskdump.CheckResult
	func() {
		ie, err := blockdev.CheckInUse(o.device)
		if ie != nil && !ie.Swap {
			out.Status, out.Reason = int(diskdump.CheckMounted), ie.Error()
			return
		}
		// Active swap is checked like any swap partition: the kernel
		// dumps over it by design (doc/FORMAT.md §3.4). Only a format
		// refuses it.
		if err != nil {
			out.Status, out.Reason = int(diskdump.CheckUnsuitable), err.Error()
			return
		}
		// A shared lock: checks run side by side, but never while a
		// format, rehearsal or savecore holds the device.
		dev, err := blockdev.OpenLocked(o.device, blockdev.ReadOnly, true, o.wait)
		if errors.Is(err, blockdev.ErrLocked) {
			out.Status, out.Reason = exitLocked, err.Error()
			return
		}
		if err != nil {
			out.Status, out.Reason = int(diskdump.CheckUnsuitable), err.Error()
			return
		}
		defer dev.Close()
		out.Device, out.RealPath, out.DeviceBytes = dev.Name(), dev.RealPath(), dev.Size()
		if err := c.addRecorded(dev); err != nil {
			out.Status, out.Reason = int(diskdump.CheckUnsuitable), "unreadable: "+err.Error()
			return
		}
		res, err = diskdump.CheckPartition(dev, dev.Size(), c.fp)
		if err != nil {
			out.Status, out.Reason = int(diskdump.CheckUnsuitable), "unreadable: "+err.Error()
			res = nil
			return
		}
		c.strictTooSmall(res)
		if ie != nil && res.Status != diskdump.CheckSwap && res.Status != diskdump.CheckSwapDump {
			// Active swap whose header the kernel would not accept.
			res.Status, res.Reason = diskdump.CheckMounted, ie.Error()+" (and the kernel would not dump to it: "+res.Reason+")"
		} else if ie != nil {
			res.Reason += " (active swap)"
		}
		out.Status, out.Reason = int(res.Status), res.Reason
		out.Sizes, out.Tails = sizesJSON(res), tailsJSON(res)
		out.DeviceBlocks, out.PartitionBlocks, out.TotalBlocks, out.MinBlocks = res.DeviceBlocks, res.PartitionBlocks, res.TotalBlocks, res.MinBlocks
		out.Swap, out.Block0Valid, out.Sampled, out.Bad, out.FirstBad = res.Swap, res.Block0Valid, res.Sampled, res.Bad, res.FirstBad
		out.Header = newHeaderJSON(res.Header)
		if res.HeaderErr != nil {
			out.HeaderError = res.HeaderErr.Error()
		}
		if o.verbose || o.json {
			out.Recoverable = countRecoverable(dev, dev.Size(), res.Header)
		}
		if sum := flattenedDump(dev, dev.Size()); sum != nil { // kdump raw target: flattened.go
			out.Status, out.Reason, out.HeaderError, out.Flattened = int(diskdump.CheckHoldsDump), flattenedReason(sum), "", newFlattenedJSON(sum)
			res = nil
		}
	}()
	st := diskdump.CheckStatus(out.Status)
	out.StatusText = st.String()
	if out.Status == exitLocked {
		out.StatusText = "locked"
	}
	switch {
	case o.json:
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(&out); err != nil {
			c.log.Error("writing JSON", "err", err)
		}
	case o.verbose:
		c.summary(&out, res)
		io.WriteString(c.stdout, out.Recoverable.text())
		io.WriteString(c.stdout, out.Flattened.text())
	}
	c.log.Info(fmt.Sprintf("%s: %s", out.Device, out.StatusText), "status", out.Status, "reason", out.Reason)
	return st
}

// summary prints the human summary of -c -v on stdout.
func (c *command) summary(out *checkJSON, res *diskdump.CheckResult) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s (%d)\n", out.Device, diskdump.CheckStatus(out.Status), out.Status)
	fmt.Fprintf(&b, "  reason:      %s\n", out.Reason)
	if res == nil {
		io.WriteString(c.stdout, b.String())
		return
	}
	fmt.Fprintf(&b, "  device:      %d blocks of %d bytes (%s), %s signatures (%s)\n", res.DeviceBlocks, res.BlockSize,
		iec(out.DeviceBytes), c.o.arch, orderName(c.fp.Order))
	total := "unknown"
	if res.TotalBlocks != 0 {
		total = strconv.FormatUint(res.TotalBlocks, 10)
	}
	fmt.Fprintf(&b, "  parameters:  block_order %d, sample_rate %d, total_blocks %s (from %s)\n", c.fp.BlockOrder, c.fp.SampleRate, total, c.params)
	if h := res.Header; h != nil {
		fmt.Fprintf(&b, "  dump time:   %s (%s)\n", h.Time().UTC().Format("2006-01-02 15:04:05 MST"), h.Time().Local().Format("2006-01-02 15:04:05 MST"))
		fmt.Fprintf(&b, "  utsname:     %s\n", h.Utsname)
		state := "complete"
		if !h.Status.Complete() {
			state = "incomplete"
		}
		fmt.Fprintf(&b, "  status:      %s (%#x): %s, %s\n", h.Status, uint32(h.Status), state, map[bool]string{true: "compressed", false: "uncompressed"}[h.Status.Compressed()])
		fmt.Fprintf(&b, "  pages:       %d RAM pages, max_mapnr %d, %d CPUs\n", h.TotalRAMBlocks, h.MaxMapnr, h.NrCPUs)
		fmt.Fprintf(&b, "  blocks:      %d written, %d needed for a full dump, device %d\n", h.WrittenBlocks, neededBlocks(h), h.DeviceBlocks)
	} else if res.HeaderErr != nil {
		fmt.Fprintf(&b, "  header:      %v\n", res.HeaderErr)
	}
	if res.Status == diskdump.CheckReady || res.Status == diskdump.CheckNeedsFormat {
		fmt.Fprintf(&b, "  signatures:  block 0 valid; %d sampled blocks checked, %d bad", res.Sampled, res.Bad)
		if res.FirstBad >= 0 {
			fmt.Fprintf(&b, " (first: block %d)", res.FirstBad)
		}
		b.WriteString("\n")
		c.sizesSummary(&b, res)
		fmt.Fprintf(&b, "  size:        %d blocks, at least %d needed", res.DeviceBlocks, res.MinBlocks)
		if res.TotalBlocks > res.DeviceBlocks {
			fmt.Fprintf(&b, "; a full dump needs %d: dumps will be partial", res.TotalBlocks)
		}
		b.WriteString("\n")
	}
	io.WriteString(c.stdout, b.String())
}

func orderName(o binary.ByteOrder) string {
	if o == binary.BigEndian {
		return "big-endian"
	}
	return "little-endian"
}

// planJSON is the --json output of -n.
type planJSON struct {
	Device       string      `json:"device"`
	RealPath     string      `json:"real_path"`
	Mode         string      `json:"mode"`
	Arch         string      `json:"arch"`
	BlockSize    int         `json:"block_size"`
	BlockOrder   uint        `json:"block_order"`
	SampleRate   int         `json:"sample_rate"`
	TotalBlocks  uint64      `json:"total_blocks"`
	DeviceBlocks uint64      `json:"device_blocks"`
	WriteBlocks  uint64      `json:"write_blocks"`
	WriteBytes   uint64      `json:"write_bytes"`
	Chunks       [][2]uint64 `json:"chunks"` // [first block, count]
	Overwrites   []string    `json:"overwrites,omitempty"`
}

// format is the default mode and -f, -a, -n.
func (c *command) format() error {
	o := c.o
	dev, err := c.openForFormat()
	if err != nil {
		return err
	}
	defer dev.Close()
	name := dev.Name()
	bs := c.fp.BlockSize
	blocks := uint64(dev.Size()) / uint64(bs)
	if blocks < 3 {
		return fmt.Errorf("%s: %d bytes cannot hold blocks 0-2 of %d bytes: %w", name, dev.Size(), bs, diskdump.ErrTooSmall)
	}
	found, err := c.inspect(dev, name)
	if err != nil {
		return err
	}
	if err := c.addRecorded(dev); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	mode, chunks, nblocks := c.formatPlan(blocks)
	if o.dryRun {
		return c.plan(planJSON{Device: name, RealPath: dev.RealPath(), Mode: mode, Arch: o.arch.String(), BlockSize: bs,
			BlockOrder: c.fp.BlockOrder, SampleRate: c.fp.SampleRate, TotalBlocks: c.fp.TotalBlocks, DeviceBlocks: blocks,
			WriteBlocks: nblocks, WriteBytes: nblocks * uint64(bs), Chunks: chunks, Overwrites: found})
	}
	c.log.Debug("formatting", "device", name, "mode", mode, "blocks", nblocks, "of", blocks)
	return c.writeFormat(dev, mode, blocks, nblocks)
}

// openForFormat opens the device read-write with O_EXCL on a block device
// (refused while mounted, swap or held); a dry run opens it read-only but
// still says what a real run would refuse.
func (c *command) openForFormat() (*blockdev.Device, error) {
	if !c.o.dryRun {
		return blockdev.OpenLocked(c.o.device, blockdev.ReadWrite, false, c.o.wait)
	}
	ie, err := blockdev.CheckInUse(c.o.device)
	if err != nil {
		return nil, err
	}
	if ie != nil {
		return nil, ie
	}
	return blockdev.OpenLocked(c.o.device, blockdev.ReadOnly, true, c.o.wait)
}

// formatPlan is the mode and the [first block, count] chunks it writes.
func (c *command) formatPlan(blocks uint64) (mode string, chunks [][2]uint64, nblocks uint64) {
	switch {
	case c.o.initial:
		mode, chunks = "initial", [][2]uint64{{0, blocks}}
	case c.o.all:
		mode, chunks = "all", [][2]uint64{{1, blocks - 1}}
	default:
		mode = "normal"
		for ch := range diskdump.NormalFormatBlocks(blocks, c.fp) {
			chunks = append(chunks, [2]uint64{ch.Blk, ch.N})
		}
	}
	for _, ch := range chunks {
		nblocks += ch[1]
	}
	return mode, chunks, nblocks
}

// writeFormat writes the signatures, flushes and reports.
func (c *command) writeFormat(dev *blockdev.Device, mode string, blocks, nblocks uint64) error {
	name, bs := dev.Name(), c.fp.BlockSize
	p := c.startProgress(name, nblocks)
	defer p.stop()
	// A format writes every block once, front to back: with direct I/O it
	// goes to the device at the disk's speed, as dd oflag=direct does,
	// instead of filling the page cache (twice for a loop device) that
	// the final flush must then write. Where direct I/O is refused (some
	// filesystems) or the block size is not aligned for it, the buffered
	// path is as correct, only slower.
	how := mode
	if mode != "normal" {
		if a := dev.DirectAlign(); bs%a != 0 {
			c.log.Debug("direct I/O not used", "device", name, "block_size", bs, "alignment", a)
		} else if err := dev.SetDirect(true); err != nil {
			c.log.Debug("direct I/O not used", "device", name, "err", err)
		} else {
			how += ", direct I/O"
		}
	}
	start := time.Now()
	iw := newInterruptible(dev)
	defer iw.stop()
	var err error
	if c.o.initial {
		err = diskdump.FormatInitial(iw, blocks, c.fp, p.update)
	} else {
		err = diskdump.FormatNormal(iw, dev, blocks, c.fp, c.o.all, p.update)
	}
	p.stop()
	if sig := iw.signal(); sig != nil {
		_ = dev.Flush()
		return c.interrupted(name, sig)
	}
	if err == nil {
		err = c.writeRecord(dev)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	// The kernel reads the signatures straight from the disk at panic
	// time: they must be on the medium, not in the page cache.
	if err := dev.Flush(); err != nil {
		return fmt.Errorf("%s: flush: %w", name, err)
	}
	if err := dev.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", name, err)
	}
	el := time.Since(start)
	c.log.Info(fmt.Sprintf("%s: formatted (%s): %d of %d blocks written in %s (%s/s)", name, how, nblocks, blocks,
		el.Round(time.Millisecond), iec(float64(nblocks*uint64(bs))/max(el.Seconds(), 1e-6))))
	return nil
}

// inspect applies the refusals of a format without -f: known content
// (filesystem, LVM, LUKS, swap), a dump in block 1, or no signature in
// block 0 (normal format only). With -f it only notes what will be
// overwritten. It returns descriptions of what was found.
func (c *command) inspect(dev *blockdev.Device, name string) ([]string, error) {
	o := c.o
	sigs, err := blockdev.Probe(dev, dev.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// The checker also finds dumps written with another block size.
	res, err := diskdump.CheckPartition(dev, dev.Size(), c.fp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var found []string
	for _, s := range sigs {
		found = append(found, s.String())
	}
	holdsDump := res.Status == diskdump.CheckHoldsDump || res.Status == diskdump.CheckSwapDump
	if holdsDump {
		found = append(found, "a dump in block 1")
	}
	if flattenedDump(dev, dev.Size()) != nil { // kdump raw target: flattened.go
		holdsDump = true
		found = append(found, "a flattened dump (kdump raw target)")
	}
	if o.initial {
		for _, f := range found {
			c.log.Warn(fmt.Sprintf("%s: overwriting %s", name, f))
		}
		return found, nil
	}
	if len(sigs) > 0 {
		kinds := make([]string, len(sigs))
		for i, s := range sigs {
			kinds[i] = s.String()
		}
		hint := "use -f to overwrite it"
		if sigs[0].Kind == "swap" {
			hint = "a swap partition takes dumps as it is (dumpformat -c says 5); use -f to make it a dedicated dump partition"
		}
		return nil, fmt.Errorf("%s carries %s; refusing to format: %s", name, strings.Join(kinds, ", "), hint)
	}
	if holdsDump {
		return nil, fmt.Errorf("%s holds a dump, run savecore first (or use -f to discard it)", name)
	}
	if !res.Block0Valid {
		return nil, fmt.Errorf("%s: block 0 carries no diskdump signature: needs initial format (dumpformat -f)", name)
	}
	return found, nil
}

// plan prints what a dry run would write.
func (c *command) plan(p planJSON) error {
	if c.o.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(&p)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "would format %s (%s): %d of %d blocks of %d bytes (%s) in %d chunks\n", p.Device, p.Mode,
		p.WriteBlocks, p.DeviceBlocks, p.BlockSize, iec(float64(p.WriteBytes)), len(p.Chunks))
	total := "unknown"
	if p.TotalBlocks != 0 {
		total = strconv.FormatUint(p.TotalBlocks, 10)
	}
	fmt.Fprintf(&b, "  arch %s (%s), block_order %d, sample_rate %d, total_blocks %s (from %s)\n", p.Arch,
		orderName(c.fp.Order), p.BlockOrder, p.SampleRate, total, c.params)
	for _, f := range p.Overwrites {
		fmt.Fprintf(&b, "  overwriting %s\n", f)
	}
	if c.o.verbose {
		for _, ch := range p.Chunks {
			fmt.Fprintf(&b, "  blocks %d-%d\n", ch[0], ch[0]+ch[1]-1)
		}
	}
	_, err := io.WriteString(c.stdout, b.String())
	return err
}

// iec formats a byte count with IEC prefixes, e.g. "1.5 GiB".
func iec[T int64 | uint64 | float64](n T) string {
	v := float64(n)
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", int64(v))
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// progress shows a format's progress on one updating stderr line (with -p
// or a terminal) and prints one status line on SIGUSR1.
type progress struct {
	name       string
	blockSize  int
	w          io.Writer
	log        *slog.Logger
	show       bool
	start      time.Time
	done       atomic.Uint64
	total      uint64
	mu         sync.Mutex // serialises writes to w
	lastRender time.Time
	rendered   bool
	sig        chan os.Signal
	quit       chan struct{}
	wg         sync.WaitGroup
	stopOnce   sync.Once
}

func (c *command) startProgress(name string, total uint64) *progress {
	show := c.o.progress
	if f, ok := c.stderr.(*syncWriter).w.(*os.File); ok && !c.o.quiet && blockdev.IsTerminal(f) {
		show = true
	}
	p := &progress{name: name, blockSize: c.fp.BlockSize, w: c.stderr, log: c.log, show: show, start: time.Now(), total: total,
		sig: make(chan os.Signal, 1), quit: make(chan struct{})}
	signal.Notify(p.sig, statusSignal)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case <-p.sig:
				p.mu.Lock()
				if p.rendered {
					fmt.Fprint(p.w, "\n")
				}
				p.mu.Unlock()
				p.log.Info(p.line())
			case <-p.quit:
				return
			}
		}
	}()
	return p
}

// update is the callback of the formatter.
func (p *progress) update(done, total uint64) {
	failpoint.Hit("format") // crash-consistency tests (DUMPKIT_FAILPOINT)
	p.done.Store(done)
	if !p.show {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if done < total && now.Sub(p.lastRender) < 200*time.Millisecond {
		return
	}
	p.lastRender = now
	p.rendered = true
	fmt.Fprintf(p.w, "\r%-78s", p.line())
}

// line is the status: blocks done, percentage, rate and ETA.
func (p *progress) line() string {
	done := p.done.Load()
	el := time.Since(p.start).Seconds()
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(done) / float64(p.total)
	}
	s := fmt.Sprintf("%s: %d/%d blocks (%.1f%%)", p.name, done, p.total, pct)
	if el > 0 && done > 0 {
		rate := float64(done) / el
		s += fmt.Sprintf(", %s/s", iec(rate*float64(p.blockSize)))
		if done < p.total {
			eta := time.Duration(float64(p.total-done) / rate * float64(time.Second))
			s += ", ETA " + eta.Round(time.Second).String()
		}
	}
	return s
}

func (p *progress) stop() {
	p.stopOnce.Do(func() {
		signal.Stop(p.sig)
		close(p.quit)
		p.wg.Wait()
		p.mu.Lock()
		if p.rendered {
			fmt.Fprint(p.w, "\n")
		}
		p.mu.Unlock()
	})
}

// syncWriter serialises writes from the logger, the progress line and the
// SIGUSR1 handler.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
