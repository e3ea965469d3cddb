package savecore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/dmesg"
)

// SystemMapDir is where a System.map is looked for when none is given:
// SystemMapDir/System.map-<utsname.release>.
const SystemMapDir = "/boot"

// maxSystemMap bounds the System.map read (a distribution kernel's is a
// few MiB).
const maxSystemMap = 256 << 20

// dumpMemory is the memory of one dump and what identifies it: the source
// of its kernel log.
type dumpMemory struct {
	mem    dmesg.Memory
	frames iter.Seq[uint64] // the PFNs the dump holds, increasing
	uts    diskdump.Utsname
	note   []byte // VMCOREINFO the dump file carries, or nil
}

// kernelLog is the log found in a dump and the symbols it was read with.
type kernelLog struct {
	log    *dmesg.Log // nil when the log could not be read
	info   *dmesg.VMCOREINFO
	origin dmesg.Origin
}

// findLog finds the symbols of the dumped kernel (doc/DMESG.md §2, §6, §7):
// the dump's note, the VMCOREINFO page in its memory (not searched for
// releases before 2.6.24, which have none), then the System.map mapPath or,
// when mapPath is empty, SystemMapDir/System.map-<release> if it exists.
// It then reads the log. The kernelLog is returned with the symbols even
// when the log itself cannot be read (err set) or is cut short by damage
// (log and err both set).
func findLog(dm dumpMemory, mapPath string) (*kernelLog, error) {
	uts := dmesg.Utsname{Sysname: dm.uts.Sysname, Nodename: dm.uts.Nodename, Release: dm.uts.Release,
		Version: dm.uts.Version, Machine: dm.uts.Machine, Domainname: dm.uts.Domainname}
	arch, err := dmesg.ParseArch(uts.Machine)
	if err != nil {
		return nil, err
	}
	src := dmesg.Sources{Utsname: uts, Note: dm.note}
	if hasVMCOREINFOPage(uts.Release) {
		src.Pages = dm.frames
	}
	m, mapErr := loadSystemMap(mapPath, uts.Release)
	src.Map = m
	info, origin, err := dmesg.FindSymbols(dm.mem, arch, src)
	if err != nil {
		if mapErr != nil {
			return nil, fmt.Errorf("%w; %w", err, mapErr) // one line for the warning
		}
		return nil, err
	}
	kl := &kernelLog{info: info, origin: origin}
	kl.log, err = dmesg.Read(dm.mem, arch, info)
	return kl, err
}

// hasVMCOREINFOPage reports whether a kernel of release rel may keep a
// VMCOREINFO page (2.6.24 and later, doc/DMESG.md §6). An unparsable
// release is searched.
func hasVMCOREINFOPage(rel string) bool {
	var v [3]int
	for i := range v {
		j := 0
		for j < len(rel) && j < 9 && rel[j] >= '0' && rel[j] <= '9' {
			j++
		}
		if j == 0 {
			return true
		}
		v[i], _ = strconv.Atoi(rel[:j])
		rel = strings.TrimPrefix(rel[j:], ".")
	}
	switch {
	case v[0] != 2:
		return v[0] > 2
	case v[1] != 6:
		return v[1] > 6
	}
	return v[2] >= 24
}

// loadSystemMap reads the System.map path, or the default one for release
// when path is empty; (nil, nil) when there is no default map.
func loadSystemMap(path, release string) (*dmesg.SystemMap, error) {
	explicit := path != ""
	if !explicit {
		if release == "" || strings.ContainsAny(release, "/\x00") {
			return nil, nil
		}
		path = filepath.Join(SystemMapDir, "System.map-"+release)
	}
	f, err := os.Open(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("savecore: System.map: %w", err)
	}
	defer f.Close()
	m, err := dmesg.ParseSystemMap(io.LimitReader(f, maxSystemMap))
	if err != nil {
		return nil, fmt.Errorf("savecore: %s: %w", path, err)
	}
	return m, nil
}

// partitionMemory is the memory of the dump on partition p.
func partitionMemory(p *diskdump.Partition) (dumpMemory, error) {
	pr, err := p.PageReader()
	if err != nil {
		return dumpMemory{}, err
	}
	return dumpMemory{mem: pr, frames: pr.Frames(), uts: p.Header().Utsname}, nil
}

// saveDmesg writes dir/vmcore-dmesg.txt from the dump on p, before its
// vmcore is written, so that the log survives a vmcore that cannot be
// saved. It returns the VMCOREINFO the log was read with, for the vmcore,
// or nil. A log that cannot be found or written costs nothing but a
// warning: the dump is saved all the same.
func saveDmesg(ctx context.Context, p *diskdump.Partition, dev, dir string, opt Options, log *slog.Logger) []byte {
	dm, err := partitionMemory(p)
	return saveDmesgFrom(ctx, dm, err, dev, dir, opt, log)
}

// saveDmesgFrom is saveDmesg on any dumped memory (a partition, or a vmcore
// rebuilt from a flattened stream); memErr says why dm is unusable.
func saveDmesgFrom(ctx context.Context, dm dumpMemory, memErr error, dev, dir string, opt Options, log *slog.Logger) []byte {
	start := time.Now()
	path := filepath.Join(dir, DmesgName)
	err := memErr
	var kl *kernelLog
	if err == nil {
		kl, err = findLog(dm, opt.SystemMap)
	}
	var info []byte
	if kl != nil {
		info = kl.info.Bytes()
	}
	if kl == nil || kl.log == nil {
		log.Warn("no "+DmesgName+" saved: {err}; the vmcore is saved all the same (--system-map FILE gives the dumped kernel's symbols)", "device", dev, "err", err)
		return info
	}
	if err != nil {
		log.Warn("the kernel log is damaged: "+DmesgName+" holds what was read before the damage ({err})", "device", dev, "err", err)
	}
	var text bytes.Buffer
	if _, werr := kl.log.WriteTo(&text); werr != nil {
		log.Warn("no "+DmesgName+" saved: {err}", "device", dev, "err", werr)
		return info
	}
	werr := writeDurable(ctx, path, func(w io.WriterAt) (int64, error) {
		n, err := w.WriteAt(text.Bytes(), 0)
		return int64(n), err
	}, nil)
	if werr != nil {
		log.Warn("no "+DmesgName+" saved: {err}", "device", dev, "err", werr)
		return info
	}
	log.Info("kernel log saved in {path} ({layout} layout, symbols from {symbols}, {took})", "device", dev, "path", path,
		"layout", kl.log.Layout.String(), "symbols", kl.origin.String(), "took", time.Since(start).Round(time.Millisecond).String())
	return info
}
