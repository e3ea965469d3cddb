package kernel

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/testutil"
	"github.com/dumpkit/dumpkit/internal/zero"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rtMix is the content mix of the round-trip machines: every kind of page,
// mostly cheap ones.
var rtMix = PageMix{Zero: 40, Sparse: 40, Text: 8, Pattern: 8, Random: 4}

// rtMachine returns the machine of a round-trip case. big machines have
// more than 16384 PFNs (libkdumpfile's single-bitmap quirk, doc/FORMAT.md §10.2) but
// a large hole keeps their RAM small.
func rtMachine(a diskdump.Arch, big bool, seed uint64) *SyntheticMachine {
	ps := uint64(a.PageSize())
	cfg := SyntheticConfig{Arch: a, Seed: seed, Mix: rtMix, BadPFNs: []uint64{200}, UnmappedPFNs: []uint64{201}}
	if big {
		cfg.MemBytes = 16500 * ps
		cfg.Holes = []PhysRange{{640 << 10, 1 << 20}, {300 * ps, 16300 * ps}}
	} else {
		cfg.MemBytes = 400 * ps
	}
	return NewSyntheticMachine(cfg)
}

// rtPages reads every page the reader recovers from img: PFN -> SHA-256 of
// the decompressed page. Lost pages (*PageError) are allowed; a fatal error
// is returned.
func rtPages(t *testing.T, img []byte) (map[uint64][32]byte, error) {
	t.Helper()
	p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		return nil, err
	}
	got := map[uint64][32]byte{}
	buf := make([]byte, p.BlockSize())
	var last uint64
	for pg, err := range p.Pages() {
		if err != nil {
			var pe *diskdump.PageError
			if !errors.As(err, &pe) {
				return got, err
			}
			continue
		}
		if len(got) > 0 {
			require.Greater(t, pg.PFN, last, "pages in PFN order")
		}
		last = pg.PFN
		data, err := pg.Decompress(buf)
		require.NoError(t, err, "PFN %d", pg.PFN)
		if _, dup := got[pg.PFN]; dup {
			require.Failf(t, "duplicate page", "PFN %d yielded twice", pg.PFN)
		}
		got[pg.PFN] = sha256.Sum256(data)
	}
	return got, nil
}

// rtExpect hashes what the kernel saved for each PFN of set.
func rtExpect(t *testing.T, src MemorySource, set *diskdump.Bitmap, a diskdump.Arch) map[uint64][32]byte {
	want := map[uint64][32]byte{}
	for p := range set.All() {
		want[p] = sha256.Sum256(expectedPage(t, src, p, a.PageSize(), a.Is64()))
	}
	return want
}

type rtScenario struct {
	name string
	cut  int64  // StopAfterBlocks; 0 = none
	dev  uint64 // device blocks; 0 = room for everything
}

// TestRoundTrip: for every architecture, compression, dump level and block
// order, complete dumps, power cuts at several points and too-small
// partitions: the reader recovers exactly the pages the writer says are
// recoverable, byte for byte, and nothing else.
func TestRoundTrip(t *testing.T) {
	levels := []int{0, 1, 19, 31}
	orders := []uint{0, 2, 3}
	if testing.Short() {
		levels, orders = []int{0, 19}, []uint{0, 3}
	}
	for _, a := range diskdump.Arches {
		for _, compress := range []bool{false, true} {
			for _, level := range levels {
				for _, bo := range orders {
					big := bo == 2 || (a == diskdump.ArchX86_64 && bo == 0)
					name := fmt.Sprintf("%v/c%v/dl%d/bo%d", a, compress, level, bo)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						rtCase(t, a, compress, level, bo, big)
					})
				}
			}
		}
	}
}

func rtCase(t *testing.T, a diskdump.Arch, compress bool, level int, bo uint, big bool) {
	bs := a.PageSize()
	src := rtMachine(a, big, uint64(level)<<8|uint64(bo))
	cfg := testConfig(a, compress, level, bo)
	strict := level == 0 && !compress
	geo := diskdump.NewGeometry(bs, src.MaxPFN(), src.RAMPages(), !strict)
	room := geo.TotalBlocks() + geo.RAMBitmapBlocks + 8
	clean := formattedImage(room, bs, a.ByteOrder())

	// The complete dump first: it sizes the cuts and the short partition.
	full := bytes.Clone(clean)
	res, err := WriteDump(memfile.New(full), room, src, cfg)
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	rtCheck(t, "complete", full, res, src, a)

	total := res.BlocksWritten
	first := int64(geo.FirstDataBlock())
	scen := []rtScenario{
		{name: "cut-header", cut: 1},
		{name: "cut-bitmaps", cut: first - 1},
		{name: "cut-first-data", cut: first + 1},
		{name: "cut-middle", cut: first + (total-first)/2},
		{name: "cut-before-final-header", cut: total - 1},
	}
	data := res.WrittenBlocks - uint64(first)
	short := uint64(first) + max(data/2, 3)
	if strict {
		// Strict mode samples total_blocks: only an unchecked device
		// can be smaller (doc/FORMAT.md §3.2).
		short = uint64(first) + data/2
	}
	scen = append(scen, rtScenario{name: "short-area", dev: short})
	for _, sc := range scen {
		c := cfg
		c.StopAfterBlocks = sc.cut
		dev := room
		if sc.dev != 0 {
			dev = sc.dev
			if strict {
				c.SampleRate = -1
			}
		}
		img := bytes.Clone(clean[:dev*uint64(bs)])
		r, err := WriteDump(memfile.New(img), dev, src, c)
		require.NoError(t, err, sc.name)
		if sc.cut != 0 {
			require.Equal(t, OutcomePowerCut, r.Outcome, sc.name)
		} else if strict {
			require.Equal(t, OutcomeIncomplete, r.Outcome, sc.name)
		} else {
			require.Equal(t, OutcomeShortArea, r.Outcome, sc.name)
		}
		rtCheck(t, sc.name, img, r, src, a)
	}
}

// rtCheck compares what the reader recovers from img with the writer's
// Recoverable set and the source's bytes.
func rtCheck(t *testing.T, name string, img []byte, res *Result, src MemorySource, a diskdump.Arch) {
	t.Helper()
	got, err := rtPages(t, img)
	want := rtExpect(t, src, res.Recoverable, a)
	if res.Header == nil || uint64(res.Header.WrittenBlocks) < res.Geometry.FirstDataBlock() {
		// Interrupted before the bitmaps were written: no dump to read.
		require.Error(t, err, "%s: header %+v", name, res.Header)
		if res.Header == nil {
			assert.ErrorIs(t, err, diskdump.ErrNoDump, name)
		}
		assert.Empty(t, want, name)
		return
	}
	require.NoError(t, err, name)
	// Every saved page is recoverable once the final header is on disk.
	if res.Outcome != OutcomePowerCut {
		assert.Equal(t, res.Saved.Bytes(), res.Recoverable.Bytes(), name)
	}
	for p := range res.Recoverable.All() {
		require.True(t, res.Saved.Test(p), "%s: recoverable PFN %d was saved", name, p)
	}
	for p, h := range want {
		g, ok := got[p]
		require.True(t, ok, "%s: PFN %d not recovered (%d recovered, %d expected)", name, p, len(got), len(want))
		require.Equal(t, h, g, "%s: PFN %d content", name, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			require.Failf(t, "extra page", "%s: PFN %d recovered but not recoverable", name, p)
		}
	}
}

// TestRoundTripELFCore dumps a machine read from an ELF core and reads it
// back: the pages equal the core's PT_LOAD contents.
func TestRoundTripELFCore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		class64  bool
		order    binary.ByteOrder
		arch     diskdump.Arch
		compress bool
		level    int
	}{
		{"elf64-x86_64-raw", true, binary.LittleEndian, diskdump.ArchX86_64, false, 0},
		{"elf64-x86_64-cmp-dl2", true, binary.LittleEndian, diskdump.ArchX86_64, true, 2},
		{"elf32-i386-cmp", false, binary.LittleEndian, diskdump.ArchI386, true, 0},
		{"elf64-ppc64-raw-dl31", true, binary.BigEndian, diskdump.ArchPPC64, false, 31},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			core := testCore(tc.class64, tc.order, tc.arch, 7)
			src, err := NewELFCoreSource(bytes.NewReader(core.file), int64(len(core.file)), 0)
			require.NoError(t, err)
			cfg := testConfig(tc.arch, tc.compress, tc.level, 2)
			cfg.Arch = src.Arch()
			cfg.Utsname = src.Utsname()
			g := diskdump.NewGeometry(4096, src.MaxPFN(), 0, true)
			dev := g.HeaderBlocks() + 2*g.RAMBitmapBlocks + src.MaxPFN() + 8
			img := formattedImage(dev, 4096, tc.arch.ByteOrder())
			res, err := WriteDump(memfile.New(img), dev, src, cfg)
			require.NoError(t, err)
			require.Equal(t, OutcomeCompleted, res.Outcome)
			p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
			require.NoError(t, err)
			assert.Equal(t, "2.6.9-test.EL", p.Header().Utsname.Release)
			assert.Equal(t, tc.arch.Machine(), p.Header().Utsname.Machine)
			n := 0
			buf := make([]byte, 4096)
			for pg, err := range p.Pages() {
				require.NoError(t, err)
				data, err := pg.Decompress(buf)
				require.NoError(t, err)
				require.Equal(t, core.page(pg.PFN), data, "PFN %d", pg.PFN)
				n++
			}
			var want int
			for pfn := range src.MaxPFN() {
				if core.isRAM(pfn) && (tc.level&2 == 0 || !zero.Is(core.page(pfn))) {
					want++
				}
			}
			assert.Equal(t, want, n)
			assert.Equal(t, uint64(n), res.PagesSaved)
		})
	}
}

// rdrWriterPage is the page the kernel-exact writer saves for pfn.
func rdrWriterPage(t testing.TB, src *SyntheticMachine, a diskdump.Arch, pfn uint64, bs int) []byte {
	b := make([]byte, bs)
	at := src.Attrs(pfn)
	switch {
	case at.BadPage:
		flags := at.Flags
		if !a.Is64() {
			flags &= 0xffffffff
		}
		copy(b, fmt.Sprintf("Bad page. PFN %d flags %x\n", pfn, flags))
	case at.Unmapped:
		copy(b, fmt.Sprintf("Unmapped page. PFN %d\n", pfn))
	default:
		require.NoError(t, src.ReadPage(pfn, b))
	}
	return b
}

// TestWriterRoundTrip reads dumps made by the kernel-exact writer: the
// pages found are exactly the writer's Recoverable set, with the source's
// bytes, and the losses add up. (The full matrix is the writer's; this is
// the reader's side of a few cases, power cuts included.)
func TestWriterRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		arch     diskdump.Arch
		compress bool
		level    int
		devBlks  uint64 // 0: room for everything
		cut      int64  // StopAfterBlocks
		pages    uint64 // machine size in pages; 0: 300
		mix      PageMix
		outcome  Outcome
	}{
		{"raw strict", diskdump.ArchX86_64, false, 0, 0, 0, 0, PageMix{}, OutcomeCompleted},
		{"raw strict ppc64", diskdump.ArchPPC64, false, 0, 0, 0, 0, PageMix{}, OutcomeCompleted},
		{"raw strict i386", diskdump.ArchI386, false, 0, 0, 0, 0, PageMix{}, OutcomeCompleted},
		{"raw partial dl19", diskdump.ArchX86_64, false, 19, 0, 0, 0, PageMix{}, OutcomeCompleted},
		{"compressed", diskdump.ArchX86_64, true, 0, 0, 0, 0, PageMix{}, OutcomeCompleted},
		{"compressed dl31 ia64", diskdump.ArchIA64, true, 31, 0, 0, 100, PageMix{}, OutcomeCompleted},
		{"compressed ppc64 dl19", diskdump.ArchPPC64, true, 19, 0, 0, 0, PageMix{}, OutcomeCompleted},
		{"compressed short area", diskdump.ArchX86_64, true, 0, 40, 0, 0, PageMix{}, OutcomeShortArea},
		{"raw partial short area", diskdump.ArchX86_64, false, 1, 100, 0, 0, PageMix{}, OutcomeShortArea},
		{"raw strict small device", diskdump.ArchX86_64, false, 0, 150, 0, 0, PageMix{}, OutcomeIncomplete},
		{"raw strict power cut", diskdump.ArchX86_64, false, 0, 0, 100, 0, PageMix{}, OutcomePowerCut},
		{"raw strict power cut mid-chunk", diskdump.ArchX86_64, false, 0, 0, 101, 0, PageMix{}, OutcomePowerCut},
		{"raw partial power cut", diskdump.ArchX86_64, false, 1, 0, 80, 0, PageMix{}, OutcomePowerCut},
		{"compressed power cut", diskdump.ArchX86_64, true, 0, 0, 30, 0, PageMix{}, OutcomePowerCut},
		{"compressed power cut early", diskdump.ArchX86_64, true, 0, 0, 8, 0, PageMix{}, OutcomePowerCut},
		{"power cut before the bitmaps", diskdump.ArchX86_64, true, 0, 0, 3, 0, PageMix{}, OutcomePowerCut},
		// More than 8*B RAM pages: the dense bitmap is flushed once, the
		// header says IN_PROGRESS, later pages are unattributable.
		{"compressed power cut after a bitmap flush", diskdump.ArchX86_64, true, 0, 1500, 480, 40000, PageMix{Zero: 50, Sparse: 50}, OutcomePowerCut},
		{"raw partial power cut after a bitmap flush", diskdump.ArchX86_64, false, 2, 4000, 1750, 40000, PageMix{Zero: 95, Text: 5}, OutcomePowerCut},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bs := tc.arch.PageSize()
			if tc.pages > 0 && testutil.Race {
				t.Skip("machines of more than 32768 pages are too slow under the race detector; run without -race")
			}
			pages := tc.pages
			if pages == 0 {
				pages = 300
			}
			src := NewSyntheticMachine(SyntheticConfig{Arch: tc.arch, MemBytes: pages * uint64(bs), Seed: 7, Mix: tc.mix})
			dev := tc.devBlks
			if dev == 0 {
				dev = pages + 100
			}
			img := make([]byte, dev*uint64(bs))
			for blk := range dev {
				diskdump.FillSignature(img[blk*uint64(bs):(blk+1)*uint64(bs)], blk, tc.arch.ByteOrder())
			}
			cfg := DefaultConfig(tc.arch)
			cfg.Compress, cfg.DumpLevel, cfg.StopAfterBlocks = tc.compress, tc.level, tc.cut
			if tc.devBlks != 0 {
				// Strict mode on a small device needs the signature check off
				// (the kernel's sampler would read past the end, §3.2).
				cfg.SampleRate = -1
			}
			res, err := WriteDump(memfile.New(img), dev, src, cfg)
			require.NoError(t, err)
			require.Equal(t, tc.outcome, res.Outcome)
			p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
			if res.Header == nil || res.WrittenBlocks < res.Geometry.FirstDataBlock() {
				var fe *diskdump.FormatError
				require.ErrorAs(t, err, &fe, "outcome %v", res.Outcome)
				t.Logf("outcome %v: %v", res.Outcome, err)
				return
			}
			require.NoError(t, err, "outcome %v", res.Outcome)
			assert.Equal(t, res.Status, p.Header().Status)
			assert.Equal(t, res.Outcome != OutcomeCompleted || res.PagesSkipped > 0, p.Incomplete() || res.Outcome == OutcomeCompleted && res.PagesSkipped > 0)
			got := diskdump.MakeBitmap(uint64(src.MaxPFN()))
			var dst []byte
			var last uint64
			for pg, err := range p.Pages() {
				if err != nil {
					var le *diskdump.LostError
					require.ErrorAs(t, err, &le)
					continue
				}
				require.True(t, got.Count() == 0 || pg.PFN > last, "PFN order")
				last = pg.PFN
				dst, err = pg.Decompress(dst)
				require.NoError(t, err)
				require.Equal(t, rdrWriterPage(t, src, tc.arch, pg.PFN, bs), dst, "PFN %d", pg.PFN)
				if tc.compress {
					assert.Equal(t, src.Attrs(pg.PFN).Flags, pg.PageFlags, "PFN %d", pg.PFN)
					assert.Equal(t, src.Attrs(pg.PFN).Anon, pg.Flags&diskdump.PageMappingAnon != 0, "PFN %d", pg.PFN)
				}
				got.Set(pg.PFN)
			}
			assert.Equal(t, res.Recoverable.Count(), got.Count(), "outcome %v", res.Outcome)
			for pfn := range res.Recoverable.All() {
				assert.True(t, got.Test(pfn), "recoverable PFN %d not found", pfn)
			}
			for pfn := range got.All() {
				assert.True(t, p.DumpableBitmap().Test(pfn))
			}
			st := p.Stats()
			t.Logf("outcome %v, status %v: found %d of %d, lost %v", res.Outcome, res.Status, st.Found, st.Expected, st.LostBy)
			assert.Equal(t, st.Expected, st.Found+st.Lost)
			assert.Equal(t, res.Recoverable.Count(), st.Found)
			if tc.pages > 0 && tc.cut > 0 {
				require.Equal(t, diskdump.StatusInProgress, res.Status.State(), "the cut must fall after a bitmap flush")
				assert.NotZero(t, st.LostBy[diskdump.LostUnflushed])
				assert.NotZero(t, st.Found)
			}
			if res.Outcome == OutcomeCompleted {
				assert.Zero(t, st.Lost)
				assert.Equal(t, res.PagesSkipped, st.Excluded)
			}
		})
	}
}
