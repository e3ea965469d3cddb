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
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rdrSampleDir is where the golden partitions live (HELPERS.md).
var rdrSampleDir = filepath.Join("..", "..", "shared", "samples")

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
	zr, err := gzip.NewReader(f)
	require.NoError(tb, err)
	img, err := io.ReadAll(zr)
	require.NoError(tb, err)
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
		sp.twoBitmaps = true
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
	var data, z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	require.NoError(t, err)
	for _, pfn := range d.pfns {
		c := rdrPageContent(pfn, bs)
		d.content[pfn] = c
		d.off[pfn] = int64(d.first)*int64(bs) + int64(data.Len())
		if !sp.compress {
			data.Write(c)
			continue
		}
		z.Reset()
		zw.Reset(&z)
		_, err := zw.Write(c)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		rec := pageRecord{pageFlags: 0x100 + pfn, size: uint32(z.Len()), flags: PageCompressed}
		payload := z.Bytes()
		if z.Len() >= bs {
			rec.size, rec.flags, payload = uint32(bs), 0, c
		}
		if pfn%5 == 0 {
			rec.flags |= PageMappingAnon
		}
		var rh [PageRecordSize]byte
		encodePageRecord(rh[:], o, rec)
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
	encodePageRecord(d.img[d.off[pfn]:], d.order, r)
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
		{"size 0 ends the stream", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := 20
			r := d.rec(d.pfns[i])
			r.size = 0
			d.setRec(d.pfns[i], r)
			return d.img, i
		}, func(i int) []loss { return []loss{{i, LostCorrupt, 1, ErrCorrupt}, {i + 1, LostDesync, 0, ErrCorrupt}} }, func(i, k int) bool { return k >= i }, nil},
		{"size above the block size ends the stream", func(t *testing.T, d *rdrDump) ([]byte, int) {
			i := 20
			r := d.rec(d.pfns[i])
			r.size = uint32(d.bs + 1)
			d.setRec(d.pfns[i], r)
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
			d := rdrBuild(t, rdrSpec{compress: true, maxPFN: 300, spare: 2})
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
