package savecore

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
)

// InfoName is the file, next to the vmcore, that describes the dump in
// "key: value" lines (what FreeBSD's info.N files are to its dumps).
const InfoName = "info"

// infoTimeLayout is how the info file shows times.
const infoTimeLayout = "2006-01-02 15:04:05 MST"

// Info is the content of a dump directory's info file.
type Info struct {
	Device     string    // the device the dump was saved from
	Crashed    time.Time // crash time from the dump header
	Header     *diskdump.Header
	Stats      diskdump.Stats // the reader's counts (RAM pages, excluded pages)
	Result     *Result        // what was saved
	Saved      time.Time      // when the vmcore became durable
	Took       time.Duration  // from the start of the save to the durable vmcore
	Version    string         // savecore's version
	VerifyUsed bool           // --verify was on
}

// Lines renders the info file: one "key: value" line per fact, values on
// one line each.
func (in *Info) Lines() string {
	h, r := in.Header, in.Result
	kv := [][2]string{
		{"device", in.Device},
		{"crash time", in.Crashed.Format(infoTimeLayout)},
		{"host", h.Utsname.Nodename},
		{"release", h.Utsname.Release},
		{"kernel version", h.Utsname.Version},
		{"machine", h.Utsname.Machine},
		{"dump status", h.Status.String()},
		{"dump level", dumpLevel(in.Stats)},
		{"pages saved", strconv.FormatUint(r.Pages, 10)},
		{"pages lost", strconv.FormatUint(r.Lost, 10)},
	}
	if in.VerifyUsed {
		kv = append(kv, [2]string{"damaged records", strconv.FormatUint(r.BadRecords, 10)})
	}
	kv = append(kv,
		[2]string{"vmcore", filepath.Base(r.Path)},
		[2]string{"vmcore format", r.Format},
		[2]string{"vmcore size", fmt.Sprintf("%d (%sB)", r.Size, iec(float64(r.Size)))},
		[2]string{"vmcore marked incomplete", yesNo(r.Incomplete)},
		[2]string{"saved", in.Saved.Format(infoTimeLayout)},
		[2]string{"save took", in.Took.Round(time.Millisecond).String()},
		[2]string{"savecore version", in.Version},
	)
	var b strings.Builder
	for _, e := range kv {
		b.WriteString(e[0] + ": " + oneLine(e[1]) + "\n")
	}
	return b.String()
}

// dumpLevel describes what the kernel's dump_level left out. The level
// itself is not recorded on the partition (doc/FORMAT.md §6.4), only the
// pages it excluded.
func dumpLevel(s diskdump.Stats) string {
	if s.Excluded == 0 {
		return "full (no RAM page excluded)"
	}
	return fmt.Sprintf("partial (%d of %d RAM pages excluded)", s.Excluded, s.RAMPages)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// oneLine replaces what would break the "key: value" line format: control
// characters and bytes that are not printable ASCII, which a damaged
// header may hold, become '?'.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f {
			return '?'
		}
		return r
	}, s)
}

// WriteInfo writes dir/info durably: a temporary file, fsynced, renamed
// over the name, then the directory fsynced. It reads nothing but in.
func WriteInfo(dir string, in *Info) error {
	path := filepath.Join(dir, InfoName)
	pf, err := renameio.TempFile(dir, path)
	if err != nil {
		return err
	}
	defer pf.Cleanup()
	if err := pf.Chmod(FileMode); err != nil {
		return err
	}
	if _, err := pf.WriteString(in.Lines()); err != nil {
		return err
	}
	// CloseAtomicallyReplace fsyncs the file before the rename; the
	// directory entry is durable only once the directory is synced.
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return blockdev.SyncDir(dir)
}

// saveInfo writes the info file of a vmcore just made durable, from what
// the save already knows. A failure is logged: the vmcore is saved.
func saveInfo(c *candidate, opt Options, started time.Time) {
	log := opt.logger()
	r := c.res
	version := opt.Version
	if version == "" {
		version = "dumpkit"
	}
	now := time.Now()
	in := &Info{Device: c.in.Name, Crashed: r.Header.Time().In(loc(opt.Location)), Header: r.Header,
		Stats: c.p.Stats(), Result: r, Saved: now.In(loc(opt.Location)), Took: now.Sub(started),
		Version: version, VerifyUsed: opt.VerifyRecords}
	if err := WriteInfo(filepath.Dir(r.Path), in); err != nil {
		log.Warn("the vmcore is saved, but its info file could not be written: {err}", "device", c.in.Name, "err", err)
	}
}
