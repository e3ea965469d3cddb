package vmcore

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/zero"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPageDescSize(t *testing.T) {
	assert.Equal(t, pageDescSize, binary.Size(rawPageDesc{}))
	assert.Equal(t, kdumpSubHeader64Size, binary.Size(rawKdumpSubHeader64{}))
	assert.Equal(t, kdumpSubHeader32Size, binary.Size(rawKdumpSubHeader32{}))
}

// descEntry is a decoded page_desc with its PFN.
type descEntry struct {
	pfn       uint64
	off       int64
	size      uint32
	flags     uint32
	pageFlags uint64
}

// decodeTable decodes a DISKDUMP/KDUMP file by hand (not with
// Open): header, bitmaps and every descriptor.
func decodeTable(t *testing.T, img []byte) (*diskdump.Header, *diskdump.Bitmap, *diskdump.Bitmap, []descEntry, int64) {
	t.Helper()
	h, err := diskdump.ParseHeader(img, diskdump.HeaderCheck{})
	require.NoError(t, err)
	b := int64(h.BlockSize)
	r := int64(diskdump.BitmapBlocksFor(uint64(h.MaxMapnr), int(b)))
	require.Equal(t, uint32(2*r), h.BitmapBlocks, "always two bitmaps")
	s := int64(h.SubHdrSize)
	bm1 := diskdump.NewBitmap(img[(1+s)*b : (1+s+r)*b])
	bm2 := diskdump.NewBitmap(img[(1+s+r)*b : (1+s+2*r)*b])
	tbl := (1 + s + 2*r) * b
	o := h.Layout.Order
	var ds []descEntry
	i := tbl
	for pfn := range bm2.All() {
		e := img[i : i+24]
		ds = append(ds, descEntry{pfn, int64(o.Uint64(e)), o.Uint32(e[8:]), o.Uint32(e[12:]), o.Uint64(e[16:])})
		i += 24
	}
	return h, bm1, bm2, ds, tbl
}

var layoutDumps = map[diskdump.Arch]*synthDump{}

func layoutDump(t *testing.T, a diskdump.Arch) *synthDump {
	if d, ok := layoutDumps[a]; ok {
		return d
	}
	d := newSynthDump(t, synthConfig{arch: a, maxPFN: 400, holes: [][2]uint64{{100, 200}}, compressed: true, seed: 21,
		excluded: func(p uint64) bool { return p%9 == 2 }, lost: func(p uint64) bool { return p == 234 }})
	layoutDumps[a] = d
	return d
}

func TestDiskdumpLayout(t *testing.T) {
	for _, a := range []diskdump.Arch{diskdump.ArchX86_64, diskdump.ArchPPC64, diskdump.ArchI386} {
		for _, strict := range []bool{false, true} {
			name := a.String()
			if strict {
				name += "/StrictAnon"
			}
			t.Run(name, func(t *testing.T) {
				d := layoutDump(t, a)
				mf := memfile.New(nil)
				const mask = 0x40 // page_flags bit of every 4th PFN (pfn<<4)
				res, err := writeSource(mf, d.source(), FormatDiskdump, Options{StrictAnon: strict, UncompressedMask: mask})
				require.NoError(t, err)
				img := mf.Bytes()
				h, bm1, bm2, ds, tbl := decodeTable(t, img)

				want := *d.hdr
				want.Version = 1
				want.BitmapBlocks = uint32(2 * diskdump.BitmapBlocksFor(uint64(want.MaxMapnr), d.b))
				assert.Equal(t, &want, h, "header copied, header_version 1, two bitmaps")
				assert.Equal(t, d.sub.Raw, img[d.b:2*d.b], "sub-header copied")
				assert.Equal(t, d.ram.Bytes()[:len(bm1.Bytes())], bm1.Bytes(), "bitmap 1 copied")
				assert.Equal(t, uint64(len(d.want)), bm2.Count())
				assert.Equal(t, uint64(len(d.want)), res.Pages)
				assert.False(t, bm2.Test(234), "lost page absent")
				assert.Equal(t, d.dumpable.Count()-uint64(len(d.want)), res.Lost)
				assert.True(t, res.Incomplete)

				// Data follows the table reserved for every dumpable page,
				// packed in PFN order.
				next := tbl + int64(d.dumpable.Count())*pageDescSize
				recs := map[uint64]diskdump.Page{}
				for _, r := range d.recs {
					if r.err == nil {
						recs[r.pg.PFN] = r.pg
					}
				}
				var masked, anonRaw int
				for _, e := range ds {
					rec, ok := recs[e.pfn]
					require.True(t, ok, "PFN %d stored but not in the dump", e.pfn)
					require.Equal(t, next, e.off, "PFN %d", e.pfn)
					next += int64(e.size)
					assert.Equal(t, rec.PageFlags, e.pageFlags)
					data := img[e.off : e.off+int64(e.size)]
					anon := rec.Flags&PageDescMappingAnon != 0
					switch {
					case rec.PageFlags&mask != 0:
						masked++
						assert.Equal(t, uint32(d.b), e.size, "-P page stored raw")
						assert.Equal(t, d.want[e.pfn], data)
						assert.Zero(t, e.flags&PageDescCompressed)
					case rec.Compressed:
						assert.Equal(t, rec.Data, data, "zlib record copied as it is")
						assert.NotZero(t, e.flags&PageDescCompressed)
					default:
						assert.Equal(t, d.want[e.pfn], data)
						assert.Zero(t, e.flags&PageDescCompressed)
					}
					compressed := e.flags&PageDescCompressed != 0
					if anon && !compressed {
						anonRaw++
					}
					assert.Equal(t, anon && (compressed || strict), e.flags&PageDescMappingAnon != 0,
						"PFN %d: MAPPING_ANON kept on zlib pages, on raw pages only when strict", e.pfn)
				}
				assert.Positive(t, masked)
				assert.Positive(t, anonRaw)
				assert.Equal(t, next, int64(len(img)))
			})
		}
	}
}

func TestKdumpLayout(t *testing.T) {
	for _, tc := range []struct {
		name       string
		arch       diskdump.Arch
		compressed bool
		shareZero  bool
	}{
		{"x86_64 raw input", diskdump.ArchX86_64, false, false},
		{"x86_64 zlib input shared zero", diskdump.ArchX86_64, true, true},
		{"i386 raw input shared zero", diskdump.ArchI386, false, true},
		{"ppc64 zlib input", diskdump.ArchPPC64, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newSynthDump(t, synthConfig{arch: tc.arch, maxPFN: 400, holes: [][2]uint64{{100, 200}}, compressed: tc.compressed, seed: 22,
				excluded: func(p uint64) bool { return p%9 == 2 }})
			mf := memfile.New(nil)
			res, err := writeSource(mf, d.source(), FormatKdump, Options{ShareZeroPage: tc.shareZero, Workers: 2})
			require.NoError(t, err)
			img := mf.Bytes()
			h, bm1, bm2, ds, tbl := decodeTable(t, img)
			assert.Equal(t, diskdump.KdumpSignature, h.Signature)
			assert.Equal(t, int32(6), h.Version)
			assert.Equal(t, KdumpStatusZlib|KdumpStatusIncomplete, h.Status)
			assert.Equal(t, d.hdr.Sec, h.Sec)
			assert.Equal(t, d.hdr.Frac/1000, h.Frac, "timestamp in µs")
			assert.Equal(t, int32(1), h.SubHdrSize)
			assert.Equal(t, d.hdr.Utsname, h.Utsname)
			assert.Equal(t, d.hdr.NrCPUs, h.NrCPUs)
			assert.Equal(t, d.ram.Count(), bm1.Count())
			assert.Equal(t, uint64(len(d.want)), bm2.Count())

			ks, err := DecodeKdumpSubHeader(img[d.b:2*d.b], h.Layout)
			require.NoError(t, err)
			assert.Equal(t, uint64(400), ks.MaxMapnr64)
			assert.Zero(t, ks.PhysBase)
			assert.Zero(t, ks.DumpLevel)
			info := string(img[ks.OffsetVmcoreinfo : ks.OffsetVmcoreinfo+ks.SizeVmcoreinfo])
			assert.Equal(t, "OSRELEASE=2.6.9-89.ELsmp\nPAGESIZE=4096\nCRASHTIME=1246291200\n", info)
			o := h.Layout.Order
			if tc.arch == diskdump.ArchI386 {
				// 4-byte aligned 64-bit members (doc/FORMAT.md §10.3).
				assert.Equal(t, uint64(400), o.Uint64(img[d.b+72:]))
				assert.Equal(t, uint64(d.b+80), o.Uint64(img[d.b+20:]), "offset_vmcoreinfo")
			} else {
				assert.Equal(t, uint64(400), o.Uint64(img[d.b+96:]))
				assert.Equal(t, uint64(d.b+104), o.Uint64(img[d.b+32:]), "offset_vmcoreinfo")
			}

			recs := map[uint64]diskdump.Page{}
			for _, r := range d.recs {
				recs[r.pg.PFN] = r.pg
			}
			dataStart := tbl + int64(d.dumpable.Count())*pageDescSize
			var zeros, compressed uint64
			for _, e := range ds {
				assert.Zero(t, e.pageFlags)
				assert.Contains(t, []uint32{0, 1}, e.flags)
				data := img[e.off : e.off+int64(e.size)]
				page := data
				if e.flags == 1 {
					compressed++
					page = make([]byte, d.b)
					require.NoError(t, diskdump.Inflate(page, data))
					assert.Less(t, int(e.size), d.b)
					if rec := recs[e.pfn]; rec.Compressed && e.off != dataStart {
						assert.Equal(t, rec.Data, data, "zlib record copied")
					}
				} else {
					assert.Equal(t, uint32(d.b), e.size)
				}
				assert.Equal(t, d.want[e.pfn], page, "PFN %d", e.pfn)
				if e.off == dataStart && tc.shareZero {
					zeros++
				}
			}
			assert.Positive(t, compressed)
			if tc.shareZero {
				assert.Positive(t, zeros)
				assert.Equal(t, zeros, res.ZeroPages)
				for _, e := range ds {
					if zero.Is(d.want[e.pfn]) {
						assert.Equal(t, dataStart, e.off, "PFN %d zero page shares the first data", e.pfn)
					}
				}
			} else {
				assert.Zero(t, res.ZeroPages)
			}

			// Any number of workers gives the same file.
			for _, w := range []int{1, 3} {
				mf2 := memfile.New(nil)
				_, err := writeSource(mf2, d.source(), FormatKdump, Options{ShareZeroPage: tc.shareZero, Workers: w})
				require.NoError(t, err)
				require.True(t, bytes.Equal(img, mf2.Bytes()), "Workers %d", w)
			}
		})
	}
}

func TestKdumpSubHeaderRoundTrip(t *testing.T) {
	k := KdumpSubHeader{PhysBase: 0x1000, DumpLevel: 31, StartPFN: 5, EndPFN: 500, OffsetVmcoreinfo: 4200,
		SizeVmcoreinfo: 77, OffsetNote: 4300, SizeNote: 900, OffsetEraseinfo: 9000, SizeEraseinfo: 12, MaxMapnr64: 1 << 33}
	for _, l := range []diskdump.Layout{diskdump.LayoutOf(diskdump.ArchX86_64), diskdump.LayoutOf(diskdump.ArchPPC64), diskdump.LayoutOf(diskdump.ArchI386)} {
		t.Run(l.String(), func(t *testing.T) {
			b := make([]byte, 128)
			require.NoError(t, k.Encode(b, l))
			got, err := DecodeKdumpSubHeader(b, l)
			require.NoError(t, err)
			assert.Equal(t, &k, got)
			_, err = DecodeKdumpSubHeader(b[:50], l)
			assert.ErrorIs(t, err, diskdump.ErrTruncated)
		})
	}
}

// TestKdumpUncompressedMask checks -P on KDUMP output: matching pages are
// stored raw, from zlib records and raw pages alike.
func TestKdumpUncompressedMask(t *testing.T) {
	d := newSynthDump(t, synthConfig{arch: diskdump.ArchX86_64, maxPFN: 500, compressed: true, seed: 23})
	const mask = 0x40
	for _, workers := range []int{1, 2} {
		mf := memfile.New(nil)
		_, err := writeSource(mf, d.source(), FormatKdump, Options{UncompressedMask: mask, Workers: workers})
		require.NoError(t, err)
		_, _, _, ds, _ := decodeTable(t, mf.Bytes())
		recs := map[uint64]diskdump.Page{}
		for _, r := range d.recs {
			recs[r.pg.PFN] = r.pg
		}
		var masked int
		for _, e := range ds {
			if recs[e.pfn].PageFlags&mask != 0 {
				masked++
				assert.Zero(t, e.flags, "PFN %d", e.pfn)
				assert.Equal(t, uint32(d.b), e.size)
				assert.Equal(t, d.want[e.pfn], mf.Bytes()[e.off:e.off+int64(e.size)])
			}
		}
		assert.Positive(t, masked)
	}
}
