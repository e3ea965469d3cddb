package savecore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/dumpkit/dumpkit/diskdump"
)

// DumpIDName is the file beside the vmcore that says which crash the
// vmcore holds and how complete it is, so that a later save of the same
// crash (another copy, or the same one still on the partition) can be told
// from the save of another crash that happened in the same minute.
const DumpIDName = "dump-id"

// maxDumpID bounds what is read of a dump-id file.
const maxDumpID = 4096

// dumpID is the content of a dump-id file: "key=value" lines. The crash
// is identified as groupCopies does (crash time, utsname, max_mapnr,
// block size); ram_pages, pages and status describe the copy saved.
type dumpID struct {
	Sec, Frac int64
	Uts       diskdump.Utsname
	MaxMapnr  uint32
	BlockSize int32
	RAMPages  uint32 // total_ram_blocks of the header: the machine's RAM
	Pages     uint64 // pages stored in the vmcore
	Status    string // the dump header's status, e.g. "COMPLETED"
	Device    string // where the copy came from (information only)
}

func newDumpID(h *diskdump.Header) dumpID {
	return dumpID{Sec: h.Sec, Frac: h.Frac, Uts: h.Utsname, MaxMapnr: h.MaxMapnr, BlockSize: h.BlockSize,
		RAMPages: h.TotalRAMBlocks, Status: h.Status.String()}
}

// sameCrash reports whether a and b identify the same crash.
func (a dumpID) sameCrash(b dumpID) bool {
	return a.Sec == b.Sec && a.Frac == b.Frac && a.Uts == b.Uts && a.MaxMapnr == b.MaxMapnr && a.BlockSize == b.BlockSize
}

// encode writes the lines; values are quoted with strconv so that any
// utsname byte survives.
func (a dumpID) encode() []byte {
	var b strings.Builder
	kv := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, strconv.Quote(v)) }
	kv("time", fmt.Sprintf("%d.%d", a.Sec, a.Frac))
	kv("sysname", a.Uts.Sysname)
	kv("nodename", a.Uts.Nodename)
	kv("release", a.Uts.Release)
	kv("version", a.Uts.Version)
	kv("machine", a.Uts.Machine)
	kv("domainname", a.Uts.Domainname)
	kv("max_mapnr", strconv.FormatUint(uint64(a.MaxMapnr), 10))
	kv("block_size", strconv.FormatInt(int64(a.BlockSize), 10))
	kv("ram_pages", strconv.FormatUint(uint64(a.RAMPages), 10))
	kv("pages", strconv.FormatUint(a.Pages, 10))
	kv("status", a.Status)
	kv("device", a.Device)
	return []byte(b.String())
}

// parseDumpID parses a dump-id file; an unknown key is ignored, a
// malformed line or value is an error.
func parseDumpID(b []byte) (dumpID, error) {
	var a dumpID
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for n := 1; sc.Scan(); n++ {
		k, q, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			return a, fmt.Errorf("savecore: dump-id line %d: no '='", n)
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return a, fmt.Errorf("savecore: dump-id line %d: %s: %w", n, k, err)
		}
		if err := a.set(k, v); err != nil {
			return a, fmt.Errorf("savecore: dump-id line %d: %s: %w", n, k, err)
		}
		seen[k] = true
	}
	for _, k := range []string{"time", "nodename", "release", "max_mapnr", "block_size", "pages"} {
		if !seen[k] {
			return a, fmt.Errorf("savecore: dump-id: no %s", k)
		}
	}
	return a, nil
}

func (a *dumpID) set(k, v string) error {
	var err error
	num := func(bits int) uint64 {
		var n uint64
		n, err = strconv.ParseUint(v, 10, bits)
		return n
	}
	switch k {
	case "time":
		s, f, _ := strings.Cut(v, ".")
		if a.Sec, err = strconv.ParseInt(s, 10, 64); err == nil {
			a.Frac, err = strconv.ParseInt(f, 10, 64)
		}
	case "sysname":
		a.Uts.Sysname = v
	case "nodename":
		a.Uts.Nodename = v
	case "release":
		a.Uts.Release = v
	case "version":
		a.Uts.Version = v
	case "machine":
		a.Uts.Machine = v
	case "domainname":
		a.Uts.Domainname = v
	case "max_mapnr":
		a.MaxMapnr = uint32(num(32))
	case "block_size":
		var n int64
		n, err = strconv.ParseInt(v, 10, 32)
		a.BlockSize = int32(n)
	case "ram_pages":
		a.RAMPages = uint32(num(32))
	case "pages":
		a.Pages = num(64)
	case "status":
		a.Status = v
	case "device":
		a.Device = v
	}
	return err
}

// readDumpID reads dir's dump-id; ok is false when there is none.
func readDumpID(dir string) (a dumpID, ok bool, err error) {
	f, err := os.Open(filepath.Join(dir, DumpIDName))
	if errors.Is(err, os.ErrNotExist) {
		return a, false, nil
	}
	if err != nil {
		return a, false, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDumpID+1))
	if err != nil {
		return a, false, err
	}
	if len(b) > maxDumpID {
		return a, false, fmt.Errorf("savecore: %s: larger than %d bytes", f.Name(), maxDumpID)
	}
	a, err = parseDumpID(b)
	return a, err == nil, err
}

// writeDumpID writes dir's dump-id atomically (mode 0600); the caller
// syncs the directory.
func writeDumpID(dir string, a dumpID) error {
	return renameio.WriteFile(filepath.Join(dir, DumpIDName), a.encode(), FileMode)
}
