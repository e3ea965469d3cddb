package savecore

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dumpkit/dumpkit/diskdump"
)

// Options control a savecore run. The zero value saves into /var/crash in
// the format the dump calls for and erases nothing.
type Options struct {
	// Dir is the dump root; empty means DefaultDir. Scripts are looked for
	// in Dir/scripts.
	Dir string
	// Format is the vmcore format: "elf", "diskdump" or "kdump"; empty or
	// "auto" means ELF for uncompressed dumps and DISKDUMP for compressed
	// ones.
	Format string
	// Delete erases each dump from its partition once its vmcore is
	// durable (-D).
	Delete bool
	// DeleteOnly erases each dump without saving it (-X).
	DeleteOnly bool
	// Force saves even if the dump directory already holds files (-f).
	Force bool
	// UncompressedMask is the -P page-flag mask: pages whose page_flags
	// share a bit with it are stored uncompressed.
	UncompressedMask uint64
	// VerifyRecords (--verify) inflates every zlib record of a compressed
	// dump before it is copied into a DISKDUMP vmcore; a damaged record
	// is not copied and its page counts as lost (see
	// vmcore.Options.VerifyRecords).
	VerifyRecords bool
	// DumpLevel (--dump-level, DUMPLEVEL=) leaves more pages out of the
	// vmcore while saving, by diskdump's dump_level bits (doc/FORMAT.md
	// §6.4; ParseDumpLevel), in the same pass. What the dump cannot decide
	// is applied to no page and said once; a dump is never refused for it.
	DumpLevel int
	// Compress is the page compression of a kdump vmcore: "zlib" (empty:
	// the default, as makedumpfile -c), "lzo", "snappy" or "zstd".
	Compress string
	// Progress, if set, is called during each save with the device name and
	// the bytes of the partition consumed so far out of total. It may be
	// called from several goroutines, never concurrently for two devices.
	Progress func(dev string, done, total int64)
	// Logger receives warnings (lost pages, skipped devices, scripts) and,
	// at debug level, details. Nil discards them.
	Logger *slog.Logger
	// SystemMap is the System.map of the dumped kernel, for its log
	// (vmcore-dmesg.txt); empty means /boot/System.map-<release> when it
	// exists.
	SystemMap string
	// Location is the time zone of dump directory names; nil is local time.
	Location *time.Location
	// ScriptTimeout bounds each script run; 0 means DefaultScriptTimeout.
	ScriptTimeout time.Duration
	// Module holds the diskdump module parameters (block_order,
	// sample_rate, total_blocks) that decide which blocks the kernel checks
	// for their format signature before it dumps. Erasing a dump rewrites
	// those blocks, as diskdumpfmt's normal format does, so the partition is
	// ready for the next panic. Nil reads them from /proc/diskdump or
	// /sys/module/diskdump/parameters, else uses the module defaults.
	Module *diskdump.ModuleParams
	// MaxDumps, when positive, bounds the dump directories kept in Dir:
	// after a run that saved a vmcore, the oldest directories savecore
	// wrote are removed until MaxDumps remain, the new ones included
	// (--max-dumps, MAXDUMPS=; see PruneDumps).
	MaxDumps int
	// MinFree is the space in bytes to leave free on the filesystem of
	// Dir: a vmcore is saved only when it fits with MinFree to spare,
	// else the diskdump-nospace protocol applies (MINFREE=). 0 means the
	// KiB in Dir/minfree, when that file exists.
	MinFree int64
	// NoDumpFails says a device without a dump is a failure, as for
	// savecore DEVICE (doc/FORMAT.md §9.1): it is then logged as an error
	// rather than as information.
	NoDumpFails bool
	// Version names the program in each dump's info file, e.g.
	// "savecore (dumpkit) 1.0"; empty means "dumpkit".
	Version string
	// LockWait bounds how long savecore waits for another savecore or
	// dumpformat to release a device or the dump root it needs (each is
	// locked with flock(2) for as long as it is read or written); 0 means
	// DefaultLockWait, a negative value a single try.
	LockWait time.Duration
	// AbsentOK makes a device that does not exist (a DEVICE list naming a
	// disk that was removed) a warning and OutcomeNoDump instead of a
	// failure: savecore with no DEVICE argument sets it, so that such a
	// list does not fail every boot.
	AbsentOK bool
}

// DefaultLockWait is how long savecore waits for a device or the dump root
// that another savecore or dumpformat holds.
const DefaultLockWait = 2 * time.Minute

func (o *Options) lockWait() time.Duration {
	switch {
	case o.LockWait == 0:
		return DefaultLockWait
	case o.LockWait < 0:
		return 0
	}
	return o.LockWait
}

func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// noDumpLevel is the level of the message saying a device holds no dump.
func (o *Options) noDumpLevel() slog.Level {
	if o.NoDumpFails {
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (o *Options) root() string {
	if o.Dir == "" {
		return DefaultDir
	}
	return o.Dir
}

// Formats are the names Options.Format accepts besides "" and "auto".
var Formats = []string{"elf", "diskdump", "kdump"}

// CheckFormat reports whether s is a valid Options.Format ("" and "auto"
// included).
func CheckFormat(s string) error {
	if s == "" || strings.EqualFold(s, "auto") {
		return nil
	}
	for _, f := range Formats {
		if strings.EqualFold(s, f) {
			return nil
		}
	}
	return fmt.Errorf("savecore: unknown vmcore format %q (want %s)", s, strings.Join(Formats, ", "))
}

// ParseMask parses a page-flag mask in C integer syntax, as the original
// savecore's strtoul(…, 0) did: decimal, 0x/0X hexadecimal, or octal with a
// leading 0.
func ParseMask(s string) (uint64, error) {
	base, digits := 10, s
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	if digits == "" {
		return 0, fmt.Errorf("savecore: bad page-flag mask %q", s)
	}
	var v uint64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		case 'A' <= c && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			d = 99
		}
		if d >= uint64(base) {
			return 0, fmt.Errorf("savecore: bad page-flag mask %q: digit %q", s, c)
		}
		if v > (^uint64(0)-d)/uint64(base) {
			return 0, fmt.Errorf("savecore: page-flag mask %q overflows 64 bits", s)
		}
		v = v*uint64(base) + d
	}
	return v, nil
}
