package kernel

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/fixtures"
	"github.com/dumpkit/dumpkit/internal/testutil"
	"github.com/dumpkit/dumpkit/internal/zero"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var formattedCache struct {
	sync.Mutex
	m map[string][]byte
}

// formattedImage returns a partition image whose every block carries its format
// signature (diskdumpfmt -f). Images are cut from a cached one.
func formattedImage(blocks uint64, bs int, order binary.ByteOrder) []byte {
	formattedCache.Lock()
	defer formattedCache.Unlock()
	if formattedCache.m == nil {
		formattedCache.m = map[string][]byte{}
	}
	key := fmt.Sprint(bs, order)
	b := formattedCache.m[key]
	if uint64(len(b)) < blocks*uint64(bs) {
		b = make([]byte, blocks*uint64(bs))
		for i := uint64(0); i < blocks; i++ {
			diskdump.FillSignature(b[i*uint64(bs):(i+1)*uint64(bs)], i, order)
		}
		formattedCache.m[key] = b
	}
	return bytes.Clone(b[:blocks*uint64(bs)])
}

// logDev is an in-memory partition that records every write.
type logDev struct {
	f      *memfile.File
	bs     int
	writes []logWrite
}

type logWrite struct {
	blk  uint64
	data []byte
}

func newLogDev(b []byte, bs int) *logDev { return &logDev{f: memfile.New(b), bs: bs} }

func (l *logDev) ReadAt(p []byte, off int64) (int, error) { return l.f.ReadAt(p, off) }

func (l *logDev) WriteAt(p []byte, off int64) (int, error) {
	l.writes = append(l.writes, logWrite{blk: uint64(off) / uint64(l.bs), data: bytes.Clone(p)})
	return l.f.WriteAt(p, off)
}

func (l *logDev) Bytes() []byte { return l.f.Bytes() }

func (w logWrite) blocks(bs int) uint64 { return uint64(len(w.data) / bs) }

// smallMachine: 16 MiB x86_64-like machine with the 640K hole and a
// few bad and unmapped pages.
func smallMachine(a diskdump.Arch, mem uint64, seed uint64) *SyntheticMachine {
	return NewSyntheticMachine(SyntheticConfig{Arch: a, MemBytes: mem, Seed: seed,
		Mix:     PageMix{Zero: 40, Sparse: 40, Text: 8, Pattern: 8, Random: 4},
		BadPFNs: []uint64{300, 301}, UnmappedPFNs: []uint64{400}})
}

func testConfig(a diskdump.Arch, compress bool, level int, bo uint) Config {
	cfg := DefaultConfig(a)
	cfg.Compress, cfg.DumpLevel, cfg.BlockOrder = compress, level, bo
	cfg.Time = time.Unix(1246291200, 123456789)
	cfg.NrCPUs, cfg.CurrentCPU = 4, 1
	cfg.Tasks = []uint64{0xffff810001000000, 0xffff810002000000, 0, 0xffff810004000000}
	return cfg
}

// decodedDump is what decodeTestDump finds on a partition: an independent
// decoder of complete dumps (doc/FORMAT.md §2, §6, §9.5) used to check the writer.
type decodedDump struct {
	hdr     *diskdump.Header
	ram     *diskdump.Bitmap
	dense   []byte
	pages   map[uint64][]byte
	flags   map[uint64]uint32
	pflags  map[uint64]uint64
	payload map[uint64][]byte // record data as stored (compressed)
	recEnd  []int64           // data-area byte offset after each record (compressed)
	padding []byte            // bytes after the last record up to written_blocks
}

func decodeTestDump(t *testing.T, disk []byte, a diskdump.Arch) *decodedDump {
	t.Helper()
	bs := a.PageSize()
	o := a.ByteOrder()
	h, err := diskdump.ParseHeader(disk[bs:2*bs], diskdump.HeaderCheck{DeviceBlocks: uint64(len(disk) / bs), BaseOff: int64(bs), BaseBlk: 1})
	require.NoError(t, err)
	d := &decodedDump{hdr: h, pages: map[uint64][]byte{}, flags: map[uint64]uint32{}, pflags: map[uint64]uint64{}, payload: map[uint64][]byte{}}
	r := diskdump.BitmapBlocksFor(uint64(h.MaxMapnr), bs)
	hb := 2 + uint64(h.SubHdrSize)
	d.ram = diskdump.NewBitmap(disk[hb*uint64(bs) : (hb+r)*uint64(bs)])
	first := hb + uint64(h.BitmapBlocks)
	var pfns []uint64
	if uint64(h.BitmapBlocks) == 2*r {
		d.dense = disk[(hb+r)*uint64(bs) : first*uint64(bs)]
		k := uint64(0)
		for p := range d.ram.All() {
			if d.dense[k>>3]&(1<<(k&7)) != 0 {
				pfns = append(pfns, p)
			}
			k++
		}
	} else {
		for p := range d.ram.All() {
			pfns = append(pfns, p)
		}
	}
	end := uint64(h.WrittenBlocks) * uint64(bs)
	data := disk[first*uint64(bs) : end]
	if !h.Status.Compressed() {
		n := min(uint64(len(pfns)), uint64(len(data)/bs))
		for k := uint64(0); k < n; k++ {
			d.pages[pfns[k]] = data[k*uint64(bs) : (k+1)*uint64(bs)]
		}
		return d
	}
	off := 0
	for _, p := range pfns {
		require.LessOrEqual(t, off+16, len(data), "record header of PFN %d", p)
		pf := o.Uint64(data[off:])
		size := int(o.Uint32(data[off+8:]))
		fl := o.Uint32(data[off+12:])
		require.LessOrEqual(t, off+16+size, len(data), "record of PFN %d", p)
		rec := data[off+16 : off+16+size]
		d.payload[p] = rec
		if fl&1 != 0 {
			zr, err := zlib.NewReader(bytes.NewReader(rec))
			require.NoError(t, err)
			pg, err := io.ReadAll(zr)
			require.NoError(t, err)
			require.Len(t, pg, bs)
			rec = pg
		} else {
			require.Equal(t, bs, size, "raw record of PFN %d", p)
		}
		d.pages[p], d.flags[p], d.pflags[p] = rec, fl, pf
		off += 16 + size
		d.recEnd = append(d.recEnd, int64(off))
	}
	d.padding = data[off:]
	return d
}

// expectedPage is what the kernel dumps for pfn.
func expectedPage(t testing.TB, src MemorySource, pfn uint64, bs int, is64 bool) []byte {
	t.Helper()
	at := src.Attrs(pfn)
	p := make([]byte, bs)
	switch {
	case at.BadPage:
		f := at.Flags
		if !is64 {
			f &= 0xffffffff
		}
		copy(p, fmt.Sprintf("Bad page. PFN %d flags %x\n", pfn, f))
	case at.Unmapped:
		copy(p, fmt.Sprintf("Unmapped page. PFN %d\n", pfn))
	default:
		require.NoError(t, src.ReadPage(pfn, p))
	}
	return p
}

func TestWriteDumpContent(t *testing.T) {
	for _, a := range diskdump.Arches {
		for _, compress := range []bool{false, true} {
			for _, level := range []int{0, 1, 19, 31} {
				t.Run(fmt.Sprintf("%v/c%v/dl%d", a, compress, level), func(t *testing.T) {
					t.Parallel()
					bs := a.PageSize()
					src := smallMachine(a, 700*uint64(bs), 5)
					cfg := testConfig(a, compress, level, 2)
					dev := newLogDev(formattedImage(800, bs, a.ByteOrder()), bs)
					var savedOrder []uint64
					cfg.OnSaved = func(pfn uint64, off int64, n int) { savedOrder = append(savedOrder, pfn) }
					res, err := WriteDump(dev, 800, src, cfg)
					require.NoError(t, err)
					assert.Equal(t, OutcomeCompleted, res.Outcome)
					d := decodeTestDump(t, dev.Bytes(), a)
					var c diskdump.Status
					if compress {
						c = diskdump.StatusCompressed
					}
					assert.Equal(t, diskdump.StatusCompleted|c, d.hdr.Status)
					assert.Equal(t, res.WrittenBlocks, uint64(d.hdr.WrittenBlocks))
					assert.Equal(t, "DISKDUMP", d.hdr.Signature)
					assert.Equal(t, int32(0), d.hdr.Version)
					assert.Equal(t, uint32(700), d.hdr.MaxMapnr)
					assert.Equal(t, uint32(800), d.hdr.DeviceBlocks)
					assert.Equal(t, int32(4), d.hdr.NrCPUs)
					assert.Equal(t, uint32(1), d.hdr.CurrentCPU)
					assert.Equal(t, a.Machine(), d.hdr.Utsname.Machine)
					assert.Equal(t, int64(1246291200), d.hdr.Sec)
					assert.Equal(t, int64(123456789), d.hdr.Frac)
					// Every RAM page is in bitmap 1.
					for p := uint64(0); p < 700; p++ {
						assert.Equal(t, src.IsRAM(p), d.ram.Test(p), "RAM bit of PFN %d", p)
					}
					assert.Equal(t, uint64(d.hdr.TotalRAMBlocks), d.ram.Count())
					// The dumped pages are exactly the dumpable ones, with the right bytes.
					require.Equal(t, res.Saved.Count(), uint64(len(d.pages)))
					assert.Equal(t, res.PagesSaved, uint64(len(d.pages)))
					assert.Equal(t, d.ram.Count(), res.PagesSaved+res.PagesSkipped)
					assert.Equal(t, res.Saved.Bytes(), res.Recoverable.Bytes())
					assert.Len(t, savedOrder, len(d.pages))
					for i := 1; i < len(savedOrder); i++ {
						require.Less(t, savedOrder[i-1], savedOrder[i])
					}
					w := &dumpWriter{cfg: cfg, src: src}
					buf := make([]byte, bs)
					for p := range d.ram.All() {
						ok, _, err := w.dumpable(p, src.Attrs(p), buf)
						require.NoError(t, err)
						got, in := d.pages[p]
						require.Equal(t, ok, in, "PFN %d dumped", p)
						require.Equal(t, ok, res.Saved.Test(p))
						if ok {
							require.Equal(t, expectedPage(t, src, p, bs, a.Is64()), got, "PFN %d", p)
						}
						if ok && compress {
							at := src.Attrs(p)
							assert.Equal(t, at.Flags, d.pflags[p])
							assert.Equal(t, at.Anon, d.flags[p]&2 != 0, "MAPPING_ANON of PFN %d", p)
						}
					}
					if compress {
						// 'm' padding up to the block boundary, nothing else.
						assert.Less(t, len(d.padding), bs)
						assert.Equal(t, strings.Repeat("m", len(d.padding)), string(d.padding))
						assert.Equal(t, uint64(d.hdr.WrittenBlocks), res.Geometry.FirstDataBlock()+res.DataBlocks)
					}
					// Sub-header: registers at the start, rest zero.
					sub := dev.Bytes()[2*bs : 3*bs]
					assert.True(t, zero.Is(sub), "no registers configured: zero sub-header")
				})
			}
		}
	}
}

// TestWriteDumpSequence checks the kernel's write order and the header
// states of doc/FORMAT.md §4.4 / §4.5 on a machine large enough for several dense
// bitmap flushes.
func TestWriteDumpSequence(t *testing.T) {
	cases := []struct {
		name     string
		compress bool
		level    int
		bo       uint
		pfns     uint64
		dev      uint64
	}{
		{"strict-raw-bo2", false, 0, 2, 3000, 3100},
		{"raw-dl3-bo0", false, 3, 0, 75000, 9000},
		{"raw-dl19-bo3", false, 19, 3, 5000, 1000},
		{"cmp-dl0-bo2", true, 0, 2, 5000, 1000},
		{"cmp-dl19-bo0", true, 19, 0, 75000, 9000},
		{"cmp-dl31-bo3", true, 31, 3, 5000, 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const bs = 4096
			// 75000 PFNs: 3 blocks per bitmap, 2 dense flushes in the pass
			// and one at the end. Mostly zero pages keep the data area small.
			src := NewSyntheticMachine(SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: tc.pfns * bs, Seed: 9,
				Mix: PageMix{Zero: 95, Sparse: 4, Text: 1}})
			cfg := testConfig(diskdump.ArchX86_64, tc.compress, tc.level, tc.bo)
			devBlocks := tc.dev
			dev := newLogDev(formattedImage(devBlocks, bs, binary.LittleEndian), bs)
			res, err := WriteDump(dev, devBlocks, src, cfg)
			require.NoError(t, err)
			require.Equal(t, OutcomeCompleted, res.Outcome)
			g := res.Geometry
			strict := tc.level == 0 && !tc.compress
			assert.Equal(t, !strict, g.TwoBitmaps())
			var c diskdump.Status
			if tc.compress {
				c = diskdump.StatusCompressed
			}
			ws := dev.writes
			hdrAt := func(i int) *diskdump.Header {
				require.Equal(t, uint64(1), ws[i].blk, "write %d is a header write", i)
				require.Len(t, ws[i].data, bs)
				h, err := diskdump.ParseHeader(ws[i].data, diskdump.HeaderCheck{})
				require.NoError(t, err)
				assert.True(t, zero.Is(ws[i].data[h.Size():]), "header block zero after the struct")
				return h
			}
			// 1: INCOMPLETED header, written_blocks 2.
			h := hdrAt(0)
			assert.Equal(t, diskdump.StatusIncompleted|c, h.Status)
			assert.Equal(t, uint32(2), h.WrittenBlocks)
			assert.Equal(t, uint32(g.BitmapBlocks), h.BitmapBlocks)
			assert.Equal(t, uint32(devBlocks), h.DeviceBlocks)
			// 2: sub-header, bitmap 1 block by block, bitmap 2 zeroed block by block.
			i := 1
			assert.Equal(t, uint64(2), ws[i].blk)
			i++
			for nr := uint64(0); nr < g.RAMBitmapBlocks; nr++ {
				assert.Equal(t, g.RAMBitmapBlock()+nr, ws[i].blk)
				assert.Equal(t, uint64(1), ws[i].blocks(bs))
				i++
			}
			if !strict {
				for nr := uint64(0); nr < g.RAMBitmapBlocks; nr++ {
					assert.Equal(t, g.DumpBitmapBlock()+nr, ws[i].blk)
					assert.True(t, zero.Is(ws[i].data))
					i++
				}
			}
			h = hdrAt(i)
			i++
			assert.Equal(t, diskdump.StatusIncompleted|c, h.Status)
			assert.Equal(t, uint32(g.FirstDataBlock()), h.WrittenBlocks)
			// 3: the memory pass.
			unit := uint64(1) << tc.bo
			if tc.compress {
				unit = (uint64(1) << max(tc.bo, 2)) - 2
			}
			next := g.FirstDataBlock()
			var dataWrites, flushes, inProgress int
			var dataSizes []uint64
			pendingFlush := false
			afterData := false
			for ; i < len(ws)-1; i++ {
				w := ws[i]
				switch {
				case w.blk >= g.FirstDataBlock():
					require.Equal(t, next, w.blk, "data write %d is contiguous", dataWrites)
					require.False(t, afterData, "a header rewrite follows the data write after a flush")
					next += w.blocks(bs)
					dataWrites++
					afterData = pendingFlush
					pendingFlush = false
					dataSizes = append(dataSizes, w.blocks(bs))
				case w.blk == 1:
					require.True(t, afterData, "IN_PROGRESS header only right after the data write that follows a bitmap flush")
					afterData = false
					h := hdrAt(i)
					assert.Equal(t, diskdump.StatusInProgress|c, h.Status)
					assert.Equal(t, uint32(next), h.WrittenBlocks)
					inProgress++
				default:
					require.False(t, strict, "strict mode writes no bitmap during the pass")
					assert.Equal(t, g.DumpBitmapBlock()+uint64(flushes), w.blk, "dense bitmap flush %d", flushes)
					flushes++
					pendingFlush = true
					afterData = false
				}
			}
			for k, n := range dataSizes[:len(dataSizes)-1] {
				require.Equal(t, unit, n, "data write %d is a full chunk or flush unit", k)
			}
			assert.LessOrEqual(t, dataSizes[len(dataSizes)-1], unit)
			h = hdrAt(len(ws) - 1)
			assert.Equal(t, diskdump.StatusCompleted|c, h.Status)
			assert.Equal(t, uint32(next), h.WrittenBlocks)
			assert.Equal(t, res.WrittenBlocks, uint64(h.WrittenBlocks))
			if !strict {
				assert.Equal(t, int((g.RAMBlocks+8*bs-1)/(8*bs)), flushes, "one flush per dense bitmap block")
				if g.RAMBlocks > 2*8*bs {
					assert.GreaterOrEqual(t, inProgress, 2)
				}
			} else {
				assert.Equal(t, 0, inProgress)
			}
			assert.Equal(t, int64(len(ws)), res.Writes)
		})
	}
}

// TestWriteDumpPowerCut: a cut after N blocks leaves exactly the first N
// blocks of the full run on the formattedImage partition.
func TestWriteDumpPowerCut(t *testing.T) {
	for _, tc := range []struct {
		name      string
		compress  bool
		level     int
		pfns      uint64
		devBlocks uint64
	}{{"strict", false, 0, 3000, 3100}, {"raw-dl2", false, 2, 36000, 3000}, {"cmp-dl0", true, 0, 5000, 1000}, {"cmp-dl19", true, 19, 36000, 3000}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const bs = 4096
			src := NewSyntheticMachine(SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: tc.pfns * bs, Seed: 3,
				Mix: PageMix{Zero: 95, Sparse: 4, Text: 1}})
			cfg := testConfig(diskdump.ArchX86_64, tc.compress, tc.level, 2)
			devBlocks := tc.devBlocks
			clean := formattedImage(devBlocks, bs, binary.LittleEndian)
			full := newLogDev(bytes.Clone(clean), bs)
			fullRes, err := WriteDump(full, devBlocks, src, cfg)
			require.NoError(t, err)
			require.Equal(t, OutcomeCompleted, fullRes.Outcome)
			total := fullRes.BlocksWritten
			g := fullRes.Geometry
			// Cut points: inside the header phase, first data blocks, in the
			// middle of a chunk, right after each dense bitmap flush, and just
			// before the final header.
			cuts := []int64{1, 2, int64(g.FirstDataBlock()) - 1, int64(g.FirstDataBlock()), int64(g.FirstDataBlock()) + 1,
				total / 2, total - 1}
			var n int64
			for _, w := range full.writes {
				n += int64(w.blocks(bs))
				if w.blk >= g.DumpBitmapBlock() && w.blk < g.FirstDataBlock() && n > int64(g.FirstDataBlock()) {
					cuts = append(cuts, n, n+1)
				}
			}
			for _, cut := range cuts {
				if cut <= 0 || cut >= total {
					continue
				}
				// The expected image: replay the first cut blocks.
				want := bytes.Clone(clean)
				var lastHdr []byte
				left := cut
				for _, w := range full.writes {
					k := min(int64(w.blocks(bs)), left)
					copy(want[w.blk*bs:], w.data[:k*bs])
					if w.blk == 1 && k == 1 {
						lastHdr = w.data
					}
					left -= k
					if left == 0 {
						break
					}
				}
				cfg.StopAfterBlocks = cut
				dev := newLogDev(bytes.Clone(clean), bs)
				res, err := WriteDump(dev, devBlocks, src, cfg)
				require.NoError(t, err)
				require.Equal(t, OutcomePowerCut, res.Outcome, "cut %d", cut)
				require.Equal(t, cut, res.BlocksWritten)
				require.True(t, bytes.Equal(want, dev.Bytes()), "cut %d: partition differs from the replayed prefix", cut)
				got, err := res.Header.EncodeBlock(bs)
				require.NoError(t, err)
				require.Equal(t, lastHdr, got, "cut %d: last header", cut)
				// Saved pages are a prefix of the full run's, and their data is on disk.
				for p := range res.Saved.All() {
					require.True(t, fullRes.Saved.Test(p))
				}
				assert.LessOrEqual(t, res.Recoverable.Count(), res.Saved.Count())
				assert.Contains(t, res.Console[len(res.Console)-1], "power cut")
			}
		})
	}
}

func swapHeader(bs int, order binary.ByteOrder, lastPage uint32) []byte {
	b := make([]byte, bs)
	copy(b[bs-10:], "SWAPSPACE2")
	order.PutUint32(b[1024:], 1)
	order.PutUint32(b[1028:], lastPage)
	return b
}

func TestWriteDumpRefusals(t *testing.T) {
	const bs = 4096
	le := binary.LittleEndian
	src := smallMachine(diskdump.ArchX86_64, 1200*bs, 1) // R = 1, total = 3 + 1 + RAM
	total := 4 + src.RAMPages()
	cases := []struct {
		name     string
		compress bool
		level    int
		sample   int
		dev      uint64
		prep     func(b []byte)
		wantErr  error
		wantBlk  int64
		outcome  Outcome
		console  string
	}{
		{name: "unformatted", dev: total + 10, prep: func(b []byte) { clear(b) }, wantErr: diskdump.ErrBadSignature, wantBlk: 0,
			outcome: OutcomeRefused, console: "disk_dump: bad signature in block 0"},
		{name: "bad-sampled-block", dev: total + 10, sample: 2, prep: func(b []byte) { b[16*bs+100] ^= 1 }, wantErr: diskdump.ErrBadSignature,
			wantBlk: 16, outcome: OutcomeRefused, console: "disk_dump: bad signature in block 16"},
		{name: "bad-tail-block", dev: total + 10, prep: func(b []byte) { b[(total-1)*bs+8] ^= 1 }, wantErr: diskdump.ErrBadSignature,
			wantBlk: int64(total - 1), outcome: OutcomeRefused},
		{name: "unsampled-block-ignored", dev: total + 10, prep: func(b []byte) { b[21*bs+100] ^= 1 }, outcome: OutcomeCompleted},
		{name: "block2-ignored", dev: total + 10, sample: 0, prep: func(b []byte) { clear(b[2*bs : 3*bs]) }, outcome: OutcomeCompleted},
		{name: "dump-bytes-4-7-unchecked", dev: total + 10, sample: 0, prep: func(b []byte) { copy(b[5*bs+4:], "XXXX") }, outcome: OutcomeCompleted},
		{name: "no-check", dev: total + 10, sample: -1, prep: func(b []byte) { clear(b) }, outcome: OutcomeCompleted},
		{name: "too-small-headers", dev: 3, wantErr: diskdump.ErrTooSmall, wantBlk: -2, outcome: OutcomeRefused, console: "disk_dump: dump partition is too small. Aborted"},
		{name: "too-small-two-bitmaps", compress: true, dev: 4, wantErr: diskdump.ErrTooSmall, wantBlk: -2, outcome: OutcomeRefused},
		{name: "strict-too-small-read-past-end", dev: total - 1, wantErr: diskdump.ErrTooSmall, wantBlk: int64(total - 4), outcome: OutcomeRefused,
			console: "disk_dump: check partition failed."},
		{name: "strict-too-small-unchecked", dev: total - 10, sample: -1, outcome: OutcomeIncomplete},
		{name: "nonstrict-too-small-is-clamped", compress: true, dev: 60, outcome: OutcomeShortArea},
		{name: "swap", dev: total + 10, prep: func(b []byte) { clear(b); copy(b, swapHeader(bs, le, uint32(total+9))) }, outcome: OutcomeCompleted},
		{name: "swap-wrong-size", dev: total + 10, prep: func(b []byte) { clear(b); copy(b, swapHeader(bs, le, uint32(total+10))) },
			wantErr: diskdump.ErrBadSignature, wantBlk: 0, outcome: OutcomeRefused},
		{name: "swap-strict-too-small", dev: total - 1, sample: 8, prep: func(b []byte) { copy(b, swapHeader(bs, le, uint32(total-2))) },
			wantErr: diskdump.ErrBadSignature, wantBlk: 0, outcome: OutcomeRefused},
		{name: "swap-nonstrict-small", level: 1, dev: 600, prep: func(b []byte) { clear(b); copy(b, swapHeader(bs, le, 599)) }, outcome: OutcomeShortArea},
		{name: "no-room-for-a-page-raw", level: 1, dev: 5, sample: -1, wantErr: diskdump.ErrTooSmall, wantBlk: -2, outcome: OutcomeFailed,
			console: "disk_dump: writing memory failed. error -1"},
		{name: "no-room-for-a-page-compressed", compress: true, dev: 7, sample: -1, wantErr: diskdump.ErrTooSmall, wantBlk: -2, outcome: OutcomeFailed},
		{name: "room-for-a-page-compressed", compress: true, dev: 8, sample: -1, outcome: OutcomeShortArea},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			size := max(tc.dev, total+10)
			img := formattedImage(size, bs, le)
			if tc.prep != nil {
				tc.prep(img)
			}
			before := bytes.Clone(img)
			cfg := testConfig(diskdump.ArchX86_64, tc.compress, tc.level, 2)
			cfg.SampleRate = tc.sample
			if tc.name == "bad-tail-block" || tc.name == "unsampled-block-ignored" {
				cfg.SampleRate = 2 // chunks at 0, 16, 32, ...
			}
			dev := newLogDev(img, bs)
			res, err := WriteDump(dev, tc.dev, src, cfg)
			require.NotNil(t, res)
			assert.Equal(t, tc.outcome, res.Outcome, "console: %q", res.Console)
			if tc.console != "" {
				assert.Contains(t, res.Console, tc.console)
			}
			if tc.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "diskdump: "), err.Error())
			var fe *diskdump.FormatError
			if tc.wantBlk >= -1 {
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, tc.wantBlk, fe.Blk)
				assert.Equal(t, fe.Blk*bs, fe.Off)
			}
			if tc.outcome == OutcomeRefused {
				assert.Empty(t, dev.writes, "a refused partition is not written")
				assert.True(t, bytes.Equal(before, dev.Bytes()))
				assert.Nil(t, res.Header)
			} else {
				h := res.Header
				require.NotNil(t, h)
				assert.Equal(t, diskdump.StatusIncompleted|res.Status&diskdump.StatusCompressed, h.Status)
				assert.Equal(t, uint32(res.Geometry.FirstDataBlock()), h.WrittenBlocks)
			}
		})
	}
}

// TestWriteDumpStrictShort: strict mode on a device smaller than
// total_blocks (check disabled) saves device-first pages and ends
// INCOMPLETED (doc/FORMAT.md §4.4, §6.5).
func TestWriteDumpStrictShort(t *testing.T) {
	const bs = 4096
	src := smallMachine(diskdump.ArchX86_64, 1500*bs, 2)
	cfg := testConfig(diskdump.ArchX86_64, false, 0, 2)
	cfg.SampleRate = -1
	dev := uint64(1003)
	img := newLogDev(formattedImage(dev, bs, binary.LittleEndian), bs)
	res, err := WriteDump(img, dev, src, cfg)
	require.NoError(t, err)
	assert.Equal(t, OutcomeIncomplete, res.Outcome)
	assert.Equal(t, diskdump.StatusIncompleted, res.Status)
	assert.Equal(t, dev, res.WrittenBlocks)
	assert.Equal(t, dev-4, res.PagesSaved)
	assert.Contains(t, res.Console, fmt.Sprintf("disk_dump: dump partition is too small. actual blocks %d. expected blocks %d. whole memory will not be saved", dev, res.TotalBlocks))
	assert.Equal(t, src.RAMPages()-(dev-4), res.PagesDisregarded)
	d := decodeTestDump(t, img.Bytes(), diskdump.ArchX86_64)
	assert.Len(t, d.pages, int(dev-4))
	for p, pg := range d.pages {
		require.Equal(t, expectedPage(t, src, p, bs, true), pg)
	}
}

// TestWriteDumpShortArea checks the overflow rule of doc/FORMAT.md §6.5 exactly:
// the pass stops at the first RAM page for which the check fires.
func TestWriteDumpShortArea(t *testing.T) {
	const bs = 4096
	src := NewSyntheticMachine(SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: 6000 * bs, Seed: 4})
	for _, tc := range []struct {
		name     string
		compress bool
		level    int
		bo       uint
		dev      uint64
	}{
		{"raw-dl1", false, 1, 2, 1500},
		{"raw-dl31-bo0", false, 31, 0, 801},
		{"cmp-dl0", true, 0, 2, 700},
		{"cmp-dl19-bo3", true, 19, 3, 500},
		{"cmp-dl0-bo0", true, 0, 0, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(diskdump.ArchX86_64, tc.compress, tc.level, tc.bo)
			img := newLogDev(formattedImage(tc.dev, bs, binary.LittleEndian), bs)
			res, err := WriteDump(img, tc.dev, src, cfg)
			require.NoError(t, err)
			var c diskdump.Status
			if tc.compress {
				c = diskdump.StatusCompressed
			}
			require.Equal(t, OutcomeShortArea, res.Outcome)
			assert.Equal(t, diskdump.StatusShortArea|c, res.Status)
			assert.LessOrEqual(t, res.WrittenBlocks, tc.dev)
			assert.Positive(t, res.PagesDisregarded)
			assert.Contains(t, res.Console, fmt.Sprintf("disk_dump: dump device is too small. %d pages will be disregarded", res.PagesDisregarded))
			d := decodeTestDump(t, img.Bytes(), diskdump.ArchX86_64)
			assert.Equal(t, res.Saved.Count(), uint64(len(d.pages)))
			for p, pg := range d.pages {
				require.True(t, res.Saved.Test(p))
				require.Equal(t, expectedPage(t, src, p, bs, true), pg)
			}
			// Dense bits: the decided pages are a prefix of RAM.
			decided := res.PagesSaved + res.PagesSkipped
			assert.Equal(t, src.RAMPages(), decided+res.PagesDisregarded)
			first := res.Geometry.FirstDataBlock()
			remaining := tc.dev - first
			if !tc.compress {
				assert.Equal(t, remaining, res.PagesSaved, "raw: the partition is full")
				return
			}
			// Compressed: with S_i bytes after i records, the check before the
			// next page is F + floor(fill/B) + 2 >= remaining.
			unit := uint64((1<<max(tc.bo, 2))-2) * bs
			over := func(s uint64) bool {
				flushed := s / unit * (unit / bs)
				fill := s % unit
				return flushed+fill/bs+2 >= remaining
			}
			assert.False(t, over(0))
			for i, e := range d.recEnd {
				if i < len(d.recEnd)-1 {
					assert.False(t, over(uint64(e)), "no overflow after record %d", i)
				}
			}
			assert.True(t, over(uint64(d.recEnd[len(d.recEnd)-1])), "overflow after the last record")
		})
	}
}

// TestWriteDumpCompressedStream: record layout, raw fallback, flush unit,
// carry-over and padding.
func TestWriteDumpCompressedStream(t *testing.T) {
	const bs = 4096
	for _, bo := range []uint{0, 2, 3, 5} {
		t.Run(fmt.Sprintf("bo%d", bo), func(t *testing.T) {
			t.Parallel()
			src := NewSyntheticMachine(SyntheticConfig{Arch: diskdump.ArchPPC64, MemBytes: 1200 * bs, Seed: 11})
			cfg := testConfig(diskdump.ArchPPC64, true, 0, bo)
			img := newLogDev(formattedImage(3000, bs, binary.BigEndian), bs)
			res, err := WriteDump(img, 3000, src, cfg)
			require.NoError(t, err)
			d := decodeTestDump(t, img.Bytes(), diskdump.ArchPPC64)
			nr := uint64(1<<max(bo, 2)) - 2
			var data []logWrite
			for _, w := range img.writes {
				if w.blk >= res.Geometry.FirstDataBlock() {
					data = append(data, w)
				}
			}
			for i, w := range data[:len(data)-1] {
				require.Equal(t, nr, w.blocks(bs), "flush %d writes NR_BUFFER_PAGES blocks", i)
			}
			last := data[len(data)-1]
			stream := uint64(d.recEnd[len(d.recEnd)-1])
			assert.Equal(t, (stream-uint64(len(data)-1)*nr*bs+bs-1)/bs, last.blocks(bs), "final flush: the carried-over rest, padded")
			assert.Equal(t, res.PagesCompressed, countFlag(d.flags, 1))
			var raw, random int
			for p, f := range d.flags {
				pg := make([]byte, bs)
				require.NoError(t, src.ReadPage(p, pg))
				if src.kind(p) == kindRandom && !src.Attrs(p).BadPage && !src.Attrs(p).Unmapped {
					random++
					assert.Zero(t, f&1, "random page %d is stored raw", p)
				}
				if f&1 == 0 {
					raw++
				}
			}
			assert.Positive(t, random)
			assert.GreaterOrEqual(t, raw, random)
			// A zlib record starts with 78 01 (level 1).
			first := res.Geometry.FirstDataBlock() * bs
			disk := img.Bytes()
			if binary.BigEndian.Uint32(disk[first+12:])&1 != 0 {
				assert.Equal(t, []byte{0x78, 0x01}, disk[first+16:first+18])
			}
		})
	}
}

func countFlag(m map[uint64]uint32, bit uint32) uint64 {
	var n uint64
	for _, f := range m {
		if f&bit != 0 {
			n++
		}
	}
	return n
}

// fixedSource is a one-page-per-PFN memory source with given attributes
// and contents, for the dump_level table.
type fixedSource struct {
	attrs []PageAttrs
	zero  []bool
}

func (s *fixedSource) MaxPFN() uint64           { return uint64(len(s.attrs)) }
func (s *fixedSource) IsRAM(uint64) bool        { return true }
func (s *fixedSource) Attrs(p uint64) PageAttrs { return s.attrs[p] }
func (s *fixedSource) ReadPage(p uint64, dst []byte) error {
	clear(dst)
	if !s.zero[p] {
		dst[7] = 1
	}
	return nil
}

func TestDumpLevelDecisions(t *testing.T) {
	type A = PageAttrs
	cache := A{LRU: true}
	swapc := A{SwapCache: true}
	priv := A{LRU: true, Private: true}
	anon := A{Anon: true, LRU: true}
	free := A{Free: true}
	kern := A{}
	cases := []struct {
		name  string
		at    A
		zero  bool
		level int
		want  bool
	}{
		{"level0-bad", A{BadPage: true}, false, 0, true},
		{"level0-unmapped", A{Unmapped: true}, false, 0, true},
		{"bad-excluded", A{BadPage: true}, false, 16, false},
		{"unmapped-excluded", A{Unmapped: true, Private: true}, false, 17, false},
		{"cache-excluded", cache, false, 1, false},
		{"swapcache-excluded", swapc, false, 1, false},
		{"cache-kept-without-bit1", cache, false, 30, true},
		{"anon-cache-not-excluded-by-1", A{Anon: true, SwapCache: true}, false, 1, true},
		{"private-cache-excluded-without-16", priv, false, 1, false},
		{"private-cache-saved-with-17", priv, false, 17, true},
		{"private-zero-saved-before-zero-check", A{Private: true, LRU: true}, true, 19, true},
		{"private-free-saved-by-17", A{Private: true, Free: true}, false, 21, true},
		{"16-alone-does-nothing", cache, false, 16, true},
		{"zero-excluded", kern, true, 2, false},
		{"zero-kept-without-2", kern, true, 1, true},
		{"nonzero-kept", kern, false, 2, true},
		{"free-excluded", free, false, 4, false},
		{"free-kept-without-4", free, false, 3, true},
		{"anon-excluded", anon, false, 8, false},
		{"anon-kept-by-1", anon, false, 1, true},
		{"kernel-kept-31", kern, false, 31, true},
		{"cache-zero-31", cache, true, 31, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := &fixedSource{attrs: []PageAttrs{tc.at}, zero: []bool{tc.zero}}
			w := &dumpWriter{cfg: Config{DumpLevel: tc.level}, src: src}
			got, _, err := w.dumpable(0, tc.at, make([]byte, 4096))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	t.Run("free-list-corrupt", func(t *testing.T) {
		src := &fixedSource{attrs: []PageAttrs{free}, zero: []bool{false}}
		w := &dumpWriter{cfg: Config{DumpLevel: 4, FreeListCorrupt: true}, src: src}
		got, _, err := w.dumpable(0, free, make([]byte, 4096))
		require.NoError(t, err)
		assert.True(t, got)
	})
}

// TestWriteDumpNosaveFree: with dump_level bit 4 the kernel tags free
// pages PG_nosave_free before the pass; a free page kept by the private
// rule carries the bit in its record.
func TestWriteDumpNosaveFree(t *testing.T) {
	const bs = 4096
	for _, level := range []int{17, 21} {
		src := &fixedSource{attrs: []PageAttrs{{}, {Free: true, Private: true, LRU: true, Flags: 1 << pgPrivate}, {Free: true}},
			zero: []bool{false, false, false}}
		cfg := testConfig(diskdump.ArchX86_64, true, level, 2)
		img := newLogDev(formattedImage(20, bs, binary.LittleEndian), bs)
		_, err := WriteDump(img, 20, src, cfg)
		require.NoError(t, err)
		d := decodeTestDump(t, img.Bytes(), diskdump.ArchX86_64)
		require.Contains(t, d.pflags, uint64(1))
		assert.Equal(t, level&4 != 0, d.pflags[1]&(1<<pgNosaveFree) != 0, "level %d", level)
		assert.Equal(t, level&4 == 0, d.pages[2] != nil, "free page 2 at level %d", level)
	}
}

// TestWriteDumpTextPages: bad and unmapped pages become text pages in a
// full dump and are excluded in a partial one.
func TestWriteDumpTextPages(t *testing.T) {
	const bs = 4096
	for _, a := range []diskdump.Arch{diskdump.ArchI386, diskdump.ArchX86_64} {
		src := NewSyntheticMachine(SyntheticConfig{Arch: a, MemBytes: 1024 * bs, Seed: 8, NoRandomBad: true, Mix: PageMix{Zero: 9, Sparse: 1},
			BadPFNs: []uint64{10, 500}, UnmappedPFNs: []uint64{11, 600}})
		for _, level := range []int{0, 1} {
			cfg := testConfig(a, level == 0, level, 2)
			img := newLogDev(formattedImage(1100, bs, binary.LittleEndian), bs)
			res, err := WriteDump(img, 1100, src, cfg)
			require.NoError(t, err)
			d := decodeTestDump(t, img.Bytes(), a)
			for _, p := range []uint64{10, 500, 11, 600} {
				if level != 0 {
					assert.NotContains(t, d.pages, p)
					continue
				}
				pg := d.pages[p]
				require.NotNil(t, pg)
				f := src.Attrs(p).Flags
				want := fmt.Sprintf("Unmapped page. PFN %d\n", p)
				if p == 10 || p == 500 {
					if !a.Is64() {
						f &= 0xffffffff
					}
					want = fmt.Sprintf("Bad page. PFN %d flags %x\n", p, f)
					assert.Contains(t, res.Console, "disk_dump: "+strings.TrimSuffix(want, "\n"))
				}
				assert.Equal(t, want, string(pg[:len(want)]))
				assert.True(t, zero.Is(pg[len(want):]))
			}
		}
	}
}

func TestWriteDumpSubHeader(t *testing.T) {
	regs := make([]uint64, 27)
	for i := range regs {
		regs[i] = 0x1000 + uint64(i)
	}
	for _, tc := range []struct {
		a        diskdump.Arch
		bugs     bool
		wantRegs bool
	}{{diskdump.ArchX86_64, false, true}, {diskdump.ArchX86_64, true, true}, {diskdump.ArchPPC64, false, true}, {diskdump.ArchPPC64, true, false},
		{diskdump.ArchI386, false, true}, {diskdump.ArchIA64, false, true}, {diskdump.ArchIA64, true, false}} {
		t.Run(fmt.Sprintf("%v-bugs%v", tc.a, tc.bugs), func(t *testing.T) {
			bs := tc.a.PageSize()
			src := NewSyntheticMachine(SyntheticConfig{Arch: tc.a, MemBytes: 64 * uint64(bs), Seed: 1, Mix: PageMix{Zero: 1}})
			cfg := testConfig(tc.a, true, 0, 2)
			n := tc.a.GRegsSize() / 8
			if !tc.a.Is64() {
				n = tc.a.GRegsSize() / 4
			}
			cfg.Regs = regs[:min(n, len(regs))]
			cfg.SwitchStacks = []uint64{0xa000, 0xb000}
			cfg.KernelBugs = tc.bugs
			img := newLogDev(formattedImage(100, bs, tc.a.ByteOrder()), bs)
			_, err := WriteDump(img, 100, src, cfg)
			require.NoError(t, err)
			sh, err := diskdump.DecodeSubHeader(tc.a, img.Bytes()[2*bs:3*bs])
			require.NoError(t, err)
			if tc.wantRegs {
				require.Len(t, sh.Regs, n)
				assert.Equal(t, cfg.Regs, sh.Regs[:len(cfg.Regs)])
			} else {
				assert.Nil(t, sh.Regs)
			}
			if tc.a == diskdump.ArchIA64 {
				assert.Equal(t, []uint64{0xa000, 0xb000}, sh.SwitchStacks[:2])
			}
		})
	}
}

func TestWriteDumpConfigErrors(t *testing.T) {
	src := NewSyntheticMachine(SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: 100 * 4096})
	img := memfile.New(formattedImage(200, 4096, binary.LittleEndian))
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"arch", func(c *Config) { c.Arch = diskdump.ArchUnknown }},
		{"block-size", func(c *Config) { c.BlockSize = 3000 }},
		{"page-size-mismatch", func(c *Config) { c.BlockSize = 8192 }},
		{"block-order", func(c *Config) { c.BlockOrder = 11 }},
		{"sample-rate", func(c *Config) { c.SampleRate = 30 }},
		{"cpus", func(c *Config) { c.NrCPUs = 1000 }},
		{"regs", func(c *Config) { c.Regs = make([]uint64, 28) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig(diskdump.ArchX86_64)
			tc.mod(&cfg)
			res, err := WriteDump(img, 200, src, cfg)
			require.Error(t, err)
			assert.Nil(t, res)
			assert.True(t, strings.HasPrefix(err.Error(), "diskdump: "))
		})
	}
}

// failingDev fails every write from a given block on.
type failingDev struct {
	*logDev
	from uint64
}

func (f *failingDev) WriteAt(p []byte, off int64) (int, error) {
	if uint64(off)/uint64(f.bs)+uint64(len(p)/f.bs) > f.from {
		return 0, &os.PathError{Op: "write", Path: "dev", Err: errors.New("EIO")}
	}
	return f.logDev.WriteAt(p, off)
}

func TestWriteDumpWriteError(t *testing.T) {
	const bs = 4096
	src := smallMachine(diskdump.ArchX86_64, 2048*bs, 1)
	cfg := testConfig(diskdump.ArchX86_64, true, 1, 2)
	dev := &failingDev{logDev: newLogDev(formattedImage(2100, bs, binary.LittleEndian), bs), from: 100}
	res, err := WriteDump(dev, 2100, src, cfg)
	require.Error(t, err)
	var pe *os.PathError
	assert.ErrorAs(t, err, &pe)
	assert.Equal(t, OutcomeFailed, res.Outcome)
	assert.Equal(t, diskdump.StatusIncompleted|diskdump.StatusCompressed, res.Header.Status)
}

func TestSyntheticMachine(t *testing.T) {
	cfg := SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: 256 << 20, Seed: 42}
	m1, m2 := NewSyntheticMachine(cfg), NewSyntheticMachine(cfg)
	assert.Equal(t, uint64(65536), m1.MaxPFN())
	assert.False(t, m1.IsRAM(160))
	assert.False(t, m1.IsRAM(255))
	assert.True(t, m1.IsRAM(159))
	assert.True(t, m1.IsRAM(256))
	assert.True(t, m1.IsRAM(65535))
	assert.False(t, m1.IsRAM(65536))
	// Second hole: [top - top/32 - top/16, top - top/32).
	assert.False(t, m1.IsRAM(65536-2048-1))
	assert.True(t, m1.IsRAM(65536-2048))
	var ram uint64
	for p := uint64(0); p < m1.MaxPFN(); p++ {
		if m1.IsRAM(p) {
			ram++
		}
	}
	assert.Equal(t, ram, m1.RAMPages())
	a, b := make([]byte, 4096), make([]byte, 4096)
	seen := map[string]uint64{}
	counts := map[string]int{}
	for p := uint64(0); p < m1.MaxPFN(); p += 29 {
		if !m1.IsRAM(p) {
			require.Error(t, m1.ReadPage(p, a))
			continue
		}
		require.NoError(t, m1.ReadPage(p, a))
		require.NoError(t, m2.ReadPage(p, b))
		require.Equal(t, a, b, "deterministic")
		require.Equal(t, m1.Attrs(p), m2.Attrs(p))
		if !zero.Is(a) {
			prev, dup := seen[string(a)]
			require.False(t, dup, "PFN %d duplicates PFN %d", p, prev)
			seen[string(a)] = p
		}
		at := m1.Attrs(p)
		for name, on := range map[string]bool{"free": at.Free, "lru": at.LRU, "anon": at.Anon, "private": at.Private,
			"swapcache": at.SwapCache, "zero": zero.Is(a), "bad": at.BadPage, "unmapped": at.Unmapped} {
			if on {
				counts[name]++
			}
		}
		assert.Equal(t, at.LRU, at.Flags&(1<<pgLRU) != 0)
		assert.Equal(t, at.Private, at.Flags&(1<<pgPrivate) != 0)
	}
	n := float64(len(seen)) / 0.7
	for name, frac := range map[string]float64{"free": 0.2, "lru": 0.5, "anon": 0.2, "zero": 0.3} {
		assert.InDelta(t, frac, float64(counts[name])/n, 0.05, name)
	}
	assert.Positive(t, counts["private"])
	assert.Positive(t, counts["swapcache"])
	assert.Positive(t, counts["bad"])
	assert.Positive(t, counts["unmapped"])
	// Another seed gives other pages.
	m3 := NewSyntheticMachine(SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: 256 << 20, Seed: 43})
	require.NoError(t, m3.ReadPage(1000, b))
	require.NoError(t, m1.ReadPage(1000, a))
	assert.NotEqual(t, a, b)
	// NoHoles and custom holes.
	m4 := NewSyntheticMachine(SyntheticConfig{MemBytes: 1 << 20, NoHoles: true})
	assert.Equal(t, uint64(256), m4.RAMPages())
	m5 := NewSyntheticMachine(SyntheticConfig{MemBytes: 1 << 20, Holes: []PhysRange{{0, 4096}, {8192, 8193}}})
	assert.Equal(t, uint64(254), m5.RAMPages())
	assert.False(t, m5.IsRAM(2))
	assert.True(t, m5.IsRAM(3))
}

// TestSyntheticMachineMemory: a 64 GiB machine costs nothing to build and
// pages anywhere are generated on demand.
func TestSyntheticMachineMemory(t *testing.T) {
	m := NewSyntheticMachine(SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: 64 << 30, Seed: 1})
	p := make([]byte, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		_ = m.ReadPage(m.MaxPFN()-1, p)
		_ = m.Attrs(m.MaxPFN() - 1)
	})
	assert.LessOrEqual(t, allocs, 1.0)
}

// BenchmarkWriteDump writes a 256 MiB synthetic machine to a sparse file
// formattedImage only where the kernel samples (normal format).
func BenchmarkWriteDump(b *testing.B) {
	const mem = 256 << 20
	for _, tc := range []struct {
		name     string
		compress bool
		level    int
	}{{"raw", false, 0}, {"compressed", true, 0}, {"compressed-dl19", true, 19}} {
		b.Run(tc.name, func(b *testing.B) {
			src := NewSyntheticMachine(SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: mem, Seed: 1})
			cfg := DefaultConfig(diskdump.ArchX86_64)
			cfg.Compress, cfg.DumpLevel = tc.compress, tc.level
			dev := uint64(mem/4096 + 1000)
			f, err := os.Create(filepath.Join(b.TempDir(), "part"))
			require.NoError(b, err)
			defer f.Close()
			blk := make([]byte, 4096<<2)
			// The grids of both partition sizes the kernel may sample.
			total := diskdump.NewGeometry(4096, src.MaxPFN(), src.RAMPages(), false).TotalBlocks()
			format := func() {
				for _, size := range []uint64{dev, total} {
					for c := range diskdump.SampledChunks(size, 2, 8) {
						for i := uint64(0); i < c.N; i++ {
							diskdump.FillSignature(blk[i*4096:(i+1)*4096], c.Blk+i, binary.LittleEndian)
						}
						_, err := f.WriteAt(blk[:c.N*4096], int64(c.Blk)*4096)
						require.NoError(b, err)
					}
				}
			}
			require.NoError(b, f.Truncate(int64(dev)*4096))
			b.SetBytes(mem)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				format()
				b.StartTimer()
				res, err := WriteDump(f, dev, src, cfg)
				require.NoError(b, err)
				require.Equal(b, OutcomeCompleted, res.Outcome)
			}
		})
	}
}

// sampleSource serves the pages of a full (one-bitmap) sample partition
// as a machine's memory: page k of the data area is the k-th RAM page.
type sampleSource struct {
	img   []byte
	ram   *diskdump.Bitmap
	first uint64
	bs    uint64
	max   uint64
}

func (s *sampleSource) MaxPFN() uint64         { return s.max }
func (s *sampleSource) IsRAM(p uint64) bool    { return s.ram.Test(p) }
func (s *sampleSource) Attrs(uint64) PageAttrs { return PageAttrs{} }
func (s *sampleSource) ReadPage(p uint64, dst []byte) error {
	blk := s.first + s.ram.CountBelow(p)
	copy(dst, s.img[blk*s.bs:(blk+1)*s.bs])
	return nil
}

// TestWriteDumpMatchesSample: given the memory, crash context and module
// parameters of the independent raw sample (fixtures/samples, written by
// an emulation of the RHEL4 module made from the kernel source), the
// writer produces the sample partition byte for byte, with the same
// number of write calls.
func TestWriteDumpMatchesSample(t *testing.T) {
	path := filepath.Join(fixtures.SampleDir(), "raw-x86_64-dl0-bo2.part.gz")
	f, err := os.Open(path)
	require.NoError(t, err, "the samples are committed under fixtures/samples")
	defer f.Close()
	img := testutil.Gunzip(t, path)
	const bs = 4096
	h, err := diskdump.ParseHeader(img[bs:2*bs], diskdump.HeaderCheck{})
	require.NoError(t, err)
	sub, err := diskdump.DecodeSubHeader(diskdump.ArchX86_64, img[2*bs:3*bs])
	require.NoError(t, err)
	r := diskdump.BitmapBlocksFor(uint64(h.MaxMapnr), bs)
	src := &sampleSource{img: img, ram: diskdump.NewBitmap(img[3*bs : (3+r)*bs]), first: 3 + r, bs: bs, max: uint64(h.MaxMapnr)}
	cfg := DefaultConfig(diskdump.ArchX86_64)
	cfg.Utsname, cfg.Time = h.Utsname, time.Unix(h.Sec, h.Frac)
	cfg.NrCPUs, cfg.CurrentCPU, cfg.Tasks, cfg.Regs = int(h.NrCPUs), int(h.CurrentCPU), h.Tasks, sub.Regs
	dev := uint64(h.DeviceBlocks)
	out := newLogDev(formattedImage(dev, bs, binary.LittleEndian), bs)
	res, err := WriteDump(out, dev, src, cfg)
	require.NoError(t, err)
	assert.Equal(t, OutcomeCompleted, res.Outcome)
	require.Equal(t, len(img), len(out.Bytes()))
	for blk := uint64(0); blk < dev; blk++ {
		require.True(t, bytes.Equal(img[blk*bs:(blk+1)*bs], out.Bytes()[blk*bs:(blk+1)*bs]), "block %d differs from the sample", blk)
	}
	assert.Equal(t, int64(980), res.Writes, "the sample's write count (stats.ios)")
}

// recordSource serves the pages of a compressed sample: content from
// its records, attributes that reproduce its dump_level decisions and
// page_flags; excluded RAM pages are clean page-cache pages.
type recordSource struct {
	d   *decodedDump
	max uint64
}

func (s *recordSource) MaxPFN() uint64      { return s.max }
func (s *recordSource) IsRAM(p uint64) bool { return s.d.ram.Test(p) }
func (s *recordSource) Attrs(p uint64) PageAttrs {
	if _, ok := s.d.pages[p]; !ok {
		return PageAttrs{LRU: true}
	}
	// Kept by the private rule: dump_level 1|16 keeps it whatever it is.
	return PageAttrs{Flags: s.d.pflags[p], Anon: s.d.flags[p]&2 != 0, Private: true, LRU: true}
}
func (s *recordSource) ReadPage(p uint64, dst []byte) error {
	clear(dst)
	copy(dst, s.d.pages[p])
	return nil
}

// TestWriteDumpMatchesCompressedSamples: replaying the samples' zlib output
// (Config.Deflate), record page_flags and dump_level decisions, the
// writer produces the compressed samples byte for byte: record stream,
// flush unit and carry-over, 'm' padding, dense bitmap, header.
func TestWriteDumpMatchesCompressedSamples(t *testing.T) {
	for _, tc := range []struct {
		name  string
		level int
		bo    uint
	}{{"cmp-x86_64-dl0-bo2", 0, 2}, {"partial-cmp-dl19-bo3", 19, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(fixtures.SampleDir(), tc.name+".part.gz")
			f, err := os.Open(path)
			require.NoError(t, err, "the samples are committed under fixtures/samples")
			defer f.Close()
			img := testutil.Gunzip(t, path)
			const bs = 4096
			d := decodeTestDump(t, img, diskdump.ArchX86_64)
			h := d.hdr
			sub, err := diskdump.DecodeSubHeader(diskdump.ArchX86_64, img[2*bs:3*bs])
			require.NoError(t, err)
			byPage := map[string][]byte{}
			for p, pg := range d.pages {
				if d.flags[p]&1 != 0 {
					byPage[string(pg)] = d.payload[p]
				}
			}
			var mu sync.Mutex
			cfg := DefaultConfig(diskdump.ArchX86_64)
			cfg.Compress, cfg.DumpLevel, cfg.BlockOrder = true, tc.level, tc.bo
			if tc.level != 0 {
				cfg.DumpLevel = tc.level | 16 | 1 // the private rule keeps exactly the dumped pages
			}
			cfg.Utsname, cfg.Time = h.Utsname, time.Unix(h.Sec, h.Frac)
			cfg.NrCPUs, cfg.CurrentCPU, cfg.Tasks, cfg.Regs = int(h.NrCPUs), int(h.CurrentCPU), h.Tasks, sub.Regs
			cfg.Deflate = func(page, dst []byte) []byte {
				mu.Lock()
				defer mu.Unlock()
				if z, ok := byPage[string(page)]; ok {
					return append(dst[:0], z...)
				}
				return append(dst[:0], make([]byte, bs)...) // stored raw in the sample
			}
			dev := uint64(h.DeviceBlocks)
			out := newLogDev(formattedImage(dev, bs, binary.LittleEndian), bs)
			res, err := WriteDump(out, dev, &recordSource{d: d, max: uint64(h.MaxMapnr)}, cfg)
			require.NoError(t, err)
			assert.Equal(t, OutcomeCompleted, res.Outcome)
			for blk := uint64(0); blk < dev; blk++ {
				require.True(t, bytes.Equal(img[blk*bs:(blk+1)*bs], out.Bytes()[blk*bs:(blk+1)*bs]), "block %d differs from the sample", blk)
			}
		})
	}
}
