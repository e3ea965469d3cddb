package diskdump_test

// Bad input: a table of corruptions applied to real rehearsal dumps (the
// kernel-exact writer on formatted in-memory partitions). Every case must
// end in a typed error (*FormatError naming the field, *PageError naming
// the page) or in a partial recovery whose losses are accounted for, and
// never in a panic, a hang or an allocation out of proportion to the
// device.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/vmcore"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

// corBase is a pristine rehearsal dump and what it holds.
type corBase struct {
	name  string
	arch  diskdump.Arch
	img   []byte
	bs    int
	geo   diskdump.Geometry
	hdr   *diskdump.Header
	pages []corPage // in PFN order, as the reader yields them
}

type corPage struct {
	pfn        uint64
	off        int64 // data offset on the partition
	n          int   // data length
	compressed bool
}

// recOff is the offset of the record header of a compressed page.
func (p corPage) recOff() int64 { return p.off - diskdump.PageRecordSize }

var corBasesOnce struct {
	sync.Once
	bases []*corBase
	err   error
}

// corBases builds the rehearsal dumps once per test binary: a 2 MiB
// x86_64 machine dumped raw (strict, one bitmap), compressed, and partial
// raw (dump_level 2, two bitmaps), and an i386 compressed partial dump.
func corBases(t *testing.T) []*corBase {
	t.Helper()
	corBasesOnce.Do(func() {
		for _, c := range []struct {
			name     string
			arch     diskdump.Arch
			compress bool
			level    int
		}{
			{"raw", diskdump.ArchX86_64, false, 0},
			{"compressed", diskdump.ArchX86_64, true, 0},
			{"partial-raw", diskdump.ArchX86_64, false, 2},
			{"i386-compressed", diskdump.ArchI386, true, 4},
		} {
			b, err := newCorBase(c.name, c.arch, c.compress, c.level)
			if err != nil {
				corBasesOnce.err = err
				return
			}
			corBasesOnce.bases = append(corBasesOnce.bases, b)
		}
	})
	require.NoError(t, corBasesOnce.err)
	return corBasesOnce.bases
}

func newCorBase(name string, a diskdump.Arch, compress bool, level int) (*corBase, error) {
	bs := a.PageSize()
	src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: a, MemBytes: 2 << 20, Seed: 11,
		Mix: kernel.PageMix{Zero: 20, Sparse: 20, Text: 20, Pattern: 20, Random: 20}, BadPFNs: []uint64{300}})
	const devBlocks = 600
	img := make([]byte, devBlocks*bs)
	fp := diskdump.FormatParams{BlockSize: bs, Order: a.ByteOrder(), BlockOrder: 2, SampleRate: 8}
	if err := diskdump.FormatInitial(memfile.New(img), devBlocks, fp, nil); err != nil {
		return nil, err
	}
	cfg := kernel.DefaultConfig(a)
	cfg.Compress, cfg.DumpLevel = compress, level
	cfg.Time = time.Unix(1246291200, 123456789)
	cfg.NrCPUs, cfg.CurrentCPU = 2, 1
	cfg.Tasks = []uint64{0xc1000000, 0xc2000000}
	f := memfile.New(img)
	res, err := kernel.WriteDump(f, devBlocks, src, cfg)
	if err != nil {
		return nil, err
	}
	if res.Outcome != kernel.OutcomeCompleted {
		return nil, fmt.Errorf("%s: rehearsal dump %v", name, res.Outcome)
	}
	img = f.Bytes()
	p, err := diskdump.OpenPartition(memfile.New(img), int64(len(img)))
	if err != nil {
		return nil, err
	}
	b := &corBase{name: name, arch: a, img: img, bs: bs, geo: p.Geometry(), hdr: p.Header()}
	for pg, err := range p.Pages() {
		if err != nil {
			return nil, fmt.Errorf("%s: pristine dump: %w", name, err)
		}
		b.pages = append(b.pages, corPage{pfn: pg.PFN, off: pg.Off, n: len(pg.Data), compressed: pg.Compressed})
	}
	if len(b.pages) < 100 {
		return nil, fmt.Errorf("%s: only %d pages", name, len(b.pages))
	}
	return b, nil
}

// field returns the offset on the partition and the width of a header field.
func (b *corBase) field(name string) (int64, int) {
	l := diskdump.LayoutOf(b.arch)
	off := int64(b.bs + l.FieldOffset(name))
	switch name {
	case "signature":
		return off, 8
	case "timestamp":
		if l.Is64 {
			return off, 16
		}
		return off, 8
	}
	return off, 4
}

func (b *corBase) order() binary.ByteOrder { return b.arch.ByteOrder() }

// put stores v at off in n bytes of the dump's byte order.
func (b *corBase) put(img []byte, off int64, n int, v uint64) {
	switch n {
	case 4:
		b.order().PutUint32(img[off:], uint32(v))
	case 8:
		b.order().PutUint64(img[off:], v)
	case 16:
		b.order().PutUint64(img[off:], v)
		b.order().PutUint64(img[off+8:], v)
	default:
		panic(n)
	}
}

// firstPage returns the first page matching ok, for record corruptions.
func (b *corBase) firstPage(t *testing.T, ok func(corPage) bool) corPage {
	t.Helper()
	for _, p := range b.pages[10:] {
		if ok(p) {
			return p
		}
	}
	t.Fatalf("%s: no page for the corruption", b.name)
	return corPage{}
}

// corWant is what a corrupted dump must give.
type corWant struct {
	// field: OpenPartition fails with a *FormatError naming this field.
	field string
	// is: the open error also wraps this sentinel (with field).
	is error
	// open: OpenPartition must succeed (a partial recovery).
	open bool
	// lostPFN: with open, some *PageError (from Pages or Decompress)
	// names this PFN.
	lostPFN *uint64
	// found: with open, exactly this many pages decode (-1: any).
	found int
}

var anyOutcome = corWant{found: -1}

func pfnPtr(p uint64) *uint64 { return &p }

type corCase struct {
	name string
	base string // base dump, "" for every base
	// main: run on the x86_64 raw and compressed bases only (the header
	// fields' less telling values; keeps the test fast under -race).
	main bool
	mod  func(t *testing.T, b *corBase, img []byte) []byte
	want func(b *corBase) corWant
}

func wantField(f string, is error) func(*corBase) corWant {
	return func(*corBase) corWant { return corWant{field: f, is: is, found: -1} }
}

func wantOpen(found func(b *corBase) int) func(*corBase) corWant {
	return func(b *corBase) corWant {
		w := corWant{open: true, found: -1}
		if found != nil {
			w.found = found(b)
		}
		return w
	}
}

func wantAny(*corBase) corWant { return anyOutcome }

func wantLost(pfn func(b *corBase) uint64) func(*corBase) corWant {
	return func(b *corBase) corWant { return corWant{open: true, lostPFN: pfnPtr(pfn(b)), found: -1} }
}

func allPages(b *corBase) int { return len(b.pages) }

// setField sets a header field to v.
func setField(name string, v uint64) func(*testing.T, *corBase, []byte) []byte {
	return func(_ *testing.T, b *corBase, img []byte) []byte {
		off, n := b.field(name)
		b.put(img, off, n, v)
		return img
	}
}

// headerCases sets every header field to extreme values.
func headerCases() []corCase {
	const (
		u32max = math.MaxUint32
		s32max = math.MaxInt32
		s32min = 1 << 31 // as stored: -2^31
	)
	extremes := []struct {
		name string
		v    uint64
		main bool
	}{{"0", 0, false}, {"1", 1, true}, {"-1", u32max, false}, {"s32max", s32max, true}, {"s32min", s32min, true}}
	var cs []corCase
	// Fields whose every extreme value is impossible: the open names them.
	for _, f := range []string{"block_size", "nr_cpus"} {
		for _, e := range extremes {
			w := wantField(f, diskdump.ErrCorrupt)
			if f == "nr_cpus" && e.v == 1 {
				w = wantOpen(allPages) // one CPU is possible
			}
			cs = append(cs, corCase{name: f + "=" + e.name, main: e.main, mod: setField(f, e.v), want: w})
		}
	}
	for _, e := range extremes {
		w := wantField("sub_hdr_size", diskdump.ErrCorrupt)
		if e.v == 1 {
			w = wantOpen(allPages) // the real value
		}
		cs = append(cs, corCase{name: "sub_hdr_size=" + e.name, main: e.main, mod: setField("sub_hdr_size", e.v), want: w})
	}
	cs = append(cs,
		corCase{name: "sub_hdr_size=2", mod: setField("sub_hdr_size", 2), want: wantAny},
		corCase{name: "sub_hdr_size=64", mod: setField("sub_hdr_size", 64), want: wantAny},
		corCase{name: "block_size=8192", mod: setField("block_size", 8192), want: wantField("block_size", diskdump.ErrCorrupt)},
		corCase{name: "block_size=65536", mod: setField("block_size", 65536), want: wantField("block_size", diskdump.ErrCorrupt)},
	)
	for _, e := range extremes {
		cs = append(cs, corCase{name: "bitmap_blocks=" + e.name, main: e.main, mod: setField("bitmap_blocks", e.v), want: func(b *corBase) corWant {
			if e.v == b.geo.RAMBitmapBlocks || e.v == 2*b.geo.RAMBitmapBlocks {
				return anyOutcome // one bitmap read as two or the reverse
			}
			return corWant{field: "bitmap_blocks", is: diskdump.ErrCorrupt, found: -1}
		}})
	}
	cs = append(cs, corCase{name: "bitmap_blocks one/two swapped", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
		off, n := b.field("bitmap_blocks")
		v := b.geo.RAMBitmapBlocks
		if !b.geo.TwoBitmaps() {
			v *= 2
		}
		b.put(img, off, n, v)
		return img
	}, want: wantAny})
	for _, e := range extremes {
		cs = append(cs, corCase{name: "max_mapnr=" + e.name, main: e.main, mod: setField("max_mapnr", e.v), want: func(b *corBase) corWant {
			switch {
			case e.v == 0:
				return corWant{field: "max_mapnr", is: diskdump.ErrCorrupt, found: -1}
			case diskdump.BitmapBlocksFor(e.v, b.bs) == b.geo.RAMBitmapBlocks:
				return corWant{open: true, found: -1} // fewer PFNs: a partial recovery
			}
			return corWant{field: "bitmap_blocks", is: diskdump.ErrCorrupt, found: -1}
		}})
	}
	// Huge bitmaps that agree with max_mapnr: refused before anything is
	// allocated, the device cannot hold them.
	cs = append(cs, corCase{name: "max_mapnr and bitmap_blocks huge", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
		mo, n := b.field("max_mapnr")
		b.put(img, mo, n, u32max)
		bo, n := b.field("bitmap_blocks")
		r := diskdump.BitmapBlocksFor(u32max, b.bs)
		if b.geo.TwoBitmaps() {
			r *= 2
		}
		b.put(img, bo, n, r)
		return img
	}, want: wantField("bitmap_blocks", diskdump.ErrTooSmall)})
	for _, e := range extremes {
		// total_ram_blocks is informational: the reader trusts bitmap 1.
		cs = append(cs, corCase{name: "total_ram_blocks=" + e.name, main: e.main, mod: setField("total_ram_blocks", e.v), want: wantOpen(allPages)})
		// header_version is 0 (RHEL4) or 1 (RHEL3); nothing depends on it.
		cs = append(cs, corCase{name: "header_version=" + e.name, main: e.main, mod: setField("header_version", e.v), want: wantOpen(allPages)})
		cs = append(cs, corCase{name: "timestamp=" + e.name, main: e.main, mod: setField("timestamp", e.v), want: wantOpen(allPages)})
		cs = append(cs, corCase{name: "device_blocks=" + e.name, main: e.main, mod: setField("device_blocks", e.v), want: func(b *corBase) corWant {
			if e.v < uint64(b.hdr.WrittenBlocks) {
				return corWant{field: "written_blocks", is: diskdump.ErrCorrupt, found: -1}
			}
			return corWant{open: true, found: len(b.pages)}
		}})
		cs = append(cs, corCase{name: "written_blocks=" + e.name, main: e.main, mod: setField("written_blocks", e.v), want: func(b *corBase) corWant {
			switch {
			case e.v < b.geo.FirstDataBlock():
				return corWant{field: "written_blocks", is: diskdump.ErrTruncated, found: -1}
			case e.v > uint64(b.hdr.DeviceBlocks):
				return corWant{field: "written_blocks", is: diskdump.ErrCorrupt, found: -1}
			}
			return anyOutcome
		}})
		cs = append(cs, corCase{name: "current_cpu=" + e.name, main: e.main, mod: setField("current_cpu", e.v), want: func(b *corBase) corWant {
			if e.v >= 4096 {
				return corWant{field: "current_cpu", is: diskdump.ErrCorrupt, found: -1}
			}
			return corWant{open: true, found: len(b.pages)}
		}})
		cs = append(cs, corCase{name: "status=" + e.name, main: e.main, mod: setField("status", e.v), want: wantAny})
	}
	cs = append(cs,
		corCase{name: "timestamp=s64min", mod: setField("timestamp", 1<<63), want: wantOpen(allPages)},
		corCase{name: "written_blocks=first data block", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			off, n := b.field("written_blocks")
			b.put(img, off, n, b.geo.FirstDataBlock())
			return img
		}, want: wantOpen(nil)},
		corCase{name: "written_blocks=device_blocks", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			off, n := b.field("written_blocks")
			b.put(img, off, n, uint64(b.hdr.DeviceBlocks))
			return img
		}, want: wantOpen(nil)},
		corCase{name: "status compressed bit flipped", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			off, n := b.field("status")
			b.put(img, off, n, uint64(b.hdr.Status^diskdump.StatusCompressed))
			return img
		}, want: wantAny},
		corCase{name: "status IN_PROGRESS", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			off, n := b.field("status")
			b.put(img, off, n, uint64(b.hdr.Status&diskdump.StatusCompressed|diskdump.StatusInProgress))
			return img
		}, want: wantOpen(allPages)},
		corCase{name: "signature DISKDUMQ", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			copy(img[b.bs:], "DISKDUMQ")
			return img
		}, want: wantField("signature", diskdump.ErrNoDump)},
		corCase{name: "signature KDUMP", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			copy(img[b.bs:], diskdump.KdumpSignature)
			return img
		}, want: wantField("signature", diskdump.ErrNoDump)},
		corCase{name: "whole header 0xff after the signature", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			for i := b.bs + 8; i < 2*b.bs; i++ {
				img[i] = 0xff
			}
			return img
		}, want: func(*corBase) corWant { return corWant{field: "block_size", found: -1} }},
	)
	for _, m := range []string{"", "sparc64", "i686", "x86_64", "ppc64", "ia64"} {
		cs = append(cs, corCase{name: "machine=" + m, mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			off := b.bs + 272
			clear(img[off : off+65])
			copy(img[off:], m)
			return img
		}, want: func(b *corBase) corWant {
			if m == b.arch.Machine() {
				return corWant{open: true, found: len(b.pages)}
			}
			return anyOutcome // probed or decoded with another layout
		}})
	}
	return cs
}

// bitmapCases make the bitmaps disagree with the header and each other.
func bitmapCases() []corCase {
	ram := func(b *corBase, img []byte) []byte {
		s := int(b.geo.RAMBitmapBlock()) * b.bs
		return img[s : s+int(b.geo.RAMBitmapBlocks)*b.bs]
	}
	dense := func(b *corBase, img []byte) []byte {
		s := int(b.geo.DumpBitmapBlock()) * b.bs
		return img[s : s+int(b.geo.RAMBitmapBlocks)*b.bs]
	}
	fill := func(p []byte, v byte) {
		for i := range p {
			p[i] = v
		}
	}
	return []corCase{
		{name: "bitmap 1 all ones", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			fill(ram(b, img), 0xff)
			return img
		}, want: wantOpen(nil)},
		{name: "bitmap 1 all zeros", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			fill(ram(b, img), 0)
			return img
		}, want: wantOpen(func(*corBase) int { return 0 })},
		{name: "bitmap 1 bits beyond max_mapnr", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			m := ram(b, img)
			fill(m[b.hdr.MaxMapnr/8+1:], 0xff)
			return img
		}, want: wantOpen(allPages)}, // ignored: bits >= max_mapnr are not RAM
		{name: "bitmap 1 first RAM page cleared", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			p := b.pages[0].pfn
			ram(b, img)[p/8] &^= 1 << (p % 8)
			return img
		}, want: wantOpen(nil)},
		{name: "bitmap 2 all ones", base: "compressed", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			fill(dense(b, img), 0xff)
			return img
		}, want: wantOpen(nil)},
		{name: "bitmap 2 all ones", base: "partial-raw", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			fill(dense(b, img), 0xff)
			return img
		}, want: wantOpen(nil)},
		{name: "bitmap 2 all zeros", base: "compressed", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			fill(dense(b, img), 0)
			return img
		}, want: wantOpen(func(*corBase) int { return 0 })},
		{name: "bitmap 2 all zeros", base: "partial-raw", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			fill(dense(b, img), 0)
			return img
		}, want: wantOpen(func(*corBase) int { return 0 })},
		{name: "bitmap 2 bits beyond the RAM pages", base: "i386-compressed", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			d := dense(b, img)
			fill(d[len(d)-16:], 0xff)
			return img
		}, want: wantOpen(allPages)}, // stray dense bits are ignored
		{name: "bitmap blocks overwritten by signatures", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			for blk := b.geo.RAMBitmapBlock(); blk < b.geo.FirstDataBlock(); blk++ {
				diskdump.FillSignature(img[int(blk)*b.bs:int(blk+1)*b.bs], blk, b.order())
			}
			return img
		}, want: wantOpen(nil)},
	}
}

// recordCases damage single records of the compressed dumps.
func recordCases() []corCase {
	isZ := func(p corPage) bool { return p.compressed && p.n > 64 }
	isRaw := func(p corPage) bool { return !p.compressed }
	var cs []corCase
	for _, base := range []string{"compressed", "i386-compressed"} {
		setSize := func(pick func(corPage) bool, size func(corPage) uint64) func(*testing.T, *corBase, []byte) []byte {
			return func(t *testing.T, b *corBase, img []byte) []byte {
				p := b.firstPage(t, pick)
				b.order().PutUint32(img[p.recOff()+8:], uint32(size(p)))
				return img
			}
		}
		lostAt := func(pick func(corPage) bool) func(*corBase) corWant {
			return func(b *corBase) corWant {
				for _, p := range b.pages[10:] {
					if pick(p) {
						return corWant{open: true, lostPFN: pfnPtr(p.pfn), found: -1}
					}
				}
				return corWant{open: true, found: -1}
			}
		}
		// Fewer pages than the pristine dump, the damaged one named.
		cs = append(cs,
			corCase{name: "record size 0", base: base, mod: setSize(isZ, func(corPage) uint64 { return 0 }), want: lostAt(isZ)},
			corCase{name: "record size B+1", base: base, mod: setSize(isZ, func(corPage) uint64 { return 4097 }), want: lostAt(isZ)},
			corCase{name: "record size max", base: base, mod: setSize(isZ, func(corPage) uint64 { return math.MaxUint32 }), want: lostAt(isZ)},
			corCase{name: "record size one short", base: base, mod: setSize(isZ, func(p corPage) uint64 { return uint64(p.n - 1) }), want: lostAt(isZ)},
			// Resynchronisation finds the next record one byte before the
			// position the size gives, and the counts show that no record
			// was lost there: every page is recovered.
			corCase{name: "record size one long", base: base, mod: setSize(isZ, func(p corPage) uint64 { return uint64(p.n + 1) }), want: wantOpen(allPages)},
			corCase{name: "raw record size B-1", base: base, mod: setSize(isRaw, func(p corPage) uint64 { return uint64(p.n - 1) }), want: lostAt(isRaw)},
			corCase{name: "raw record flagged compressed", base: base, mod: func(t *testing.T, b *corBase, img []byte) []byte {
				p := b.firstPage(t, isRaw)
				b.order().PutUint32(img[p.recOff()+12:], diskdump.PageCompressed)
				return img
			}, want: lostAt(isRaw)},
			corCase{name: "zlib record flagged raw", base: base, mod: func(t *testing.T, b *corBase, img []byte) []byte {
				p := b.firstPage(t, isZ)
				b.order().PutUint32(img[p.recOff()+12:], 0)
				return img
			}, want: lostAt(isZ)},
			corCase{name: "record unknown flag bits", base: base, mod: func(t *testing.T, b *corBase, img []byte) []byte {
				p := b.firstPage(t, isZ)
				b.order().PutUint32(img[p.recOff()+12:], 0xfffffff1)
				return img
			}, want: lostAt(isZ)},
			corCase{name: "bad zlib header", base: base, mod: func(t *testing.T, b *corBase, img []byte) []byte {
				p := b.firstPage(t, isZ)
				img[p.off] = 0x79
				return img
			}, want: lostAt(isZ)},
			corCase{name: "bad zlib data", base: base, mod: func(t *testing.T, b *corBase, img []byte) []byte {
				p := b.firstPage(t, isZ)
				for i := p.off + 4; i < p.off+int64(p.n)-8; i++ {
					img[i] ^= 0x55
				}
				return img
			}, want: lostAt(isZ)},
			corCase{name: "bad Adler-32", base: base, mod: func(t *testing.T, b *corBase, img []byte) []byte {
				p := b.firstPage(t, isZ)
				img[p.off+int64(p.n)-1] ^= 1
				return img
			}, want: lostAt(isZ)},
			corCase{name: "zlib stream cut to its header", base: base, mod: func(t *testing.T, b *corBase, img []byte) []byte {
				p := b.firstPage(t, isZ)
				clear(img[p.off+2 : p.off+int64(p.n)])
				return img
			}, want: lostAt(isZ)},
			corCase{name: "all record headers zeroed", base: base, mod: func(_ *testing.T, b *corBase, img []byte) []byte {
				for _, p := range b.pages {
					clear(img[p.recOff() : p.recOff()+diskdump.PageRecordSize])
				}
				return img
			}, want: func(b *corBase) corWant {
				return corWant{open: true, lostPFN: pfnPtr(b.pages[0].pfn), found: 0}
			}},
			corCase{name: "data area filled with 'm' padding", base: base, mod: func(_ *testing.T, b *corBase, img []byte) []byte {
				s := int(b.geo.FirstDataBlock()) * b.bs
				e := int(b.hdr.WrittenBlocks) * b.bs
				for i := s; i < e; i++ {
					img[i] = 'm'
				}
				return img
			}, want: func(b *corBase) corWant {
				return corWant{open: true, lostPFN: pfnPtr(b.pages[0].pfn), found: 0}
			}},
		)
	}
	return cs
}

// truncationCases cut the image (a partition image copied short, or a
// device smaller than the header says).
func truncationCases() []corCase {
	cut := func(at func(b *corBase) int64) func(*testing.T, *corBase, []byte) []byte {
		return func(_ *testing.T, b *corBase, img []byte) []byte { return img[:at(b)] }
	}
	// firstCut is the first page whose data does not fit in n bytes.
	firstCut := func(b *corBase, n int64) uint64 {
		for _, p := range b.pages {
			if p.off+int64(p.n) > n {
				return p.pfn
			}
		}
		panic("no page beyond the cut")
	}
	mid := func(b *corBase) int64 { return b.pages[len(b.pages)/2].off + 100 }
	last := func(b *corBase) int64 { p := b.pages[len(b.pages)-1]; return p.off + int64(p.n) - 1 }
	first := func(b *corBase) int64 { return int64(b.geo.FirstDataBlock()) * int64(b.bs) }
	return []corCase{
		{name: "cut to 0 bytes", mod: cut(func(*corBase) int64 { return 0 }), want: wantField("signature", diskdump.ErrNoDump)},
		{name: "cut inside block 0", mod: cut(func(*corBase) int64 { return 100 }), want: wantField("signature", diskdump.ErrNoDump)},
		{name: "cut inside the header", mod: cut(func(b *corBase) int64 { return int64(b.bs) + 300 }), want: wantAny},
		{name: "cut after the header", mod: cut(func(b *corBase) int64 { return 2 * int64(b.bs) }), want: wantField("bitmap_blocks", diskdump.ErrTooSmall)},
		{name: "cut inside bitmap 1", mod: cut(func(b *corBase) int64 { return int64(b.geo.RAMBitmapBlock())*int64(b.bs) + 10 }),
			want: wantField("bitmap_blocks", diskdump.ErrTooSmall)},
		{name: "cut at the first data block", mod: cut(first), want: func(b *corBase) corWant {
			return corWant{open: true, lostPFN: pfnPtr(b.pages[0].pfn), found: 0}
		}},
		{name: "cut in the middle of the data", mod: cut(mid), want: func(b *corBase) corWant {
			return corWant{open: true, lostPFN: pfnPtr(firstCut(b, mid(b))), found: -1}
		}},
		{name: "cut one byte short", mod: cut(last), want: func(b *corBase) corWant {
			return corWant{open: true, lostPFN: pfnPtr(b.pages[len(b.pages)-1].pfn), found: len(b.pages) - 1}
		}},
	}
}

// signatureCases put format signatures into the data area, as a partition
// the kernel only partly overwrote has them.
func signatureCases() []corCase {
	sig := func(b *corBase, img []byte, blk uint64) {
		diskdump.FillSignature(img[int(blk)*b.bs:int(blk+1)*b.bs], blk, b.order())
	}
	return []corCase{
		// A complete dump's data block that happens to hold a signature
		// (the page's content) is data.
		{name: "signature block in a complete raw dump", base: "raw", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			sig(b, img, uint64(b.pages[50].off)/uint64(b.bs))
			return img
		}, want: wantOpen(allPages)},
		// A strict dump interrupted before its final header write
		// (INCOMPLETED, written_blocks at the first data block): the first
		// block still carrying its own signature ends the data (doc/FORMAT.md §9.4 step 8).
		{name: "interrupted strict dump, signature at page 50", base: "raw", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			so, n := b.field("status")
			b.put(img, so, n, uint64(diskdump.StatusIncompleted))
			wo, n := b.field("written_blocks")
			b.put(img, wo, n, b.geo.FirstDataBlock())
			sig(b, img, uint64(b.pages[50].off)/uint64(b.bs))
			return img
		}, want: func(b *corBase) corWant {
			return corWant{open: true, lostPFN: pfnPtr(b.pages[50].pfn), found: 50}
		}},
		{name: "signature blocks over the record stream", base: "compressed", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			blk := uint64(b.pages[40].off) / uint64(b.bs)
			sig(b, img, blk)
			sig(b, img, blk+1)
			return img
		}, want: func(b *corBase) corWant { return corWant{open: true, found: -1} }},
		{name: "whole data area re-formatted", mod: func(_ *testing.T, b *corBase, img []byte) []byte {
			for blk := b.geo.FirstDataBlock(); blk < uint64(b.hdr.WrittenBlocks); blk++ {
				sig(b, img, blk)
			}
			return img
		}, want: wantOpen(nil)},
	}
}

// discardAt is an io.WriterAt that keeps nothing: the vmcore writers run
// in full without the test holding a file of max_mapnr pages.
type discardAt struct{ n int64 }

func (d *discardAt) WriteAt(p []byte, off int64) (int, error) {
	d.n = max(d.n, off+int64(len(p)))
	return len(p), nil
}

// corOutcome is what running a corrupted dump through the reader and the
// vmcore writer gave.
type corOutcome struct {
	openErr   error
	found     int
	pageErrs  []error // from Pages and Decompress
	iterErrs  int     // of those, from Pages
	vmDumpErr error   // FormatDiskdump, when the default format was refused
	stats     diskdump.Stats
	vmErr     error
	vmRes     *vmcore.Result
	allocated uint64
}

// corRun decodes img the way savecore does: open, every page (inflated),
// then a vmcore in the default format. It recovers panics into an error
// so that the test reports the case.
func corRun(img []byte) (out corOutcome, panicked error) {
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 8<<10)
			panicked = fmt.Errorf("panic: %v\n%s", r, buf[:runtime.Stack(buf, false)])
		}
	}()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	defer func() {
		runtime.ReadMemStats(&ms)
		out.allocated = ms.TotalAlloc - before
	}()
	p, err := diskdump.OpenPartition(memfile.New(img), int64(len(img)))
	if err != nil {
		out.openErr = err
		return out, nil
	}
	buf := make([]byte, p.BlockSize())
	for pg, err := range p.Pages() {
		if err != nil {
			out.pageErrs = append(out.pageErrs, err)
			out.iterErrs++
			continue
		}
		if _, err := pg.Decompress(buf); err != nil {
			out.pageErrs = append(out.pageErrs, err)
			continue
		}
		out.found++
	}
	out.stats = p.Stats()
	out.vmRes, out.vmErr = vmcore.Write(&discardAt{}, p, vmcore.Options{})
	if errors.Is(out.vmErr, diskdump.ErrUnsupportedVersion) {
		// An ELF vmcore needs the architecture (utsname.machine); the
		// DISKDUMP format does not, so a dump with a damaged machine
		// field can still be saved that way.
		_, out.vmDumpErr = vmcore.Write(&discardAt{}, p, vmcore.Options{Format: vmcore.FormatDiskdump})
	}
	return out, nil
}

func TestCorruptDumps(t *testing.T) {
	bases := corBases(t)
	var cases []corCase
	for _, g := range [][]corCase{headerCases(), bitmapCases(), recordCases(), truncationCases(), signatureCases()} {
		cases = append(cases, g...)
	}
	// Under -race and a loaded machine a case takes well under a second;
	// a hang shows as a case still running after this.
	const perCase = 60 * time.Second
	n := 0
	for _, b := range bases {
		for _, tc := range cases {
			if tc.base != "" && tc.base != b.name || tc.main && b.name != "raw" && b.name != "compressed" {
				continue
			}
			n++
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				img := tc.mod(t, b, bytes.Clone(b.img))
				want := tc.want(b)
				type result struct {
					out      corOutcome
					panicked error
				}
				done := make(chan result, 1)
				go func() {
					out, p := corRun(img)
					done <- result{out, p}
				}()
				var r result
				select {
				case r = <-done:
				case <-time.After(perCase):
					t.Fatalf("no result after %v: the reader or the vmcore writer hangs", perCase)
				}
				require.NoError(t, r.panicked)
				checkCorOutcome(t, b, img, want, r.out)
			})
		}
	}
	t.Logf("%d corruption cases on %d rehearsal dumps", n, len(bases))
}

func checkCorOutcome(t *testing.T, b *corBase, img []byte, want corWant, out corOutcome) {
	t.Helper()
	// Allocations stay proportional to the device, whatever the header
	// claims (bitmaps and a 1 MiB read buffer, not max_mapnr pages).
	limit := 4*uint64(len(img)) + 8<<20
	assert.LessOrEqual(t, out.allocated, limit, "allocated %d bytes for a %d-byte image", out.allocated, len(img))

	if out.openErr != nil {
		var fe *diskdump.FormatError
		require.ErrorAs(t, out.openErr, &fe, "open error is not a *FormatError: %v", out.openErr)
		assert.Regexp(t, "^diskdump: ", out.openErr.Error())
		assert.False(t, want.open, "the dump must open: %v", out.openErr)
		if want.field != "" {
			assert.Equal(t, want.field, fe.Field, "wrong field in %v", out.openErr)
		}
		if want.is != nil {
			assert.ErrorIs(t, out.openErr, want.is)
		}
		return
	}
	assert.Empty(t, want.field, "the dump opened, want an error naming %s", want.field)
	for _, err := range out.pageErrs {
		var pe *diskdump.PageError
		if assert.ErrorAs(t, err, &pe, "page error is not a *PageError: %v", err) {
			assert.Regexp(t, "^diskdump: ", err.Error())
		}
	}
	// Every page expected is found or accounted as lost.
	s := out.stats
	assert.Equal(t, s.Expected, s.Found+s.Lost, "stats %+v", s)
	var sum uint64
	for _, v := range s.LostBy {
		sum += v
	}
	assert.Equal(t, s.Lost, sum, "LostBy %v", s.LostBy)
	if want.found >= 0 {
		assert.Equal(t, want.found, out.found, "pages decoded")
	}
	if want.lostPFN != nil {
		var pfns []uint64
		for _, err := range out.pageErrs {
			var pe *diskdump.PageError
			if errors.As(err, &pe) {
				pfns = append(pfns, pe.PFN)
			}
		}
		ok := slices.Contains(pfns, *want.lostPFN)
		assert.True(t, ok, "no error names the damaged page %d: %v", *want.lostPFN, pfns)
	}
	// The vmcore writer copes with whatever the reader accepted: an ELF
	// vmcore is refused only for an unknown architecture, and then the
	// DISKDUMP format works.
	if errors.Is(out.vmErr, diskdump.ErrUnsupportedVersion) {
		assert.NotEqual(t, b.arch.Machine(), string(bytes.TrimRight(img[b.bs+272:b.bs+272+65], "\x00")))
		assert.NoError(t, out.vmDumpErr, "DISKDUMP vmcore of a dump with an unknown machine")
		return
	}
	if assert.NoError(t, out.vmErr, "writing the vmcore: %v", out.vmErr) && assert.NotNil(t, out.vmRes) {
		assert.LessOrEqual(t, out.vmRes.Pages, s.Found, "vmcore pages beyond what the partition holds")
		// Pages the reader could not recover make the vmcore incomplete.
		// (A record whose zlib stream is corrupt is copied as it is into a
		// DISKDUMP vmcore, which stores pages compressed: that loss shows
		// only when the page is read.)
		if out.iterErrs > 0 || s.Found < uint64(len(b.pages)) {
			assert.True(t, out.vmRes.Incomplete, "a vmcore with lost pages must be marked incomplete")
		}
	}
}
