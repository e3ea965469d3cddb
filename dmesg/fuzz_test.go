package dmesg

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// Fuzz targets. The ring targets overlay the fuzz input on the log area of
// a small synthetic machine (page tables and utsname kept), so that every
// pointer, index and size the reader takes from memory is hostile.

// fuzzBase is a synthetic machine and the offset of its log area.
type fuzzBase struct {
	img    *image
	info   *VMCOREINFO
	logOff int
}

func newFuzzBase(t testing.TB, layout Layout, arch Arch) fuzzBase {
	release := map[Layout]string{Lockless: "6.1.0-fuzz", Structured: "4.19.0-fuzz", Legacy: "2.6.9-fuzz"}[layout]
	img := newImage(t, arch, release, 64<<10, 0)
	off := img.next
	switch layout {
	case Lockless:
		buildLockless(t, img, testMessages, locklessOpts{countBits: 4, sizeBits: 10, firstID: 0x3ffa, firstLpos: 4096 - 96})
	case Structured:
		buildStructured(t, img, testMessages, 1024, 600, "printk_log", false)
	case Legacy:
		buildLegacy(t, img, legacyText(3000), 2048, false)
	}
	return fuzzBase{img: img, info: img.vmcoreinfo(t), logOff: off}
}

// read overlays data on the log area and reads the log; it checks that a
// failure is one of the package's typed errors and that a log can be
// written.
func (b fuzzBase) read(t *testing.T, data []byte) {
	mem := &physMem{base: b.img.paddr, data: bytes.Clone(b.img.data)}
	copy(mem.data[b.logOff:], data)
	log, err := Read(mem, b.img.arch, b.info)
	checkTyped(t, err)
	if log != nil {
		_, err = log.WriteTo(io.Discard)
		require.NoError(t, err)
	}
}

func checkTyped(t *testing.T, err error) {
	if err == nil {
		return
	}
	for _, s := range []error{ErrBadAddress, ErrCorrupt, ErrMissingKey, ErrNoLogSymbols, ErrSyntax, ErrUnsupportedArch} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("untyped error: %v", err)
}

func fuzzRing(f *testing.F, layout Layout) {
	bases := []fuzzBase{newFuzzBase(f, layout, X86_64), newFuzzBase(f, layout, I386)}
	for i, b := range bases {
		seed := b.img.data[b.logOff:b.img.next]
		f.Add(uint8(i), seed)
		f.Add(uint8(i), seed[:len(seed)/2])
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		bases[int(which)%len(bases)].read(t, data)
	})
}

func FuzzLockless(f *testing.F)   { fuzzRing(f, Lockless) }
func FuzzStructured(f *testing.F) { fuzzRing(f, Structured) }
func FuzzLegacy(f *testing.F)     { fuzzRing(f, Legacy) }

// FuzzVMCOREINFO parses the text; a text that parses must give the same
// keys again from Bytes, and reading a log with it must not fail untyped.
func FuzzVMCOREINFO(f *testing.F) {
	var bases []fuzzBase
	for _, l := range []Layout{Lockless, Structured, Legacy} {
		b := newFuzzBase(f, l, X86_64)
		bases = append(bases, b)
		f.Add(b.img.info.String())
	}
	f.Add("OSRELEASE=6.1.0\nPAGESIZE=4096\nNUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129\nNUMBER(x)=0x10\nCRASHTIME=1700000000")
	f.Fuzz(func(t *testing.T, text string) {
		info, err := ParseVMCOREINFO([]byte(text))
		checkTyped(t, err)
		if err != nil {
			return
		}
		again, err := ParseVMCOREINFO(info.Bytes())
		require.NoError(t, err)
		require.Equal(t, info.keys, again.keys)
		for _, b := range bases {
			_, err := Read(b.img.memory(), X86_64, info)
			checkTyped(t, err)
		}
	})
}

// FuzzSystemMap parses a map; a map that parses must survive
// WriteSystemMap and parse to the same symbols, in address order.
func FuzzSystemMap(f *testing.F) {
	var seed bytes.Buffer
	require.NoError(f, WriteSystemMap(&seed, rhel4Symbols(0xffffffff80100000, 0xffffffff80400000), 64))
	f.Add(seed.String())
	f.Add("c0100000 T _stext\nc03a0000 b log_buf\nc03a0000 b log_buf\n")
	f.Add("ffffffffffffffff B The real System.map is in the linux-image-6.1.0-57-amd64-dbg package\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseSystemMap(bytes.NewReader([]byte(text)))
		checkTyped(t, err)
		if err != nil {
			return
		}
		for _, s := range m.Symbols {
			if _, err := m.Lookup(s.Name); err != nil {
				require.ErrorIs(t, err, ErrAmbiguousSymbol)
			}
		}
		if _, err := m.VMCOREINFO("2.6.9-89.ELsmp", 4096); err != nil {
			checkTyped(t, err)
		}
		var out bytes.Buffer
		if err := WriteSystemMap(&out, m.Symbols, 64); err != nil {
			return // a type or name that cannot be written back
		}
		again, err := ParseSystemMap(&out)
		require.NoError(t, err)
		want := slices.Clone(m.Symbols)
		slices.SortStableFunc(want, compareSymbols)
		require.Equal(t, want, again.Symbols)
	})
}

// FuzzFindVMCOREINFO searches hostile memory of up to four pages for a
// VMCOREINFO text.
func FuzzFindVMCOREINFO(f *testing.F) {
	text := "OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(prb)=ffffffff82000000\nSYMBOL(init_uts_ns)=ffffffff81001000\nOFFSET(uts_namespace.name)=4\n"
	f.Add([]byte(text))
	var note bytes.Buffer
	writeNote(&note, "VMCOREINFO", 0, []byte(text))
	f.Add(append(make([]byte, pageSize), note.Bytes()...))
	f.Add(append(make([]byte, pageSize-9), text...))
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := &physMem{base: 0x1000000, data: make([]byte, 4*pageSize)}
		copy(mem.data, data)
		pfns := func(yield func(uint64) bool) {
			for pfn := uint64(0x1000); pfn < 0x1004; pfn++ {
				if !yield(pfn) {
					return
				}
			}
		}
		info, err := FindVMCOREINFO(mem, X86_64, "6.1.0", pfns)
		if err != nil {
			require.ErrorIs(t, err, ErrNotFound)
			return
		}
		require.Equal(t, "6.1.0", info.OSRelease)
	})
}
