package diskdump

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dumpkit/dumpkit/fixtures"
	"github.com/dumpkit/dumpkit/internal/testutil"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rdrSampleDir is where the independent golden partitions live.
var rdrSampleDir = fixtures.SampleDir()

var rdrSampleNames = []string{"raw-x86_64-dl0-bo2", "cmp-x86_64-dl0-bo2", "partial-cmp-dl19-bo3"}

// rdrSample is a golden partition with its page list and JSON description.
type rdrSample struct {
	name  string
	image []byte
	pages map[uint64]string // PFN -> hex SHA-256
	order []uint64          // PFNs in file order
	desc  rdrSampleJSON
}

type rdrSampleJSON struct {
	Header struct {
		BitmapBlocks   uint32   `json:"bitmap_blocks"`
		BlockSize      int32    `json:"block_size"`
		CurrentCPU     uint32   `json:"current_cpu"`
		DeviceBlocks   uint32   `json:"device_blocks"`
		HeaderVersion  int32    `json:"header_version"`
		MaxMapnr       uint32   `json:"max_mapnr"`
		NrCPUs         int32    `json:"nr_cpus"`
		Signature      string   `json:"signature"`
		Status         uint32   `json:"status"`
		SubHdrSize     int32    `json:"sub_hdr_size"`
		Tasks          []uint64 `json:"tasks"`
		TotalRAMBlocks uint32   `json:"total_ram_blocks"`
		WrittenBlocks  uint32   `json:"written_blocks"`
		Timestamp      struct {
			Sec  int64 `json:"sec"`
			Nsec int64 `json:"nsec"`
		} `json:"timestamp"`
		Utsname map[string]string `json:"utsname"`
	} `json:"header"`
	Geometry struct {
		DataStart       uint64 `json:"data_start"`
		HeaderBlocks    uint64 `json:"header_blocks"`
		RAMBitmapBlocks uint64 `json:"ram_bitmap_blocks"`
	} `json:"geometry"`
	RAMRanges [][2]uint64 `json:"ram_ranges"`
	Stats     struct {
		SavedPages   uint64 `json:"saved_pages"`
		SkippedPages uint64 `json:"skipped_pages"`
	} `json:"stats"`
}

var rdrSampleCache = map[string]*rdrSample{}

// rdrLoadSample gunzips a golden sample into memory (cached per test
// binary; callers must not modify image, they copy it to mutate).
func rdrLoadSample(tb testing.TB, name string) *rdrSample {
	tb.Helper()
	if s, ok := rdrSampleCache[name]; ok {
		return s
	}
	gzPath := filepath.Join(rdrSampleDir, name+".part.gz")
	f, err := os.Open(gzPath)
	if errors.Is(err, os.ErrNotExist) {
		tb.Skipf("golden sample %s not found (expected in %s)", name, rdrSampleDir)
	}
	require.NoError(tb, err)
	defer f.Close()
	img := testutil.Gunzip(tb, gzPath)
	s := &rdrSample{name: name, image: img, pages: map[uint64]string{}}

	pf, err := os.Open(filepath.Join(rdrSampleDir, name+".pages"))
	require.NoError(tb, err)
	defer pf.Close()
	sc := bufio.NewScanner(pf)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		require.Len(tb, fields, 2)
		pfn, err := strconv.ParseUint(fields[0], 10, 64)
		require.NoError(tb, err)
		s.pages[pfn] = fields[1]
		s.order = append(s.order, pfn)
	}
	require.NoError(tb, sc.Err())

	jb, err := os.ReadFile(filepath.Join(rdrSampleDir, name+".json"))
	require.NoError(tb, err)
	require.NoError(tb, json.Unmarshal(jb, &s.desc))
	rdrSampleCache[name] = s
	return s
}

// rdrCollect runs Pages and returns the SHA-256 of every decompressed page
// by PFN, the PFNs in iteration order and the errors.
func rdrCollect(t testing.TB, p *Partition) (map[uint64]string, []uint64, []error) {
	t.Helper()
	got := map[uint64]string{}
	var order []uint64
	var errs []error
	var dst []byte
	for pg, err := range p.Pages() {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var derr error
		dst, derr = pg.Decompress(dst)
		if derr != nil {
			errs = append(errs, derr)
			continue
		}
		sum := sha256.Sum256(dst)
		got[pg.PFN] = hex.EncodeToString(sum[:])
		order = append(order, pg.PFN)
	}
	return got, order, errs
}

func TestGoldenSamples(t *testing.T) {
	for _, name := range rdrSampleNames {
		t.Run(name, func(t *testing.T) {
			s := rdrLoadSample(t, name)
			p, err := OpenPartition(bytes.NewReader(s.image), int64(len(s.image)))
			require.NoError(t, err)
			h, d := p.Header(), s.desc.Header
			assert.Equal(t, d.Signature, h.Signature)
			assert.Equal(t, d.HeaderVersion, h.Version)
			assert.Equal(t, d.BitmapBlocks, h.BitmapBlocks)
			assert.Equal(t, d.BlockSize, h.BlockSize)
			assert.Equal(t, d.CurrentCPU, h.CurrentCPU)
			assert.Equal(t, d.DeviceBlocks, h.DeviceBlocks)
			assert.Equal(t, d.MaxMapnr, h.MaxMapnr)
			assert.Equal(t, d.NrCPUs, h.NrCPUs)
			assert.Equal(t, Status(d.Status), h.Status)
			assert.Equal(t, d.SubHdrSize, h.SubHdrSize)
			assert.Equal(t, d.TotalRAMBlocks, h.TotalRAMBlocks)
			assert.Equal(t, d.WrittenBlocks, h.WrittenBlocks)
			assert.Equal(t, d.Timestamp.Sec, h.Sec)
			assert.Equal(t, d.Timestamp.Nsec, h.Frac)
			assert.Equal(t, d.Tasks, h.Tasks[:len(d.Tasks)])
			assert.Equal(t, d.Utsname["machine"], h.Utsname.Machine)
			assert.Equal(t, d.Utsname["release"], h.Utsname.Release)
			assert.Equal(t, d.Utsname["nodename"], h.Utsname.Nodename)
			assert.Equal(t, ArchX86_64, p.Arch())
			assert.Equal(t, 4096, p.BlockSize())
			assert.False(t, p.IsSwap())
			assert.Equal(t, s.desc.Geometry.DataStart, p.Geometry().FirstDataBlock())
			assert.Equal(t, s.desc.Geometry.HeaderBlocks, p.Geometry().HeaderBlocks())
			assert.Equal(t, s.desc.Geometry.RAMBitmapBlocks, p.Geometry().RAMBitmapBlocks)
			require.NotNil(t, p.SubHeader())
			assert.NotNil(t, p.SubHeader().Regs)

			// Bitmap 1 is exactly the RAM ranges.
			var ram uint64
			for _, rg := range s.desc.RAMRanges {
				for pfn := rg[0]; pfn < rg[1]; pfn++ {
					require.True(t, p.RAMBitmap().Test(pfn), "PFN %d", pfn)
				}
				ram += rg[1] - rg[0]
			}
			assert.Equal(t, ram, p.RAMBitmap().Count())

			got, order, errs := rdrCollect(t, p)
			assert.Empty(t, errs)
			assert.Equal(t, s.pages, got)
			assert.Equal(t, s.order, order, "PFN order")
			st := p.Stats()
			assert.Equal(t, uint64(len(s.pages)), st.Expected)
			assert.Equal(t, uint64(len(s.pages)), st.Found)
			assert.Zero(t, st.Lost)
			assert.Equal(t, ram, st.RAMPages)
			assert.Equal(t, s.desc.Stats.SkippedPages, st.Excluded)
			assert.Equal(t, s.desc.Stats.SkippedPages != 0, p.Incomplete())
			assert.Equal(t, uint64(len(s.pages)), p.DumpableBitmap().Count())
			for pfn := range s.pages {
				assert.True(t, p.DumpableBitmap().Test(pfn))
			}
		})
	}
}

// rdrSpec describes a hand-built dump partition (tests cannot wait for the
// kernel-exact writer, and need damage it never produces).
type rdrSpec struct {
	arch       Arch        // default x86_64
	maxPFN     uint64      // default 200
	ram        [][2]uint64 // RAM ranges [lo, hi); default [0,20) [40,maxPFN)
	twoBitmaps bool
	compress   bool                  // compressed record stream (implies twoBitmaps)
	exclude    func(pfn uint64) bool // two-bitmap dumps: pages the dump_level excluded
	status     Status                // state; StatusCompressed is added for compress
	spare      uint64                // formatted blocks after the data area
	oneBitmap  bool                  // compressed with one bitmap (a damaged header)
}

// rdrDump is a built partition and what it holds.
type rdrDump struct {
	spec    rdrSpec
	img     []byte
	bs      int
	order   binary.ByteOrder
	first   uint64
	written uint64
	pfns    []uint64          // dumped PFNs in order
	content map[uint64][]byte // page contents
	off     map[uint64]int64  // record (compressed) or page (raw) offset
	hdrOff  int64             // offset of block 1
}

// rdrPageContent makes varied, deterministic pages: some compress well,
// some do not (and are stored raw in a compressed dump).
func rdrPageContent(pfn uint64, bs int) []byte {
	key := [2]uint64{pfn, uint64(bs)}
	if b, ok := rdrContentCache.Load(key); ok {
		return b.([]byte)
	}
	b := rdrMakeContent(pfn, bs)
	rdrContentCache.Store(key, b)
	return b
}

// rdrContentCache and rdrZlibCache keep built pages and their zlib
// streams: building dumps is the slow part of these tests under -race.
var rdrContentCache, rdrZlibCache sync.Map

func rdrZlib(t testing.TB, pfn uint64, c []byte) []byte {
	key := [2]uint64{pfn, uint64(len(c))}
	if b, ok := rdrZlibCache.Load(key); ok {
		return b.([]byte)
	}
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	require.NoError(t, err)
	_, err = zw.Write(c)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	rdrZlibCache.Store(key, z.Bytes())
	return z.Bytes()
}

func rdrMakeContent(pfn uint64, bs int) []byte {
	b := make([]byte, bs)
	switch pfn % 3 {
	case 0:
		copy(b, "Unmapped page. PFN "+strconv.FormatUint(pfn, 10)+"\n")
	case 1:
		x := pfn*0x9e3779b97f4a7c15 + 1
		for i := range b {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			b[i] = byte(x)
		}
	default:
		for i := range b {
			b[i] = byte(i/64) ^ byte(pfn)
		}
	}
	return b
}

func rdrBuild(t testing.TB, sp rdrSpec) *rdrDump {
	t.Helper()
	if sp.arch == ArchUnknown {
		sp.arch = ArchX86_64
	}
	if sp.maxPFN == 0 {
		sp.maxPFN = 200
	}
	if sp.ram == nil {
		sp.ram = [][2]uint64{{0, 20}, {40, sp.maxPFN}}
	}
	if sp.compress {
		sp.twoBitmaps = !sp.oneBitmap
		sp.status |= StatusCompressed
	}
	bs := sp.arch.PageSize()
	o := sp.arch.ByteOrder()
	d := &rdrDump{spec: sp, bs: bs, order: o, content: map[uint64][]byte{}, off: map[uint64]int64{}, hdrOff: int64(bs)}

	ram := MakeBitmap(BitmapBlocksFor(sp.maxPFN, bs) * uint64(bs) * 8)
	for _, rg := range sp.ram {
		for pfn := rg[0]; pfn < rg[1]; pfn++ {
			ram.Set(pfn)
		}
	}
	var nram uint64
	dumped := MakeBitmap(ram.Len())
	for pfn := range ram.All() {
		nram++
		if !sp.twoBitmaps || sp.exclude == nil || !sp.exclude(pfn) {
			dumped.Set(pfn)
			d.pfns = append(d.pfns, pfn)
		}
	}
	g := NewGeometry(bs, sp.maxPFN, nram, sp.twoBitmaps)
	d.first = g.FirstDataBlock()

	// Data area.
	var data bytes.Buffer
	for _, pfn := range d.pfns {
		c := rdrPageContent(pfn, bs)
		d.content[pfn] = c
		d.off[pfn] = int64(d.first)*int64(bs) + int64(data.Len())
		if !sp.compress {
			data.Write(c)
			continue
		}
		payload := rdrZlib(t, pfn, c)
		rec := pageRecord{pageFlags: 0x100 + pfn, size: uint32(len(payload)), flags: PageCompressed}
		if len(payload) >= bs {
			rec.size, rec.flags, payload = uint32(bs), 0, c
		}
		if pfn%5 == 0 {
			rec.flags |= PageMappingAnon
		}
		var rh [PageRecordSize]byte
		putRecord(rh[:], o, rec)
		data.Write(rh[:])
		data.Write(payload)
	}
	for data.Len()%bs != 0 {
		data.WriteByte('m')
	}
	dataBlocks := uint64(data.Len() / bs)
	d.written = d.first + dataBlocks
	dev := d.written + sp.spare
	d.img = make([]byte, dev*uint64(bs))
	for blk := range dev {
		FillSignature(d.img[blk*uint64(bs):(blk+1)*uint64(bs)], blk, o)
	}
	h := &Header{Layout: LayoutOf(sp.arch), Signature: DumpSignature,
		Utsname: Utsname{"Linux", "test.example.com", "2.6.9-89.ELsmp", "#1 SMP", sp.arch.Machine(), "(none)"},
		Sec:     1246291200, Frac: 5, Status: sp.status, BlockSize: int32(bs), SubHdrSize: 1,
		BitmapBlocks: uint32(g.BitmapBlocks), MaxMapnr: uint32(sp.maxPFN), TotalRAMBlocks: uint32(nram),
		DeviceBlocks: uint32(dev), WrittenBlocks: uint32(d.written), CurrentCPU: 1, NrCPUs: 2, Tasks: []uint64{0x1000, 0x2000}}
	hb, err := h.EncodeBlock(bs)
	require.NoError(t, err)
	copy(d.img[bs:], hb)
	regs := make([]uint64, len(RegNames(sp.arch)))
	for i := range regs {
		regs[i] = uint64(i + 1)
	}
	sub, err := EncodeSubHeader(sp.arch, bs, regs, nil)
	require.NoError(t, err)
	copy(d.img[2*bs:], sub)
	copy(d.img[g.RAMBitmapBlock()*uint64(bs):], ram.Bytes()[:g.RAMBitmapBlocks*uint64(bs)])
	if sp.twoBitmaps {
		blk := g.DumpBitmapBlock() * uint64(bs)
		clear(d.img[blk : blk+g.RAMBitmapBlocks*uint64(bs)])
		copy(d.img[blk:], PFNToDense(ram, dumped))
	}
	copy(d.img[d.first*uint64(bs):], data.Bytes())
	return d
}

// setHeader changes one 32-bit header field of the image in place.
func (d *rdrDump) setHeader(field string, v uint32) {
	off := d.hdrOff + int64(LayoutOf(d.spec.arch).FieldOffset(field))
	d.order.PutUint32(d.img[off:], v)
}

func (d *rdrDump) open(t testing.TB) *Partition {
	t.Helper()
	p, err := OpenPartition(bytes.NewReader(d.img), int64(len(d.img)))
	require.NoError(t, err)
	return p
}

// rdrRun iterates Pages, checks every page against the built content and
// returns the PFNs found and the errors.
func rdrRun(t testing.TB, d *rdrDump, p *Partition) ([]uint64, []error) {
	t.Helper()
	var found []uint64
	var errs []error
	var dst []byte
	var yielded uint64
	for pg, err := range p.Pages() {
		if err != nil {
			var pe *PageError
			require.ErrorAs(t, err, &pe, "every iteration error is a *PageError")
			errs = append(errs, err)
			continue
		}
		yielded++
		var derr error
		dst, derr = pg.Decompress(dst)
		if derr != nil {
			errs = append(errs, derr)
			continue
		}
		require.Equal(t, d.content[pg.PFN], dst, "PFN %d", pg.PFN)
		found = append(found, pg.PFN)
	}
	st := p.Stats()
	var sum uint64
	for _, n := range st.LostBy {
		sum += n
	}
	assert.Equal(t, st.Lost, sum, "Lost is the sum of LostBy")
	assert.Equal(t, st.Expected, st.Found+st.Lost, "Expected = Found + Lost: %+v", st)
	assert.Equal(t, yielded, st.Found)
	return found, errs
}

// lostOf returns the *LostError of an iteration error.
func lostOf(t testing.TB, err error) (*PageError, *LostError) {
	t.Helper()
	var pe *PageError
	var le *LostError
	require.ErrorAs(t, err, &pe)
	require.ErrorAs(t, err, &le)
	return pe, le
}

func TestBuiltDumps(t *testing.T) {
	odd := func(pfn uint64) bool { return pfn%4 == 1 }
	tests := []struct {
		name    string
		spec    rdrSpec
		partial bool
	}{
		{"raw full x86_64", rdrSpec{}, false},
		{"raw full i386", rdrSpec{arch: ArchI386}, false},
		{"raw full ppc64", rdrSpec{arch: ArchPPC64}, false},
		{"raw full ia64 16KiB", rdrSpec{arch: ArchIA64, maxPFN: 60}, false},
		{"raw partial", rdrSpec{twoBitmaps: true, exclude: odd}, true},
		{"raw two bitmaps nothing excluded", rdrSpec{twoBitmaps: true}, false},
		{"compressed", rdrSpec{compress: true}, false},
		{"compressed ppc64", rdrSpec{compress: true, arch: ArchPPC64}, false},
		{"compressed i386", rdrSpec{compress: true, arch: ArchI386}, false},
		{"compressed ia64 16KiB", rdrSpec{compress: true, arch: ArchIA64, maxPFN: 60}, false},
		{"compressed partial", rdrSpec{compress: true, exclude: odd}, true},
		{"compressed everything excluded", rdrSpec{compress: true, exclude: func(uint64) bool { return true }}, true},
		{"compressed with one bitmap", rdrSpec{compress: true, oneBitmap: true}, false},
		{"large bitmap", rdrSpec{maxPFN: 70000, ram: [][2]uint64{{0, 10}, {69990, 70000}}, compress: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.spare = 3
			d := rdrBuild(t, tc.spec)
			p := d.open(t)
			assert.Equal(t, d.bs, p.BlockSize())
			assert.Equal(t, tc.spec.arch == ArchUnknown, p.Arch() == ArchX86_64)
			assert.False(t, p.IsSwap())
			found, errs := rdrRun(t, d, p)
			assert.Empty(t, errs)
			if len(d.pfns) == 0 {
				assert.Empty(t, found)
			} else {
				assert.Equal(t, d.pfns, found)
			}
			st := p.Stats()
			assert.Equal(t, uint64(len(d.pfns)), st.Expected)
			assert.Zero(t, st.Lost)
			assert.Equal(t, st.RAMPages-uint64(len(d.pfns)), st.Excluded)
			assert.Equal(t, tc.partial, p.Incomplete())
			assert.Equal(t, uint64(len(d.pfns)), p.DumpableBitmap().Count())
			for _, pfn := range d.pfns {
				assert.True(t, p.DumpableBitmap().Test(pfn))
			}
			if names := RegNames(p.Arch()); len(names) > 0 {
				v, ok := p.SubHeader().Reg(names[0])
				assert.True(t, ok)
				assert.Equal(t, uint64(1), v)
			}
			// A second run gives the same result.
			found2, _ := rdrRun(t, d, p)
			assert.Equal(t, found, found2)
		})
	}
}

// TestFullDumpExtent covers one-bitmap dumps whose data area is shorter
// than the RAM: written_blocks, the signature rule of an interrupted
// strict dump, a truncated image and surplus written blocks.
func TestFullDumpExtent(t *testing.T) {
	type loss struct {
		pfnIdx int // index in d.pfns of the first lost page; -1 for NoPFN
		reason LossReason
		pages  uint64
	}
	tests := []struct {
		name   string
		mutate func(d *rdrDump) []byte // returns the image to open
		found  int                     // pages found: d.pfns[:found]
		losses []loss
		short  bool // Incomplete from the header alone
	}{
		{"strict small device", func(d *rdrDump) []byte {
			d.setHeader("status", uint32(StatusIncompleted))
			d.setHeader("written_blocks", uint32(d.first+10))
			return d.img
		}, 10, []loss{{10, LostNotWritten, 0}}, true},
		{"completed but written_blocks at first data block", func(d *rdrDump) []byte {
			d.setHeader("written_blocks", uint32(d.first))
			return d.img
		}, 0, []loss{{0, LostNotWritten, 0}}, true},
		{"interrupted strict dump: signature rule", func(d *rdrDump) []byte {
			d.setHeader("status", uint32(StatusIncompleted))
			d.setHeader("written_blocks", uint32(d.first))
			for k := 25; k < len(d.pfns); k++ {
				blk := d.first + uint64(k)
				FillSignature(d.img[blk*uint64(d.bs):(blk+1)*uint64(d.bs)], blk, d.order)
			}
			return d.img
		}, 25, []loss{{25, LostNeverWritten, 0}}, false},
		{"interrupted strict dump: stale data after the first signature block", func(d *rdrDump) []byte {
			d.setHeader("status", uint32(StatusIncompleted))
			d.setHeader("written_blocks", uint32(d.first))
			blk := d.first + 30
			FillSignature(d.img[blk*uint64(d.bs):(blk+1)*uint64(d.bs)], blk, d.order)
			return d.img
		}, 30, []loss{{30, LostNeverWritten, 0}}, false},
		{"interrupted strict dump: nothing written", func(d *rdrDump) []byte {
			d.setHeader("status", uint32(StatusIncompleted))
			d.setHeader("written_blocks", uint32(d.first))
			for k := range d.pfns {
				blk := d.first + uint64(k)
				FillSignature(d.img[blk*uint64(d.bs):(blk+1)*uint64(d.bs)], blk, d.order)
			}
			return d.img
		}, 0, []loss{{0, LostNeverWritten, 0}}, false},
		{"interrupted strict dump on a small device", func(d *rdrDump) []byte {
			d.setHeader("status", uint32(StatusIncompleted))
			d.setHeader("written_blocks", uint32(d.first))
			d.setHeader("device_blocks", uint32(d.first+40))
			return d.img
		}, 40, []loss{{40, LostNotWritten, 0}}, true},
		{"truncated image", func(d *rdrDump) []byte {
			return d.img[:(d.first+15)*uint64(d.bs)+100]
		}, 15, []loss{{15, LostTruncated, 0}}, true},
		{"truncated interrupted dump", func(d *rdrDump) []byte {
			d.setHeader("status", uint32(StatusIncompleted))
			d.setHeader("written_blocks", uint32(d.first))
			return d.img[:(d.first+15)*uint64(d.bs)]
		}, 15, []loss{{15, LostTruncated, 0}}, false},
		{"surplus written blocks", func(d *rdrDump) []byte {
			d.setHeader("written_blocks", uint32(d.written+3))
			return d.img
		}, -1, []loss{{-1, LostUnflushed, 3}}, false},
		{"surplus written blocks beyond the image", func(d *rdrDump) []byte {
			d.setHeader("written_blocks", uint32(d.written+3))
			return d.img[:(d.written+1)*uint64(d.bs)]
		}, -1, []loss{{-1, LostUnflushed, 1}, {-1, LostTruncated, 2}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := rdrBuild(t, rdrSpec{spare: 5})
			img := tc.mutate(d)
			p, err := OpenPartition(bytes.NewReader(img), int64(len(img)))
			require.NoError(t, err)
			assert.Equal(t, tc.short || !p.Header().Status.Complete(), p.Incomplete(), "Incomplete before Pages")
			found, errs := rdrRun(t, d, p)
			nfound := tc.found
			if nfound < 0 {
				nfound = len(d.pfns)
			}
			assert.Equal(t, d.pfns[:nfound], append([]uint64{}, found...))
			require.Len(t, errs, len(tc.losses))
			var lost uint64
			for i, l := range tc.losses {
				pe, le := lostOf(t, errs[i])
				want := l.pages
				if want == 0 {
					want = uint64(len(d.pfns) - l.pfnIdx)
				}
				assert.Equal(t, l.reason, le.Reason, "%v", errs[i])
				assert.Equal(t, want, le.Pages, "%v", errs[i])
				if l.pfnIdx >= 0 {
					assert.Equal(t, d.pfns[l.pfnIdx], pe.PFN)
					assert.Equal(t, int64(d.first+uint64(l.pfnIdx))*int64(d.bs), pe.Off)
				} else {
					assert.Equal(t, NoPFN, pe.PFN)
				}
				if l.reason == LostTruncated {
					assert.ErrorIs(t, errs[i], ErrTruncated)
				}
				lost += want
				assert.Equal(t, want, p.Stats().LostBy[l.reason])
			}
			assert.Equal(t, lost, p.Stats().Lost)
			assert.True(t, p.Incomplete() || lost == 0 && p.Header().Status.Complete())
			// DumpableBitmap bounds what was found.
			for _, pfn := range found {
				assert.True(t, p.DumpableBitmap().Test(pfn))
			}
		})
	}
}

// rec returns the record header of PFN pfn in a compressed built dump.
func (d *rdrDump) rec(pfn uint64) pageRecord {
	return decodePageRecord(d.img[d.off[pfn]:], d.order)
}

func (d *rdrDump) setRec(pfn uint64, r pageRecord) {
	putRecord(d.img[d.off[pfn]:], d.order, r)
}

// firstWith returns the index in d.pfns of the first page from index i
// whose record satisfies f.
func (d *rdrDump) firstWith(t testing.TB, i int, f func(pageRecord) bool) int {
	for ; i < len(d.pfns); i++ {
		if f(d.rec(d.pfns[i])) {
			return i
		}
	}
	t.Fatal("no such record")
	return -1
}

func isZlib(r pageRecord) bool { return r.flags&PageCompressed != 0 }
func isRaw(r pageRecord) bool  { return r.flags&PageCompressed == 0 }

// TestCompressedDamage covers corrupt records, records cut by
// written_blocks or by the end of the image, and the IN_PROGRESS case.
func TestCompressedDamage(t *testing.T) {
	type loss struct {
		idx    int // index in d.pfns; -1 = NoPFN
		reason LossReason
		pages  uint64 // 0 = all pages from idx on
		sent   error  // errors.Is target, optional
	}
	tests := []struct {
		name string
		// mutate damages the dump, returns the image and the index of the
		// damaged page (or -1).
		mutate func(t *testing.T, d *rdrDump) ([]byte, int)
		losses func(i int) []loss
		skip   func(i, k int) bool // page k is not found
		decErr func(i int) int     // index of a page whose Decompress fails, -1 none
	}{
		{"raw size with COMPRESSED clear", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := d.firstWith(t, 10, isZlib)
			r := d.rec(d.pfns[i])
			r.flags &^= PageCompressed
			d.setRec(d.pfns[i], r)
			return d.img, i
		}, func(i int) []loss { return []loss{{i, LostCorrupt, 1, ErrCorrupt}} }, func(i, k int) bool { return k == i }, nil},
		{"COMPRESSED set on a raw page", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := d.firstWith(t, 10, isRaw)
			r := d.rec(d.pfns[i])
			r.flags |= PageCompressed
			d.setRec(d.pfns[i], r)
			return d.img, i
		}, func(i int) []loss { return []loss{{i, LostCorrupt, 1, ErrCorrupt}} }, func(i, k int) bool { return k == i }, nil},
		{"unknown flag bits", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := d.firstWith(t, 10, isZlib)
			r := d.rec(d.pfns[i])
			r.flags |= 0x80
			d.setRec(d.pfns[i], r)
			return d.img, i
		}, func(i int) []loss { return []loss{{i, LostCorrupt, 1, ErrCorrupt}} }, func(i, k int) bool { return k == i }, nil},
		{"bad zlib header", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := d.firstWith(t, 10, isZlib)
			d.img[d.off[d.pfns[i]]+PageRecordSize] = 0x79
			return d.img, i
		}, func(i int) []loss { return []loss{{i, LostCorrupt, 1, ErrCorrupt}} }, func(i, k int) bool { return k == i }, nil},
		{"bad deflate data", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := d.firstWith(t, 10, isZlib)
			off := d.off[d.pfns[i]] + PageRecordSize + 2
			for j := range int64(8) {
				d.img[off+j] = 0xff
			}
			return d.img, i
		}, func(i int) []loss { return nil }, func(i, k int) bool { return k == i }, func(i int) int { return i }},
		{"bad Adler-32", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := d.firstWith(t, 10, isZlib)
			r := d.rec(d.pfns[i])
			d.img[d.off[d.pfns[i]]+PageRecordSize+int64(r.size)-1] ^= 1
			return d.img, i
		}, func(i int) []loss { return nil }, func(i, k int) bool { return k == i }, func(i int) int { return i }},
		{"size 0: resynchronised at the next record", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := 20
			r := d.rec(d.pfns[i])
			r.size = 0
			d.setRec(d.pfns[i], r)
			return d.img, i
		}, func(i int) []loss { return []loss{{i, LostCorrupt, 1, ErrCorrupt}} }, func(i, k int) bool { return k == i }, nil},
		{"size above the block size: resynchronised at the next record", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := 20
			r := d.rec(d.pfns[i])
			r.size = uint32(d.bs + 1)
			d.setRec(d.pfns[i], r)
			return d.img, i
		}, func(i int) []loss { return []loss{{i, LostCorrupt, 1, ErrCorrupt}} }, func(i, k int) bool { return k == i }, nil},
		{"IN_PROGRESS: size 0 ends the stream", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := 20
			r := d.rec(d.pfns[i])
			r.size = 0
			d.setRec(d.pfns[i], r)
			d.setHeader("status", uint32(StatusInProgress|StatusCompressed))
			return d.img, i
		}, func(i int) []loss { return []loss{{i, LostCorrupt, 1, ErrCorrupt}, {i + 1, LostDesync, 0, ErrCorrupt}} }, func(i, k int) bool { return k >= i }, nil},
		{"last record corrupt", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := len(d.pfns) - 1
			r := d.rec(d.pfns[i])
			r.size = 0
			d.setRec(d.pfns[i], r)
			return d.img, i
		}, func(i int) []loss { return []loss{{i, LostCorrupt, 1, ErrCorrupt}} }, func(i, k int) bool { return k >= i }, nil},
		{"record crosses written_blocks", func(t *testing.T, d *rdrDump) ([]byte, int) {
			// The first record that ends in block first+8.
			limit := int64(d.first+8) * int64(d.bs)
			i := 0
			for d.off[d.pfns[i]]+PageRecordSize+int64(d.rec(d.pfns[i]).size) <= limit {
				i++
			}
			d.setHeader("written_blocks", uint32(d.first+8))
			d.setHeader("status", uint32(StatusShortArea|StatusCompressed))
			return d.img, i
		}, func(i int) []loss { return []loss{{i, LostNotWritten, 0, nil}} }, func(i, k int) bool { return k >= i }, nil},
		{"image ends inside a record", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := 30
			return d.img[:d.off[d.pfns[i]]+PageRecordSize+10], i
		}, func(i int) []loss { return []loss{{i, LostTruncated, 0, ErrTruncated}} }, func(i, k int) bool { return k >= i }, nil},
		{"image ends inside a record header", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := 31
			return d.img[:d.off[d.pfns[i]]+7], i
		}, func(i int) []loss { return []loss{{i, LostTruncated, 0, ErrTruncated}} }, func(i, k int) bool { return k >= i }, nil},
		{"IN_PROGRESS: records after the last bitmap flush", func(t *testing.T, d *rdrDump) ([]byte, int) {
			// Bits of RAM ordinals >= 100 were never flushed: zero them.
			g := NewGeometry(d.bs, d.spec.maxPFN, 0, true)
			dense := d.img[g.DumpBitmapBlock()*uint64(d.bs):][:g.RAMBitmapBlocks*uint64(d.bs)]
			bm := NewBitmap(dense)
			bm.Truncate(100)
			d.setHeader("status", uint32(StatusInProgress|StatusCompressed))
			return d.img, 100
		}, func(i int) []loss { return []loss{{-1, LostUnflushed, 0, nil}} }, func(i, k int) bool { return k >= i }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := rdrBuild(t, rdrSpec{compress: true, maxPFN: 160, spare: 2})
			img, i := tc.mutate(t, d)
			p, err := OpenPartition(bytes.NewReader(img), int64(len(img)))
			require.NoError(t, err)
			found, errs := rdrRun(t, d, p)
			var want []uint64
			for k, pfn := range d.pfns {
				if !tc.skip(i, k) {
					want = append(want, pfn)
				}
			}
			assert.Equal(t, want, found)
			dec := -1
			if tc.decErr != nil {
				dec = tc.decErr(i)
			}
			losses := tc.losses(i)
			require.Len(t, errs, len(losses)+map[bool]int{true: 1}[dec >= 0], "%v", errs)
			for j, l := range losses {
				pe, le := lostOf(t, errs[j])
				n := l.pages
				if n == 0 {
					n = uint64(len(d.pfns) - max(l.idx, i))
				}
				assert.Equal(t, l.reason, le.Reason, "%v", errs[j])
				assert.Equal(t, n, le.Pages, "%v", errs[j])
				if l.idx >= 0 {
					assert.Equal(t, d.pfns[l.idx], pe.PFN, "%v", errs[j])
					if l.idx < len(d.pfns) && l.reason != LostDesync {
						assert.Equal(t, d.off[d.pfns[l.idx]], pe.Off, "%v", errs[j])
					}
				} else {
					assert.Equal(t, NoPFN, pe.PFN)
				}
				if l.sent != nil {
					assert.ErrorIs(t, errs[j], l.sent)
				}
			}
			if dec >= 0 {
				var pe *PageError
				require.ErrorAs(t, errs[len(errs)-1], &pe)
				assert.Equal(t, d.pfns[dec], pe.PFN)
				assert.Equal(t, d.off[d.pfns[dec]]+PageRecordSize, pe.Off)
				assert.ErrorIs(t, pe, ErrCorrupt)
			}
			assert.True(t, p.Incomplete() || dec >= 0)
		})
	}
}

func TestOpenPartitionErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *rdrDump) []byte
		field  string
		blk    int64
		sent   error
	}{
		{"formatted, no dump", func(d *rdrDump) []byte {
			FillSignature(d.img[d.bs:2*d.bs], 1, d.order)
			return d.img
		}, "signature", 1, ErrNoDump},
		{"zeroed block 1 (cleared swap dump)", func(d *rdrDump) []byte {
			clear(d.img[d.bs : 2*d.bs])
			return d.img
		}, "signature", 1, ErrNoDump},
		{"KDUMP vmcore signature", func(d *rdrDump) []byte {
			copy(d.img[d.bs:], KdumpSignature)
			return d.img
		}, "signature", 1, ErrNoDump},
		{"empty device", func(d *rdrDump) []byte { return nil }, "signature", 1, ErrNoDump},
		{"bad block_size", func(d *rdrDump) []byte {
			d.setHeader("block_size", 1000)
			return d.img
		}, "block_size", 1, ErrCorrupt},
		{"bitmap_blocks neither R nor 2R", func(d *rdrDump) []byte {
			d.setHeader("bitmap_blocks", 3)
			return d.img
		}, "bitmap_blocks", 1, ErrCorrupt},
		{"bitmaps beyond the device", func(d *rdrDump) []byte {
			d.setHeader("max_mapnr", 0xffffffff)
			d.setHeader("bitmap_blocks", uint32(BitmapBlocksFor(0xffffffff, d.bs)))
			return d.img
		}, "bitmap_blocks", 1, ErrTooSmall},
		{"written_blocks below the first data block", func(d *rdrDump) []byte {
			d.setHeader("written_blocks", 2)
			d.setHeader("status", uint32(StatusIncompleted))
			return d.img
		}, "written_blocks", 1, ErrTruncated},
		{"written_blocks beyond device_blocks", func(d *rdrDump) []byte {
			d.setHeader("written_blocks", uint32(len(d.img)/d.bs+1))
			return d.img
		}, "written_blocks", 1, ErrCorrupt},
		{"nr_cpus 0", func(d *rdrDump) []byte {
			d.setHeader("nr_cpus", 0)
			return d.img
		}, "nr_cpus", 1, ErrCorrupt},
		{"sub_hdr_size huge", func(d *rdrDump) []byte {
			d.setHeader("sub_hdr_size", 1<<30)
			return d.img
		}, "sub_hdr_size", 1, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := rdrBuild(t, rdrSpec{compress: true})
			img := tc.mutate(d)
			p, err := OpenPartition(bytes.NewReader(img), int64(len(img)))
			require.Error(t, err)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, tc.sent)
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.field, fe.Field, "%v", err)
			assert.Equal(t, tc.blk, fe.Blk, "%v", err)
			if off := LayoutOf(ArchX86_64).FieldOffset(tc.field); off >= 0 {
				assert.Equal(t, int64(d.bs+off), fe.Off, "%v", err)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "diskdump: "), err.Error())
		})
	}
}

// rdrFailingReader fails every read that touches [from, to).
type rdrFailingReader struct {
	r        io.ReaderAt
	from, to int64
}

var errRdrIO = errors.New("injected I/O error")

func (f *rdrFailingReader) ReadAt(b []byte, off int64) (int, error) {
	if off < f.to && off+int64(len(b)) > f.from {
		return 0, errRdrIO
	}
	return f.r.ReadAt(b, off)
}

func TestReadErrors(t *testing.T) {
	t.Run("bitmap unreadable", func(t *testing.T) {
		d := rdrBuild(t, rdrSpec{compress: true})
		r := &rdrFailingReader{r: bytes.NewReader(d.img), from: 3 * int64(d.bs), to: 3*int64(d.bs) + 1}
		_, err := OpenPartition(r, int64(len(d.img)))
		var fe *FormatError
		require.ErrorAs(t, err, &fe)
		assert.ErrorIs(t, err, errRdrIO)
		assert.Equal(t, "bitmap", fe.Field)
		assert.Equal(t, int64(3), fe.Blk)
	})
	t.Run("raw: bad block is one lost page", func(t *testing.T) {
		d := rdrBuild(t, rdrSpec{})
		bad := int64(d.first+7) * int64(d.bs)
		r := &rdrFailingReader{r: bytes.NewReader(d.img), from: bad + 100, to: bad + 101}
		p, err := OpenPartition(r, int64(len(d.img)))
		require.NoError(t, err)
		found, errs := rdrRun(t, d, p)
		require.Len(t, errs, 1)
		pe, le := lostOf(t, errs[0])
		assert.Equal(t, LostIOError, le.Reason)
		assert.Equal(t, d.pfns[7], pe.PFN)
		assert.Equal(t, bad, pe.Off)
		assert.ErrorIs(t, errs[0], errRdrIO)
		assert.Equal(t, append(append([]uint64{}, d.pfns[:7]...), d.pfns[8:]...), found)
	})
	t.Run("compressed: unreadable record data loses one page", func(t *testing.T) {
		d := rdrBuild(t, rdrSpec{compress: true})
		i := d.firstWith(t, 40, isRaw) // 4 KiB of data: a block boundary lies inside
		blkEnd := (d.off[d.pfns[i]]/int64(d.bs) + 1) * int64(d.bs)
		require.Greater(t, blkEnd, d.off[d.pfns[i]]+PageRecordSize, "header must be readable")
		r := &rdrFailingReader{r: bytes.NewReader(d.img), from: blkEnd, to: blkEnd + 1}
		require.Less(t, blkEnd, d.off[d.pfns[i+1]], "next record header must be in another block")
		p, err := OpenPartition(r, int64(len(d.img)))
		require.NoError(t, err)
		found, errs := rdrRun(t, d, p)
		require.Len(t, errs, 1)
		pe, le := lostOf(t, errs[0])
		assert.Equal(t, LostIOError, le.Reason)
		assert.ErrorIs(t, errs[0], errRdrIO)
		assert.Equal(t, d.pfns[i], pe.PFN)
		assert.Equal(t, d.off[d.pfns[i]], pe.Off)
		assert.Equal(t, uint64(1), le.Pages)
		assert.Equal(t, append(append([]uint64{}, d.pfns[:i]...), d.pfns[i+1:]...), found)
	})
	t.Run("compressed: unreadable record header, stream picked up after the bad block", func(t *testing.T) {
		d := rdrBuild(t, rdrSpec{compress: true})
		bad := d.off[d.pfns[40]] + 3
		r := &rdrFailingReader{r: bytes.NewReader(d.img), from: bad, to: bad + 1}
		p, err := OpenPartition(r, int64(len(d.img)))
		require.NoError(t, err)
		found, errs := rdrRun(t, d, p)
		// The block holding the bad byte is unreadable: records whose data
		// reaches into it are lost one by one; the first record whose
		// header lies in it is lost, and so are the others whose header
		// touches it; the stream is picked up at the first record after it.
		badBlk := bad / int64(d.bs)
		inBad := func(from, to int64) bool { return from/int64(d.bs) <= badBlk && (to-1)/int64(d.bs) >= badBlk }
		var want, lostOne, desync []uint64
		end := -1
		for j, pfn := range d.pfns {
			o := d.off[pfn]
			switch {
			case end < 0 && inBad(o, o+PageRecordSize):
				end = j
			case end >= 0 && o < (badBlk+1)*int64(d.bs):
				desync = append(desync, pfn)
			case end < 0 && inBad(o+PageRecordSize, o+PageRecordSize+int64(d.rec(pfn).size)):
				lostOne = append(lostOne, pfn)
			default:
				want = append(want, pfn)
			}
		}
		require.NotEmpty(t, desync, "the test needs records lost after the damaged one")
		require.Len(t, errs, len(lostOne)+2)
		for j, pfn := range lostOne {
			pe, le := lostOf(t, errs[j])
			assert.Equal(t, pfn, pe.PFN)
			assert.Equal(t, uint64(1), le.Pages)
		}
		pe, le := lostOf(t, errs[len(lostOne)])
		assert.Equal(t, LostIOError, le.Reason)
		assert.ErrorIs(t, errs[len(lostOne)], errRdrIO)
		assert.Equal(t, d.pfns[end], pe.PFN)
		assert.Equal(t, d.off[d.pfns[end]], pe.Off)
		assert.Equal(t, uint64(1), le.Pages)
		pe, le = lostOf(t, errs[len(lostOne)+1])
		assert.Equal(t, LostDesync, le.Reason)
		assert.Equal(t, desync[0], pe.PFN)
		assert.Equal(t, uint64(len(desync)), le.Pages)
		assert.Equal(t, want, found)
	})
}

// rdrCheckPrefix opens the first n bytes of a built dump and checks the
// documented outcome: ErrNoDump before the signature, a *FormatError
// (ErrTruncated or ErrTooSmall) before the end of the bitmaps, else the
// pages entirely inside the prefix and one LostTruncated run for the rest.
func rdrCheckPrefix(t *testing.T, d *rdrDump, n int64) {
	t.Helper()
	img := d.img[:n]
	bs := int64(d.bs)
	p, err := OpenPartition(bytes.NewReader(img), n)
	switch {
	case n < bs+8:
		require.ErrorIs(t, err, ErrNoDump, "prefix %d", n)
	case n < int64(d.first)*bs:
		require.Error(t, err, "prefix %d", n)
		var fe *FormatError
		require.ErrorAs(t, err, &fe, "prefix %d", n)
		assert.True(t, errors.Is(err, ErrTruncated) || errors.Is(err, ErrTooSmall), "prefix %d: %v", n, err)
		assert.Equal(t, int64(1), fe.Blk)
	default:
		require.NoError(t, err, "prefix %d", n)
		found, errs := rdrRun(t, d, p)
		want := []uint64{}
		for _, pfn := range d.pfns {
			end := d.off[pfn] + bs
			if d.spec.compress {
				end = d.off[pfn] + PageRecordSize + int64(d.rec(pfn).size)
			}
			if end > n {
				break
			}
			want = append(want, pfn)
		}
		assert.Equal(t, len(want), len(found), "prefix %d", n)
		assert.Equal(t, want, append([]uint64{}, found...), "prefix %d", n)
		if len(want) < len(d.pfns) {
			require.Len(t, errs, 1, "prefix %d", n)
			pe, le := lostOf(t, errs[0])
			assert.Equal(t, LostTruncated, le.Reason)
			assert.ErrorIs(t, errs[0], ErrTruncated)
			assert.Equal(t, d.pfns[len(want)], pe.PFN)
			assert.Equal(t, uint64(len(d.pfns)-len(want)), le.Pages)
			assert.True(t, p.Incomplete())
		} else {
			assert.Empty(t, errs, "prefix %d", n)
		}
	}
}

func TestTruncation(t *testing.T) {
	tests := []struct {
		name string
		spec rdrSpec
	}{
		{"raw full", rdrSpec{maxPFN: 60}},
		{"raw partial", rdrSpec{maxPFN: 60, twoBitmaps: true, exclude: func(pfn uint64) bool { return pfn%3 == 2 }}},
		{"compressed", rdrSpec{maxPFN: 60, compress: true}},
		{"compressed i386", rdrSpec{maxPFN: 60, compress: true, arch: ArchI386}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := rdrBuild(t, tc.spec)
			bs := int64(d.bs)
			var sizes []int64
			for blk := int64(0); blk*bs <= int64(len(d.img)); blk++ {
				offs := []int64{0, 1, 8, 16, 100, 465, bs / 2, bs - 1}
				if blk > int64(d.first) {
					offs = []int64{0, bs - 1}
				}
				for _, o := range offs {
					if n := blk*bs + o; n <= int64(len(d.img)) {
						sizes = append(sizes, n)
					}
				}
			}
			// Every record boundary of a compressed stream, and one byte
			// short of it.
			if d.spec.compress {
				for _, pfn := range d.pfns {
					sizes = append(sizes, d.off[pfn]+PageRecordSize-1, d.off[pfn]+PageRecordSize+1)
				}
			}
			for _, n := range sizes {
				if n <= int64(len(d.img)) {
					rdrCheckPrefix(t, d, n)
				}
			}
		})
	}
}

func TestGoldenTruncation(t *testing.T) {
	for _, name := range rdrSampleNames {
		t.Run(name, func(t *testing.T) {
			s := rdrLoadSample(t, name)
			full, err := OpenPartition(bytes.NewReader(s.image), int64(len(s.image)))
			require.NoError(t, err)
			bs := int64(full.BlockSize())
			first := int64(full.Geometry().FirstDataBlock())
			written := int64(full.Header().WrittenBlocks)
			for _, n := range []int64{0, bs, bs + 8, bs + 300, 2 * bs, first*bs - 1, first * bs, first*bs + 5000,
				(first+written)/2*bs + 1234, written*bs - 1} {
				p, err := OpenPartition(bytes.NewReader(s.image[:n]), n)
				if n < first*bs {
					var fe *FormatError
					require.ErrorAs(t, err, &fe, "prefix %d", n)
					continue
				}
				require.NoError(t, err, "prefix %d", n)
				// Contents are checked by TestGoldenSamples; here the pages
				// found must be the first ones of the sample, in order.
				var errs []error
				var got int
				for pg, err := range p.Pages() {
					if err != nil {
						errs = append(errs, err)
						continue
					}
					require.Equal(t, s.order[got], pg.PFN, "prefix %d", n)
					require.LessOrEqual(t, pg.Off+int64(len(pg.Data)), n)
					got++
				}
				st := p.Stats()
				assert.Equal(t, uint64(len(s.pages)), st.Expected)
				assert.Equal(t, st.Expected, st.Found+st.Lost)
				if n >= written*bs-bs && full.Header().Status.Compressed() && len(errs) == 0 {
					// Only 'm' padding was cut off.
					assert.Equal(t, st.Expected, st.Found)
					continue
				}
				require.Len(t, errs, 1, "prefix %d", n)
				_, le := lostOf(t, errs[0])
				assert.Equal(t, LostTruncated, le.Reason)
				assert.True(t, p.Incomplete())
			}
		})
	}
}

func TestPartialRawInProgress(t *testing.T) {
	d := rdrBuild(t, rdrSpec{twoBitmaps: true, exclude: func(pfn uint64) bool { return pfn%4 == 1 }, spare: 2})
	// The kernel had written the data of every dumped page but flushed the
	// dense bitmap only up to RAM ordinal 90.
	g := NewGeometry(d.bs, d.spec.maxPFN, 0, true)
	NewBitmap(d.img[g.DumpBitmapBlock()*uint64(d.bs):][:g.RAMBitmapBlocks*uint64(d.bs)]).Truncate(90)
	d.setHeader("status", uint32(StatusInProgress))
	p := d.open(t)
	assert.True(t, p.Incomplete())
	var ord uint64
	var want []uint64
	for pfn := range p.RAMBitmap().All() {
		if ord < 90 && pfn%4 != 1 {
			want = append(want, pfn)
		}
		ord++
	}
	found, errs := rdrRun(t, d, p)
	assert.Equal(t, want, found)
	require.Len(t, errs, 1)
	pe, le := lostOf(t, errs[0])
	assert.Equal(t, NoPFN, pe.PFN)
	assert.Equal(t, LostUnflushed, le.Reason)
	assert.Equal(t, uint64(len(d.pfns)-len(want)), le.Pages)
	assert.Equal(t, int64(d.first+uint64(len(want)))*int64(d.bs), pe.Off)
	st := p.Stats()
	assert.Equal(t, uint64(len(d.pfns)), st.Expected)
	assert.Equal(t, uint64(len(want)), st.Found)
	assert.Equal(t, map[LossReason]uint64{LostUnflushed: le.Pages}, st.LostBy)
}

// TestPagesEarlyStop: breaking out of the loop is allowed at any point,
// and the next run starts afresh.
func TestPagesEarlyStop(t *testing.T) {
	for _, compress := range []bool{false, true} {
		d := rdrBuild(t, rdrSpec{compress: compress, spare: 3})
		d.setHeader("written_blocks", uint32(d.first+3)) // errors after a few pages
		p := d.open(t)
		for stop := range 4 {
			i := 0
			for range p.Pages() {
				if i == stop {
					break
				}
				i++
			}
			assert.Equal(t, stop, i)
		}
		_, errs := rdrRun(t, d, p)
		assert.Len(t, errs, 1)
	}
}

// TestPagesAllocations: the iteration allocates nothing per page (the
// buffer and the Page are reused).
func TestPagesAllocations(t *testing.T) {
	if testutil.Race {
		t.Skip("allocation counts are not meaningful under the race detector (run without -race)")
	}
	for _, compress := range []bool{false, true} {
		t.Run(map[bool]string{false: "raw", true: "compressed"}[compress], func(t *testing.T) {
			d := rdrBuild(t, rdrSpec{maxPFN: 1000, compress: compress})
			p := d.open(t)
			var n int
			allocs := testing.AllocsPerRun(2, func() {
				n = 0
				for pg, err := range p.Pages() {
					if err == nil && pg != nil {
						n++
					}
				}
			})
			assert.Equal(t, len(d.pfns), n)
			assert.LessOrEqual(t, allocs, 5.0, "allocations per full iteration of %d pages", n)
			// Decompress with a reused buffer and a pooled inflater: only
			// compress/flate's link tables for dynamic Huffman blocks
			// (huffmanDecoder.init) may be allocated, a few per zlib page.
			dst := make([]byte, p.BlockSize())
			allocs = testing.AllocsPerRun(2, func() {
				for pg, err := range p.Pages() {
					if err == nil {
						dst, err = pg.Decompress(dst)
						require.NoError(t, err)
					}
				}
			})
			assert.LessOrEqual(t, allocs/float64(n), 12.0, "allocations per decompressed page")
		})
	}
}

func TestDecompress(t *testing.T) {
	page := rdrPageContent(3, 4096)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, err := zw.Write(page)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	stream := z.Bytes()
	short := func() []byte {
		var b bytes.Buffer
		w := zlib.NewWriter(&b)
		_, _ = w.Write(page[:4095])
		_ = w.Close()
		return b.Bytes()
	}()
	long := func() []byte {
		var b bytes.Buffer
		w := zlib.NewWriter(&b)
		_, _ = w.Write(append(bytes.Clone(page), 0))
		_ = w.Close()
		return b.Bytes()
	}()
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(stream); f(b); return b }
	tests := []struct {
		name string
		pg   Page
		dst  []byte
		ok   bool
	}{
		{"zlib", Page{Compressed: true, Data: stream, blockSize: 4096}, nil, true},
		{"zlib, caller-made page, size from dst", Page{Compressed: true, Data: stream}, make([]byte, 4096), true},
		{"zlib, caller-made page, default size", Page{Compressed: true, Data: stream}, nil, true},
		{"raw", Page{Data: page, blockSize: 4096}, make([]byte, 10, 8192), true},
		{"raw of the wrong size", Page{Data: page[:100], blockSize: 4096}, nil, false},
		{"inflates short", Page{Compressed: true, Data: short, blockSize: 4096}, nil, false},
		{"inflates long", Page{Compressed: true, Data: long, blockSize: 4096}, nil, false},
		{"no trailer", Page{Compressed: true, Data: stream[:len(stream)-4], blockSize: 4096}, nil, false},
		{"bad trailer", Page{Compressed: true, Data: mod(func(b []byte) { b[len(b)-1] ^= 0x10 }), blockSize: 4096}, nil, false},
		{"bad header", Page{Compressed: true, Data: mod(func(b []byte) { b[1] ^= 1 }), blockSize: 4096}, nil, false},
		{"preset dictionary", Page{Compressed: true, Data: []byte{0x78, 0xbb, 0, 0, 0, 1}, blockSize: 4096}, nil, false},
		{"garbage deflate", Page{Compressed: true, Data: mod(func(b []byte) { copy(b[2:], "\\xff\\xff\\xff\\xff\\xff") }), blockSize: 4096}, nil, false},
		{"empty", Page{Compressed: true, blockSize: 4096}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.pg.PFN, tc.pg.Off = 77, 0x1234
			out, err := tc.pg.Decompress(tc.dst)
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, page, out)
				if cap(tc.dst) >= 4096 {
					assert.Equal(t, &tc.dst[:1][0], &out[0], "dst storage reused")
				}
				return
			}
			require.Error(t, err)
			var pe *PageError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, uint64(77), pe.PFN)
			assert.Equal(t, int64(0x1234), pe.Off)
			assert.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

func TestLossReasonString(t *testing.T) {
	for r := LostNotWritten; r < numLossReasons; r++ {
		assert.NotContains(t, r.String(), "LossReason(")
	}
	assert.Equal(t, "LossReason(99)", LossReason(99).String())
	err := &PageError{PFN: 5, Off: 0x2000, Err: &LostError{Reason: LostTruncated, Pages: 3, Err: ErrTruncated}}
	assert.Equal(t, "diskdump: PFN 5 at offset 0x2000: 3 page(s) lost: beyond the end of the device: truncated", err.Error())
	assert.ErrorIs(t, err, ErrTruncated)
}

// The fuzz targets take a compact encoding of a partition image, so that
// inputs stay a few KiB and the fuzzer's minimizer (which tries removing
// every byte) stays fast: byte 0 selects the block size (bit 0: 16 KiB,
// else 4 KiB), then each block is a little-endian u16 length and that many
// bytes, zero-padded to the block size. A length beyond the rest of the
// input ends the image there, inside a block (a truncated image). At most
// rdrFuzzMaxBlocks blocks.
const rdrFuzzMaxBlocks = 256

func rdrExpand(in []byte) []byte {
	if len(in) == 0 {
		return nil
	}
	bs := 4096
	if in[0]&1 == 1 {
		bs = 16384
	}
	in = in[1:]
	var img []byte
	for blocks := 0; len(in) >= 2 && blocks < rdrFuzzMaxBlocks; blocks++ {
		n := int(binary.LittleEndian.Uint16(in))
		in = in[2:]
		if n > len(in) {
			return append(img, in[:min(len(in), bs)]...)
		}
		n = min(n, bs)
		img = append(img, in[:n]...)
		img = append(img, make([]byte, bs-n)...)
		in = in[n:]
	}
	return img
}

// rdrCompact is the inverse of rdrExpand for an image of blocks of bs
// bytes (trailing zeros of each block are dropped).
func rdrCompact(img []byte, bs int) []byte {
	out := []byte{0}
	if bs == 16384 {
		out[0] = 1
	}
	for len(img) > 0 {
		if len(img) < bs {
			out = binary.LittleEndian.AppendUint16(out, 0xffff)
			return append(out, img...)
		}
		b := bytes.TrimRight(img[:bs], "\x00")
		out = binary.LittleEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
		img = img[bs:]
	}
	return out
}

// rdrFuzzSeeds are compact partitions for the fuzz targets: the first
// blocks of each golden sample (headers, bitmaps and some data) and
// hand-built dumps of every mode with few, mostly compressible pages.
func rdrFuzzSeeds(f testing.TB) [][]byte {
	var seeds [][]byte
	for _, name := range rdrSampleNames {
		gz, err := os.Open(filepath.Join(rdrSampleDir, name+".part.gz"))
		if err != nil {
			continue
		}
		zr, err := gzip.NewReader(gz)
		require.NoError(f, err)
		b := make([]byte, 6*4096)
		_, err = io.ReadFull(zr, b)
		require.NoError(f, err)
		gz.Close()
		clear(b[:4096]) // block 0 matters only for swap mode
		seeds = append(seeds, rdrCompact(b, 4096), rdrCompact(b[:5*4096+1000], 4096))
	}
	small := [][2]uint64{{0, 1}, {2, 4}, {6, 7}, {9, 10}}
	for _, sp := range []rdrSpec{
		{maxPFN: 20, ram: small},
		{maxPFN: 20, ram: small, twoBitmaps: true, exclude: func(pfn uint64) bool { return pfn == 3 }},
		{maxPFN: 20, ram: small, compress: true},
		{maxPFN: 20, ram: small, compress: true, arch: ArchPPC64, exclude: func(pfn uint64) bool { return pfn == 3 }},
		{maxPFN: 20, ram: small, compress: true, arch: ArchI386, status: StatusInProgress},
		{maxPFN: 20, ram: [][2]uint64{{0, 1}, {3, 4}}, compress: true, arch: ArchIA64},
		{maxPFN: 20, ram: small, status: StatusIncompleted},
	} {
		d := rdrBuild(f, sp)
		if sp.status == StatusIncompleted {
			d.setHeader("written_blocks", uint32(d.first))
		}
		clear(d.img[:d.bs]) // block 0 matters only for swap mode
		seeds = append(seeds, rdrCompact(d.img, d.bs))
	}
	d := rdrBuild(f, rdrSpec{maxPFN: 20, ram: small, compress: true, spare: 1})
	copy(d.img, rdrSwapBlock(d.bs, d.order, uint64(len(d.img)/d.bs)))
	seeds = append(seeds, rdrCompact(d.img, d.bs))
	// A damaged record header in a complete compressed dump: the stream is
	// resynchronised at the next record.
	d = rdrBuild(f, rdrSpec{maxPFN: 20, ram: [][2]uint64{{0, 1}, {2, 8}, {9, 10}}, compress: true})
	d.setRec(d.pfns[2], pageRecord{size: 0})
	clear(d.img[:d.bs])
	seeds = append(seeds, rdrCompact(d.img, d.bs))
	// Output of the kernel-exact writer: a 48-page machine of mostly zero
	// pages, dumped raw, compressed, partial, and cut by a power failure.
	for _, c := range []struct {
		compress bool
		level    int
		cut      int64
	}{{false, 0, 0}, {true, 0, 0}, {false, 1, 0}, {true, 19, 0}, {false, 0, 20}, {true, 0, 7}} {
		img := make([]byte, 64*4096)
		for blk := range uint64(64) {
			FillSignature(img[blk*4096:(blk+1)*4096], blk, binary.LittleEndian)
		}
		img, _, err := writeTestDump(img, 64, TestDump{Arch: ArchX86_64, MemBytes: 48 * 4096, Seed: 3, Mix: [5]int{80, 20}, NoRandomBad: true,
			Compress: c.compress, DumpLevel: c.level, StopAfter: c.cut})
		require.NoError(f, err)
		// Keep the seed small: block 0 matters only for swap mode, and one
		// unwritten (signature) block after the data is enough.
		kept := false
		for blk := uint64(0); blk < 64; blk++ {
			b := img[blk*4096 : (blk+1)*4096]
			if blk == 0 || (IsSignatureBlock(b, blk, binary.LittleEndian) && (kept || blk < 5)) {
				clear(b)
			} else if IsSignatureBlock(b, blk, binary.LittleEndian) {
				kept = true
			}
		}
		seeds = append(seeds, rdrCompact(img, 4096))
	}
	return seeds
}

func TestFuzzEncoding(t *testing.T) {
	d := rdrBuild(t, rdrSpec{compress: true})
	for _, n := range []int{len(d.img), len(d.img) - 1000, 4096 * 3} {
		assert.Equal(t, d.img[:n], rdrExpand(rdrCompact(d.img[:n], d.bs)))
	}
	for _, s := range rdrFuzzSeeds(t) {
		assert.Less(t, len(s), 20<<10, "seeds stay small")
	}
}

// rdrRetained is the memory a Partition keeps, to check that it is
// bounded by the input size.
func rdrRetained(p *Partition) int {
	n := len(p.ram.b) + len(p.dense) + len(p.sub.Raw) + len(p.buf)
	if p.dumped != p.ram {
		n += len(p.dumped.b)
	}
	if p.dumpable != p.dumped {
		n += len(p.dumpable.b)
	}
	return n
}

func rdrCheckOpenErr(t *testing.T, err error) {
	var fe *FormatError
	require.ErrorAs(t, err, &fe, "%v", err)
	require.True(t, strings.HasPrefix(err.Error(), "diskdump: "), err.Error())
	require.True(t, errors.Is(err, ErrNoDump) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrTooSmall) ||
		errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnsupportedVersion), "%v", err)
}

// rdrLimitMinimize caps the fuzzer's minimization of new inputs at one
// second unless -test.fuzzminimizetime was given: minimizing a partition
// of a few KiB byte by byte otherwise takes most of a short fuzzing run
// (the executions it spends are not even counted in the progress line).
func rdrLimitMinimize(f *testing.F) {
	set := false
	flag.Visit(func(fl *flag.Flag) { set = set || fl.Name == "test.fuzzminimizetime" })
	if !set && flag.Lookup("test.fuzzminimizetime") != nil {
		require.NoError(f, flag.Set("test.fuzzminimizetime", "1s"))
	}
}

func FuzzOpenPartition(f *testing.F) {
	rdrLimitMinimize(f)
	for _, s := range rdrFuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		img := rdrExpand(in)
		p, err := OpenPartition(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			rdrCheckOpenErr(t, err)
			return
		}
		require.LessOrEqual(t, rdrRetained(p), 3*len(img), "retained memory")
		h := p.Header()
		require.Equal(t, int(h.BlockSize), p.BlockSize())
		g := p.Geometry()
		require.LessOrEqual(t, g.FirstDataBlock()*uint64(p.BlockSize()), uint64(len(img)))
		// Re-encoding the header and parsing it again gives the same value.
		blk, err := h.EncodeBlock(p.BlockSize())
		require.NoError(t, err)
		h2, err := ParseHeader(blk, HeaderCheck{DeviceBlocks: uint64(len(img)) / uint64(p.BlockSize()), BaseOff: int64(p.BlockSize()), BaseBlk: 1})
		require.NoError(t, err)
		require.Equal(t, h, h2)
		require.LessOrEqual(t, p.DumpableBitmap().Count(), p.RAMBitmap().Count())
		for pfn := range p.DumpableBitmap().All() {
			if !p.RAMBitmap().Test(pfn) || pfn >= uint64(h.MaxMapnr) {
				t.Fatalf("dumpable PFN %d is not RAM below max_mapnr %d", pfn, h.MaxMapnr)
			}
		}
		_ = p.Incomplete()
		_ = p.IsSwap()
		_ = p.SubHeader()
	})
}

func FuzzPages(f *testing.F) {
	rdrLimitMinimize(f)
	for _, s := range rdrFuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		img := rdrExpand(in)
		p, err := OpenPartition(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			rdrCheckOpenErr(t, err)
			return
		}
		var dst []byte
		var last uint64
		var yielded, lost uint64
		seen := false
		for pg, err := range p.Pages() {
			if err != nil {
				var pe *PageError
				var le *LostError
				require.ErrorAs(t, err, &pe)
				require.ErrorAs(t, err, &le)
				require.NotZero(t, le.Pages)
				require.True(t, pe.Off >= 0)
				lost += le.Pages
				continue
			}
			yielded++
			if seen {
				require.Greater(t, pg.PFN, last, "PFN order")
			}
			last, seen = pg.PFN, true
			require.True(t, p.DumpableBitmap().Test(pg.PFN))
			require.LessOrEqual(t, pg.Off+int64(len(pg.Data)), int64(len(img)), "data beyond the device")
			require.LessOrEqual(t, len(pg.Data), p.BlockSize())
			dst, err = pg.Decompress(dst)
			if err != nil {
				var pe *PageError
				require.ErrorAs(t, err, &pe)
				require.ErrorIs(t, err, ErrCorrupt)
				require.Equal(t, pg.PFN, pe.PFN)
			} else {
				require.Len(t, dst, p.BlockSize())
			}
		}
		st := p.Stats()
		require.Equal(t, yielded, st.Found)
		require.Equal(t, lost, st.Lost)
		require.Equal(t, st.Expected, st.Found+st.Lost, "%+v", st)
		require.LessOrEqual(t, rdrRetained(p), 3*len(img)+readBufSize, "retained memory")
	})
}

// rdrBenchDump builds a 64 MiB (16384-page) in-memory dump.
func rdrBenchDump(b *testing.B, compress bool) (*Partition, int64) {
	d := rdrBuild(b, rdrSpec{maxPFN: 16384, ram: [][2]uint64{{0, 16384}}, compress: compress})
	p, err := OpenPartition(bytes.NewReader(d.img), int64(len(d.img)))
	require.NoError(b, err)
	return p, int64(d.written-d.first) * int64(d.bs)
}

func benchPages(b *testing.B, compress, decompress bool) {
	p, area := rdrBenchDump(b, compress)
	b.SetBytes(area)
	b.ReportAllocs()
	dst := make([]byte, p.BlockSize())
	for range p.Pages() { // allocates the read buffer once
	}
	b.ResetTimer()
	for b.Loop() {
		var n int
		for pg, err := range p.Pages() {
			if err != nil {
				b.Fatal(err)
			}
			if decompress {
				if dst, err = pg.Decompress(dst); err != nil {
					b.Fatal(err)
				}
			}
			n++
		}
		if n != 16384 {
			b.Fatalf("%d pages", n)
		}
	}
}

// BenchmarkPagesRaw measures the iteration over an uncompressed data area
// (MB/s of partition data).
func BenchmarkPagesRaw(b *testing.B) { benchPages(b, false, false) }

// BenchmarkPagesCompressed measures the record-stream parser (MB/s of the
// compressed data area), without and with Decompress.
func BenchmarkPagesCompressed(b *testing.B) {
	b.Run("iterate", func(b *testing.B) { benchPages(b, true, false) })
	b.Run("decompress", func(b *testing.B) { benchPages(b, true, true) })
}

// TestBitmapOddities: bitmap bits the kernel never sets are ignored and
// counted; total_ram_blocks is informational (bitmap 1 is trusted, §9.5).
func TestBitmapOddities(t *testing.T) {
	t.Run("stray dense bits", func(t *testing.T) {
		d := rdrBuild(t, rdrSpec{compress: true})
		g := NewGeometry(d.bs, d.spec.maxPFN, 0, true)
		dense := NewBitmap(d.img[g.DumpBitmapBlock()*uint64(d.bs):][:g.RAMBitmapBlocks*uint64(d.bs)])
		dense.Set(uint64(len(d.pfns)) + 5)
		dense.Set(uint64(len(d.pfns)) + 6)
		p := d.open(t)
		found, errs := rdrRun(t, d, p)
		assert.Empty(t, errs)
		assert.Equal(t, d.pfns, found)
		assert.Equal(t, uint64(2), p.Stats().StrayDenseBits)
	})
	t.Run("RAM bits at or above max_mapnr", func(t *testing.T) {
		d := rdrBuild(t, rdrSpec{maxPFN: 100})
		g := NewGeometry(d.bs, d.spec.maxPFN, 0, false)
		NewBitmap(d.img[g.RAMBitmapBlock()*uint64(d.bs):][:d.bs]).Set(100)
		p := d.open(t)
		assert.False(t, p.RAMBitmap().Test(100))
		found, errs := rdrRun(t, d, p)
		assert.Empty(t, errs)
		assert.Equal(t, d.pfns, found)
	})
	t.Run("total_ram_blocks disagrees", func(t *testing.T) {
		d := rdrBuild(t, rdrSpec{})
		d.setHeader("total_ram_blocks", 7)
		p := d.open(t)
		assert.Equal(t, uint64(len(d.pfns)), p.Stats().RAMPages)
		found, errs := rdrRun(t, d, p)
		assert.Empty(t, errs)
		assert.Equal(t, d.pfns, found)
	})
}

func TestPageRecordLayout(t *testing.T) {
	assert.Equal(t, PageRecordSize, binary.Size(rawPageRecord{}))
	for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		want := rawPageRecord{PageFlags: 0x0102030405060708, Size: 41, Flags: PageCompressed | PageMappingAnon}
		b, err := binary.Append(nil, o, &want)
		require.NoError(t, err)
		r := decodePageRecord(b, o)
		assert.Equal(t, pageRecord{pageFlags: want.PageFlags, size: want.Size, flags: want.Flags}, r)
		var b2 [PageRecordSize]byte
		putRecord(b2[:], o, r)
		assert.Equal(t, b, b2[:])
	}
}
