package savecore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dumpkit/dumpkit/blockdev"
)

// Names of the files savecore may leave in a dump directory, besides the
// vmcore: PruneDumps removes a directory only when it holds nothing else.
const DmesgName = "vmcore-dmesg.txt"

// ownFiles are the files savecore writes in a dump directory; renameio's
// temporary files are ".NAME" followed by digits.
var ownFiles = []string{VmcoreName, InfoName, DmesgName, DumpIDName}

// isOwnFile reports whether name is a file savecore writes in a dump
// directory, or a temporary file of one.
func isOwnFile(name string) bool {
	if slices.Contains(ownFiles, name) {
		return true
	}
	for _, f := range ownFiles {
		if rest, ok := strings.CutPrefix(name, "."+f); ok && rest != "" && allDigits(rest) {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ParseDirName reports whether name is a dump directory name savecore
// makes, "127.0.0.1-YYYY-MM-DD-HH:MM" or the same with a ".N" suffix, and
// returns the time it names (in zone; nil is local time) and N (0 without a
// suffix).
func ParseDirName(name string, zone *time.Location) (t time.Time, n int, ok bool) {
	rest, ok := strings.CutPrefix(name, Host+"-")
	if !ok || len(rest) < len(dirTimeLayout) {
		return time.Time{}, 0, false
	}
	stamp, suffix := rest[:len(dirTimeLayout)], rest[len(dirTimeLayout):]
	t, err := time.ParseInLocation(dirTimeLayout, stamp, loc(zone))
	if err != nil || t.Format(dirTimeLayout) != stamp {
		return time.Time{}, 0, false
	}
	if suffix != "" {
		digits, ok := strings.CutPrefix(suffix, ".")
		if !ok || !allDigits(digits) || len(digits) > 9 {
			return time.Time{}, 0, false
		}
		n, _ = strconv.Atoi(digits)
	}
	return t, n, true
}

// dumpEntry is a dump directory of the dump root.
type dumpEntry struct {
	name string
	t    time.Time
	n    int
}

// PruneDumps removes the oldest dump directories of root until keep
// remain, counting those in keepDirs (the ones just written), which are
// never removed. Only a directory that savecore could have written is
// counted or removed: its name is one savecore makes (ParseDirName), it is
// not a symlink, it and everything in it belong to the current user, and it
// holds only regular files savecore writes (vmcore, info,
// vmcore-dmesg.txt, dump-id and their temporary files). Anything else in
// root is left alone. Oldest means the earliest crash time in the name,
// then the lower ".N" suffix. Each removal is logged; it returns the
// directories removed.
func PruneDumps(root string, keep int, keepDirs []string, zone *time.Location, log *slog.Logger) ([]string, error) {
	if keep <= 0 {
		return nil, fmt.Errorf("savecore: max-dumps %d: want at least 1", keep)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var dumps []dumpEntry
	kept := 0
	for _, e := range ents {
		t, n, ok := ParseDirName(e.Name(), zone)
		if !ok {
			continue
		}
		path := filepath.Join(root, e.Name())
		if isKeepDir(path, keepDirs) {
			kept++
			continue
		}
		if why := notRemovable(path); why != "" {
			log.Debug("{dir} is not counted for max-dumps: {why}", "dir", path, "why", why)
			continue
		}
		dumps = append(dumps, dumpEntry{name: e.Name(), t: t, n: n})
	}
	slices.SortFunc(dumps, func(a, b dumpEntry) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		return a.n - b.n
	})
	var removed []string
	for len(dumps) > 0 && kept+len(dumps) > keep {
		path := filepath.Join(root, dumps[0].name)
		dumps = dumps[1:]
		if err := removeDumpDir(path); err != nil {
			return removed, fmt.Errorf("savecore: max-dumps: %w", err)
		}
		removed = append(removed, path)
		log.Info("removed the old dump directory {dir} to keep {keep} (max-dumps)", "dir", path, "keep", keep)
	}
	if len(removed) > 0 {
		if err := blockdev.SyncDir(root); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func isKeepDir(path string, keepDirs []string) bool {
	for _, k := range keepDirs {
		if filepath.Clean(k) == path {
			return true
		}
	}
	return false
}

// notRemovable says why path is not a dump directory savecore may remove,
// or returns "" when it is one.
func notRemovable(path string) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return err.Error()
	}
	if !fi.IsDir() {
		return "not a directory"
	}
	if why := notOurs(fi); why != "" {
		return why
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return err.Error()
	}
	for _, e := range ents {
		if !isOwnFile(e.Name()) {
			return "it holds " + e.Name() + ", which savecore does not write"
		}
		fi, err := os.Lstat(filepath.Join(path, e.Name()))
		if err != nil {
			return err.Error()
		}
		if !fi.Mode().IsRegular() {
			return e.Name() + " is not a regular file"
		}
		if why := notOurs(fi); why != "" {
			return e.Name() + ": " + why
		}
	}
	return ""
}

// notOurs says why a file does not belong to the user savecore runs as.
func notOurs(fi os.FileInfo) string {
	uid, ok := fileOwner(fi)
	if !ok {
		return "owner unknown"
	}
	if int(uid) != os.Getuid() {
		return "owned by uid " + strconv.FormatUint(uint64(uid), 10)
	}
	return ""
}

// removeDumpDir removes a directory checked by notRemovable: its files one
// by one, then the directory, so that anything that appeared meanwhile
// makes the removal fail rather than go.
func removeDumpDir(path string) error {
	ents, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !isOwnFile(e.Name()) {
			return &os.PathError{Op: "remove", Path: path, Err: errors.New("holds a file savecore does not write")}
		}
		if err := os.Remove(filepath.Join(path, e.Name())); err != nil {
			return err
		}
	}
	return os.Remove(path)
}

// pruneAfterSave applies Options.MaxDumps after Save: when a vmcore was
// saved, the oldest dump directories go until MaxDumps remain, the saved
// ones counted and kept. A failure is logged as an error but changes no
// Result: the saves stand, and the rc script must not take them for
// failures.
func pruneAfterSave(rep *Report, opt Options, log *slog.Logger) {
	if opt.MaxDumps <= 0 {
		return
	}
	var dirs []string
	for _, r := range rep.Results {
		if r.Outcome == OutcomeSaved {
			// The directory the vmcore went to, whatever name it got.
			dirs = append(dirs, filepath.Dir(r.Path))
		}
	}
	if len(dirs) == 0 {
		return
	}
	if _, err := PruneDumps(opt.root(), opt.MaxDumps, dirs, opt.Location, log); err != nil {
		log.Error("old dump directories not removed: {err}; remove them by hand, or check the permissions of {dir}",
			"dir", opt.root(), "err", err)
	}
}
