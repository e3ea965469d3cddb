package kernel

import (
	"fmt"
	"iter"
	"slices"

	"github.com/dumpkit/dumpkit/diskdump"
)

// PhysRange is a range [Start, End) of physical addresses in bytes.
type PhysRange struct {
	Start, End uint64
}

// PageMix weighs the kinds of page content of a synthetic machine. The
// weights are relative; all zero means DefaultPageMix.
type PageMix struct {
	Zero    int // all-zero pages (dump_level bit 2 excludes them)
	Sparse  int // zero pages with a short stamp at the start (compress to ~40 bytes)
	Text    int // ASCII text lines (compress about 3:1)
	Pattern int // arrays of structs with counters and pointers (compress a few times)
	Random  int // incompressible bytes (stored raw in compressed dumps)
}

// DefaultPageMix is a plausible mix for a crashed server.
var DefaultPageMix = PageMix{Zero: 30, Sparse: 10, Text: 20, Pattern: 30, Random: 10}

// SyntheticConfig describes a synthetic machine.
type SyntheticConfig struct {
	Arch     diskdump.Arch // page size, flag word width
	PageSize int           // 0 = Arch.PageSize()
	MemBytes uint64        // size of the physical address space: max_pfn = MemBytes / page size
	Seed     uint64        // everything derives from it
	// Holes are physical ranges that are not RAM. nil gives DefaultHoles;
	// set NoHoles for a machine without holes.
	Holes   []PhysRange
	NoHoles bool
	Mix     PageMix // content mix; zero value = DefaultPageMix
	// BadPFNs and UnmappedPFNs are RAM pages with a corrupt struct page or
	// no kernel mapping, on top of the random ones (about 1 in 4096 each,
	// unless NoRandomBad).
	BadPFNs, UnmappedPFNs []uint64
	NoRandomBad           bool
}

// DefaultHoles is the hole layout of a PC: the legacy 640 KiB–1 MiB hole
// and, for machines above 64 MiB, a device hole of 1/16 of the address
// space that ends 1/32 below the top (so the top pages are RAM again).
func DefaultHoles(memBytes uint64) []PhysRange {
	h := []PhysRange{{Start: 640 << 10, End: 1 << 20}}
	if memBytes > 64<<20 {
		end := memBytes - memBytes/32
		h = append(h, PhysRange{Start: end - memBytes/16, End: end})
	}
	return h
}

// SyntheticMachine is a deterministic MemorySource: every page's content
// and attributes are computed on demand from (Seed, PFN), so memory use does
// not depend on the machine's size.
type SyntheticMachine struct {
	cfg      SyntheticConfig
	pageSize int
	maxPFN   uint64
	holes    [][2]uint64 // PFN ranges [a, b) that are not RAM, sorted
	mixCum   [5]uint64   // cumulative weights, scaled to 2^32
	bad      map[uint64]bool
	unmapped map[uint64]bool
	is64     bool
}

// Page content kinds of a synthetic machine.
const (
	kindZero = iota
	kindSparse
	kindText
	kindPattern
	kindRandom
)

// NewSyntheticMachine builds a synthetic machine. A zero page size or an
// unknown architecture falls back to 4096 bytes and x86_64.
func NewSyntheticMachine(cfg SyntheticConfig) *SyntheticMachine {
	if cfg.Arch == diskdump.ArchUnknown {
		cfg.Arch = diskdump.ArchX86_64
	}
	ps := cfg.PageSize
	if ps <= 0 {
		ps = cfg.Arch.PageSize()
	}
	m := &SyntheticMachine{cfg: cfg, pageSize: ps, maxPFN: cfg.MemBytes / uint64(ps), is64: cfg.Arch.Is64()}
	holes := cfg.Holes
	if holes == nil && !cfg.NoHoles {
		holes = DefaultHoles(cfg.MemBytes)
	}
	if cfg.NoHoles {
		holes = nil
	}
	for _, h := range holes {
		a := h.Start / uint64(ps)
		b := (h.End + uint64(ps) - 1) / uint64(ps)
		if b > a {
			m.holes = append(m.holes, [2]uint64{a, b})
		}
	}
	slices.SortFunc(m.holes, func(x, y [2]uint64) int {
		if x[0] < y[0] {
			return -1
		}
		if x[0] > y[0] {
			return 1
		}
		return 0
	})
	mix := cfg.Mix
	if mix == (PageMix{}) {
		mix = DefaultPageMix
	}
	w := [5]int{mix.Zero, mix.Sparse, mix.Text, mix.Pattern, mix.Random}
	var total uint64
	for _, x := range w {
		total += uint64(max(x, 0))
	}
	if total == 0 {
		w, total = [5]int{1, 0, 0, 0, 0}, 1
	}
	var acc uint64
	for i, x := range w {
		acc += uint64(max(x, 0))
		m.mixCum[i] = acc << 32 / total
	}
	m.bad = make(map[uint64]bool, len(cfg.BadPFNs))
	for _, p := range cfg.BadPFNs {
		m.bad[p] = true
	}
	m.unmapped = make(map[uint64]bool, len(cfg.UnmappedPFNs))
	for _, p := range cfg.UnmappedPFNs {
		m.unmapped[p] = true
	}
	return m
}

// MaxPFN is MemBytes / page size.
func (m *SyntheticMachine) MaxPFN() uint64 { return m.maxPFN }

// PageSize is the machine's page size.
func (m *SyntheticMachine) PageSize() int { return m.pageSize }

// IsRAM reports whether pfn is below MaxPFN and outside every hole.
func (m *SyntheticMachine) IsRAM(pfn uint64) bool {
	if pfn >= m.maxPFN {
		return false
	}
	for _, h := range m.holes {
		if pfn < h[0] {
			return true
		}
		if pfn < h[1] {
			return false
		}
	}
	return true
}

// ContentPages yields, in PFN order, every RAM page that is not all zero,
// each in a buffer of its own: the pages compression benchmarks work on.
func (m *SyntheticMachine) ContentPages() iter.Seq2[uint64, []byte] {
	return func(yield func(uint64, []byte) bool) {
		for pfn := range m.maxPFN {
			if !m.IsRAM(pfn) || m.kind(pfn) == kindZero {
				continue
			}
			p := make([]byte, m.pageSize)
			if m.ReadPage(pfn, p) != nil || !yield(pfn, p) {
				return
			}
		}
	}
}

// RAMPages counts the RAM pages.
func (m *SyntheticMachine) RAMPages() uint64 {
	n := m.maxPFN
	var last uint64
	for _, h := range m.holes {
		a, b := max(h[0], last), min(h[1], m.maxPFN)
		if b > a {
			n -= b - a
			last = b
		}
	}
	return n
}

func (m *SyntheticMachine) hash(pfn, salt uint64) uint64 {
	return mix64(m.cfg.Seed*0xd1342543de82ef95 + pfn*golden + salt)
}

func (m *SyntheticMachine) kind(pfn uint64) int {
	h := m.hash(pfn, 1) >> 32
	for i, c := range m.mixCum {
		if h < c {
			return i
		}
	}
	return kindRandom
}

// Attrs derives the page's attributes from (Seed, PFN): about 20% free,
// 30% page cache (a fifth of it with PG_private, some in the swap cache),
// 20% anonymous (on the LRU, some in the swap cache), the rest kernel pages;
// bad and unmapped pages as configured.
func (m *SyntheticMachine) Attrs(pfn uint64) PageAttrs {
	h := m.hash(pfn, 2)
	var a PageAttrs
	r := h % 100
	switch {
	case r < 20:
		a.Free = true
	case r < 50:
		a.LRU = true
		a.Private = (h>>8)%5 == 0
		a.SwapCache = (h>>16)%10 == 0
	case r < 70:
		a.Anon = true
		a.LRU = true
		a.SwapCache = (h>>16)%8 == 0
	}
	if !m.cfg.NoRandomBad {
		a.BadPage = (h>>24)&4095 == 7
		a.Unmapped = (h>>36)&4095 == 9
	}
	if m.bad[pfn] {
		a.BadPage = true
	}
	if m.unmapped[pfn] {
		a.Unmapped = true
	}
	var f uint64
	set := func(bit int, on bool) {
		if on {
			f |= 1 << bit
		}
	}
	set(pgUptodate, !a.Free)
	set(pgLRU, a.LRU)
	set(pgActive, a.LRU && (h>>40)&1 == 0)
	set(pgReferenced, a.LRU && (h>>41)&1 == 0)
	set(pgDirty, (a.LRU || a.Anon) && (h>>42)&3 == 0)
	set(pgPrivate, a.Private)
	set(pgSwapCache, a.SwapCache)
	set(pgSlab, !a.Free && !a.LRU && (h>>44)&1 == 0)
	set(pgReserved, !a.Free && !a.LRU && !a.Anon && (h>>44)&1 == 1)
	// Zone: DMA below 16 MiB, Normal, HighMem above 896 MiB on 32-bit.
	addr := pfn * uint64(m.pageSize)
	zone := uint64(1)
	if addr < 16<<20 {
		zone = 0
	} else if !m.is64 && addr >= 896<<20 {
		zone = 2
	}
	if m.is64 {
		f |= zone << pgZoneShift64
	} else {
		f |= zone << pgZoneShift32
	}
	a.Flags = f
	return a
}

// ReadPage generates page pfn into dst. Every non-zero page starts with a
// stamp naming the seed and PFN, so no two non-zero pages are equal.
func (m *SyntheticMachine) ReadPage(pfn uint64, dst []byte) error {
	if !m.IsRAM(pfn) {
		return &diskdump.PageError{PFN: pfn, Off: -1, Err: fmt.Errorf("diskdump: synthetic machine: PFN %d is not RAM: %w", pfn, diskdump.ErrCorrupt)}
	}
	if len(dst) < m.pageSize {
		return &diskdump.PageError{PFN: pfn, Off: -1, Err: fmt.Errorf("diskdump: page buffer of %d bytes, need %d: %w", len(dst), m.pageSize, diskdump.ErrTruncated)}
	}
	p := dst[:m.pageSize]
	k := m.kind(pfn)
	if k == kindZero {
		clear(p)
		return nil
	}
	seed := m.hash(pfn, 3)
	switch k {
	case kindSparse:
		clear(p)
	case kindText:
		fillText(p, seed)
	case kindPattern:
		fillPattern(p, seed, pfn, m.pageSize)
	case kindRandom:
		fillRandom(p, seed)
	}
	stamp(p, m.cfg.Seed, pfn)
	return nil
}
