package kernel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/dmesg"
)

// Physical placement of the kernel data of a LogMachine: the kernel image
// starts at 1 MiB as on a PC; the variables and the ring follow it.
const (
	logTextPhys = 0x100000 // _stext
	logVarsPhys = 0x300000 // system_utsname, then the printk variables
	logBufPhys  = 0x400000 // __log_buf
	// LogBufLen is the size of a LogMachine's ring: 16 KiB
	// (CONFIG_LOG_BUF_SHIFT 14), small enough that the boot messages of a
	// machine of a few hundred MiB wrap around it.
	LogBufLen = 16 << 10
)

// Offsets of the variables in the page at logVarsPhys.
const (
	offUtsname     = 0
	offLogBuf      = 0x200
	offLogBufLen   = 0x208
	offLogEnd      = 0x210
	offLoggedChars = 0x218
)

// LogMachine is a MemorySource holding a kernel log as a kernel before 3.5
// keeps it (doc/DMESG.md §5): a ring at __log_buf, the pointer log_buf,
// log_buf_len, log_end and logged_chars, and system_utsname, placed in the
// memory of another source (a synthetic machine). Its System.map lists
// where they are. Other pages are the underlying source's.
type LogMachine struct {
	MemorySource
	pageSize int
	pages    map[uint64][]byte // the pages holding the log and its variables
	syms     []dmesg.Symbol
	bits     int
	text     []byte // the log as the ring holds it, oldest byte first
}

// NewLogMachine places text, the kernel's log, in m's memory as a kernel of
// architecture a (x86_64 or i386) with utsname uts does. A text longer than
// LogBufLen wraps around the ring. The pages used (1-5 MiB) must be RAM.
func NewLogMachine(m MemorySource, a diskdump.Arch, pageSize int, uts diskdump.Utsname, text []byte) (*LogMachine, error) {
	var kvbase uint64
	switch a {
	case diskdump.ArchX86_64:
		kvbase = 0xffffffff80000000 // __START_KERNEL_map (doc/DMESG.md §7)
	case diskdump.ArchI386:
		kvbase = 0xc0000000
	default:
		return nil, fmt.Errorf("diskdump: kernel log of a synthetic %v machine: %w", a, diskdump.ErrUnsupportedVersion)
	}
	ring, end, err := dmesg.LegacyRing(text, LogBufLen)
	if err != nil {
		return nil, err
	}
	lm := &LogMachine{MemorySource: m, pageSize: pageSize, pages: map[uint64][]byte{}, bits: 32}
	lm.text = text
	if len(text) > LogBufLen {
		lm.text = text[len(text)-LogBufLen:]
	}
	w := 4
	if a.Is64() {
		w, lm.bits = 8, 64
	}
	o := a.ByteOrder()
	vars := make([]byte, pageSize)
	copy(vars[offUtsname:], dmesg.Utsname{Sysname: uts.Sysname, Nodename: uts.Nodename, Release: uts.Release,
		Version: uts.Version, Machine: uts.Machine, Domainname: uts.Domainname}.Bytes())
	put := func(off int, v uint64, n int) {
		if n == 8 {
			o.PutUint64(vars[off:], v)
		} else {
			o.PutUint32(vars[off:], uint32(v))
		}
	}
	put(offLogBuf, kvbase+logBufPhys, w)
	put(offLogBufLen, LogBufLen, 4)
	endWidth := w
	if releaseAtLeast(uts.Release, 2, 6, 25) {
		endWidth = 4 // log_end became unsigned in 2.6.25 (doc/DMESG.md §5)
	}
	put(offLogEnd, end, endWidth)
	put(offLoggedChars, uint64(len(lm.text)), endWidth)
	if err := lm.place(logVarsPhys, vars); err != nil {
		return nil, err
	}
	if err := lm.place(logBufPhys, ring); err != nil {
		return nil, err
	}
	lm.syms = []dmesg.Symbol{
		{Addr: kvbase + logTextPhys, Type: 'T', Name: "_stext"},
		{Addr: kvbase + logVarsPhys + offUtsname, Type: 'D', Name: "system_utsname"},
		{Addr: kvbase + logVarsPhys + offLogBuf, Type: 'd', Name: "log_buf"},
		{Addr: kvbase + logVarsPhys + offLogBufLen, Type: 'd', Name: "log_buf_len"},
		{Addr: kvbase + logVarsPhys + offLogEnd, Type: 'b', Name: "log_end"},
		{Addr: kvbase + logVarsPhys + offLoggedChars, Type: 'b', Name: "logged_chars"},
		{Addr: kvbase + logBufPhys, Type: 'b', Name: "__log_buf"},
	}
	return lm, nil
}

// place puts b at physical address phys, page by page; every page must be
// RAM of the underlying machine.
func (lm *LogMachine) place(phys uint64, b []byte) error {
	ps := uint64(lm.pageSize)
	for off := uint64(0); off < uint64(len(b)); off += ps {
		pfn := (phys + off) / ps
		if pfn >= lm.MaxPFN() || !lm.IsRAM(pfn) {
			return fmt.Errorf("diskdump: kernel log: PFN %d is not RAM (the machine needs RAM from 1 to 5 MiB): %w", pfn, diskdump.ErrTooSmall)
		}
		pg := make([]byte, ps)
		copy(pg, b[off:])
		lm.pages[pfn] = pg
	}
	return nil
}

// ReadPage returns the log's pages, else the underlying machine's.
func (lm *LogMachine) ReadPage(pfn uint64, dst []byte) error {
	if pg, ok := lm.pages[pfn]; ok && len(dst) >= len(pg) {
		copy(dst, pg)
		return nil
	}
	return lm.MemorySource.ReadPage(pfn, dst)
}

// Attrs makes the log's pages kernel data (reserved, in use), which no
// dump level excludes.
func (lm *LogMachine) Attrs(pfn uint64) PageAttrs {
	if _, ok := lm.pages[pfn]; ok {
		return PageAttrs{Flags: 1<<pgReserved | 1<<pgUptodate}
	}
	return lm.MemorySource.Attrs(pfn)
}

// PageSize is the machine's page size.
func (lm *LogMachine) PageSize() int { return lm.pageSize }

// Log returns the log as tools read it from the ring: the whole text, or
// its last LogBufLen bytes when it wrapped (doc/DMESG.md §5).
func (lm *LogMachine) Log() []byte { return lm.text }

// Symbols returns the System.map entries of the log's variables, _stext and
// system_utsname (for dmesg.WriteSystemMap).
func (lm *LogMachine) Symbols() []dmesg.Symbol { return lm.syms }

// Bits is the width of the machine's addresses, for dmesg.WriteSystemMap.
func (lm *LogMachine) Bits() int { return lm.bits }

// releaseAtLeast reports whether release rel is a.b.c or later.
func releaseAtLeast(rel string, a, b, c int) bool {
	var v [3]int
	for i := range v {
		j := 0
		for j < len(rel) && j < 9 && rel[j] >= '0' && rel[j] <= '9' {
			j++
		}
		if j == 0 {
			break
		}
		v[i], _ = strconv.Atoi(rel[:j])
		rel = strings.TrimPrefix(rel[j:], ".")
	}
	for i, w := range [3]int{a, b, c} {
		if v[i] != w {
			return v[i] > w
		}
	}
	return true
}
