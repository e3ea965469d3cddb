package diskdump

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ModuleParams are the diskdump module parameters (doc/FORMAT.md §7.1). Has* tell
// which ones the source listed (RHEL3 has no dump_level or compress).
type ModuleParams struct {
	SampleRate      int // < 0: no signature check (printed unsigned by the kernel)
	BlockOrder      uint
	FallbackOnErr   bool
	AllowRiskyDumps bool
	DumpLevel       int
	Compress        int
	TotalBlocks     uint64
	HasDumpLevel    bool
	HasCompress     bool
	HasTotalBlocks  bool
}

// DefaultModuleParams are the module's defaults: sample_rate 8, block_order 2.
var DefaultModuleParams = ModuleParams{SampleRate: 8, BlockOrder: 2, FallbackOnErr: true, AllowRiskyDumps: true}

// ProcPartition is one registered dump partition line of /proc/diskdump.
type ProcPartition struct {
	Name      string // bdevname (RHEL4, "sde1") or device path (RHEL3)
	StartSect uint64 // first 512-byte sector
	NrSects   uint64 // size in 512-byte sectors
}

// ProcDiskdump is the parsed text of /proc/diskdump (doc/FORMAT.md §7.2).
type ProcDiskdump struct {
	Params     ModuleParams
	Partitions []ProcPartition
}

// maxProcLines bounds what ParseProcDiskdump reads.
const maxProcLines = 1 << 16

// ParseProcDiskdump parses /proc/diskdump text, RHEL3 or RHEL4 style.
// Missing parameters keep their defaults. Errors name the line.
func ParseProcDiskdump(r io.Reader) (*ProcDiskdump, error) {
	p := &ProcDiskdump{Params: DefaultModuleParams}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	line := 0
	for sc.Scan() {
		line++
		if line > maxProcLines {
			return nil, fmt.Errorf("diskdump: /proc/diskdump: more than %d lines: %w", maxProcLines, ErrCorrupt)
		}
		t := strings.TrimSpace(sc.Text())
		if t == "" || t == "#" {
			continue
		}
		if rest, ok := strings.CutPrefix(t, "#"); ok {
			k, v, ok := strings.Cut(rest, ":")
			if !ok {
				continue
			}
			if err := p.Params.set(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
				return nil, fmt.Errorf("diskdump: /proc/diskdump line %d: %w", line, err)
			}
			continue
		}
		f := strings.Fields(t)
		if len(f) != 3 {
			return nil, fmt.Errorf("diskdump: /proc/diskdump line %d: want \"device start_sect nr_sects\", got %q: %w", line, t, ErrCorrupt)
		}
		start, err1 := strconv.ParseUint(f[1], 10, 64)
		nr, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("diskdump: /proc/diskdump line %d: bad sector numbers in %q: %w", line, t, ErrCorrupt)
		}
		p.Partitions = append(p.Partitions, ProcPartition{Name: f[0], StartSect: start, NrSects: nr})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("diskdump: /proc/diskdump line %d: %w", line+1, err)
	}
	return p, nil
}

// SetParam sets a parameter from its module-parameter name and text value,
// as found in /proc/diskdump or /sys/module/diskdump/parameters/NAME.
// Unknown names are ignored.
func (m *ModuleParams) SetParam(name, value string) error {
	return m.set(name, strings.TrimSpace(value))
}

func (m *ModuleParams) set(k, v string) error {
	num := func() (int64, error) {
		switch v {
		case "Y", "y":
			return 1, nil
		case "N", "n":
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			u, uerr := strconv.ParseUint(v, 10, 32)
			if uerr != nil {
				return 0, fmt.Errorf("%s: bad value %q: %w", k, v, ErrCorrupt)
			}
			n = int64(u)
		}
		return n, nil
	}
	switch k {
	case "sample_rate", "block_order", "fallback_on_err", "allow_risky_dumps", "dump_level", "compress", "total_blocks":
	default:
		return nil
	}
	n, err := num()
	if err != nil {
		return err
	}
	switch k {
	case "sample_rate":
		// Printed with %u: values >= 2^31 are negative ints (doc/FORMAT.md §7.2).
		m.SampleRate = int(int32(uint32(n)))
	case "block_order":
		if n < 0 || n > 30 {
			return fmt.Errorf("block_order %d out of range: %w", n, ErrCorrupt)
		}
		m.BlockOrder = uint(n)
	case "fallback_on_err":
		m.FallbackOnErr = n != 0
	case "allow_risky_dumps":
		m.AllowRiskyDumps = n != 0
	case "dump_level":
		m.DumpLevel, m.HasDumpLevel = int(int32(n)), true
	case "compress":
		m.Compress, m.HasCompress = int(int32(n)), true
	case "total_blocks":
		m.TotalBlocks, m.HasTotalBlocks = uint64(n), true
	}
	return nil
}
