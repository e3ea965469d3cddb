package vmcore

import (
	"bytes"
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

// smallFile writes a small vmcore of format f (x86_64 unless arch is set).
func smallFile(t testing.TB, f Format, a diskdump.Arch, opt Options) ([]byte, *synthDump) {
	t.Helper()
	d := newSynthDump(t, synthConfig{arch: a, maxPFN: 40, holes: [][2]uint64{{3, 5}}, compressed: true, seed: 31,
		excluded: func(p uint64) bool { return p%7 == 6 }})
	mf := memfile.New(nil)
	opt.Format = f
	_, err := writeSource(mf, d.source(), f, opt)
	require.NoError(t, err)
	return mf.Bytes(), d
}

// requireTyped checks that err is a *FormatError or *PageError wrapping
// sentinel.
func requireTyped(t *testing.T, err error, sentinel error, msg ...any) {
	t.Helper()
	require.Error(t, err, msg...)
	var fe *diskdump.FormatError
	var pe *diskdump.PageError
	require.True(t, errors.As(err, &fe) || errors.As(err, &pe), "untyped error %v", err)
	require.ErrorIs(t, err, sentinel, msg...)
	require.Regexp(t, "^diskdump: ", err.Error())
}

// TestTruncation cuts a vmcore at every 64-byte boundary: opening
// fails with ErrTruncated until the headers, bitmaps and table are there;
// then every page reads correctly or fails with ErrTruncated (its data is
// cut).
func TestTruncation(t *testing.T) {
	for _, f := range allFormats {
		t.Run(f.String(), func(t *testing.T) {
			img, d := smallFile(t, f, diskdump.ArchX86_64, Options{})
			full, err := Open(bytes.NewReader(img), int64(len(img)))
			require.NoError(t, err)
			var opened, truncatedPages int
			// Every 64 bytes through the headers, then every 1000 bytes
			// (page data), and one byte short.
			var cuts []int
			for n := 0; n < len(img); {
				cuts = append(cuts, n)
				if n < 3*d.b {
					n += 64
				} else {
					n += 1000
				}
			}
			cuts = append(cuts, len(img)-1)
			for _, n := range cuts {
				v, err := Open(bytes.NewReader(img[:n]), int64(n))
				if err != nil {
					requireTyped(t, err, diskdump.ErrTruncated, "prefix %d", n)
					continue
				}
				opened++
				buf := make([]byte, d.b)
				for pfn := range full.MaxPFN() {
					got, err := v.ReadPage(pfn, buf)
					want, stored := d.want[pfn]
					switch {
					case err == nil && stored:
						require.Equal(t, want, got, "prefix %d PFN %d", n, pfn)
					case err == nil:
						require.Equal(t, FormatELF, f)
						require.True(t, zero.Is(got))
					case stored || (f == FormatELF && d.ram.Test(pfn)):
						requireTyped(t, err, diskdump.ErrTruncated, "prefix %d PFN %d", n, pfn)
						truncatedPages++
					}
				}
			}
			assert.Positive(t, opened)
			assert.Positive(t, truncatedPages)
		})
	}
}

// corrupt returns a copy of img with b written at off.
func corrupt(img []byte, off int64, b ...byte) []byte {
	c := bytes.Clone(img)
	copy(c[off:], b)
	return c
}

func TestOpenErrors(t *testing.T) {
	elf64, _ := smallFile(t, FormatELF, diskdump.ArchX86_64, Options{})
	elf32, _ := smallFile(t, FormatELF, diskdump.ArchI386, Options{})
	dd, _ := smallFile(t, FormatDiskdump, diskdump.ArchX86_64, Options{})
	o := binary.LittleEndian
	le32 := func(v uint32) []byte { return o.AppendUint32(nil, v) }
	le16 := func(v uint16) []byte { return o.AppendUint16(nil, v) }
	tests := []struct {
		name     string
		img      []byte
		sentinel error
	}{
		{"empty", nil, diskdump.ErrTruncated},
		{"not a dump", bytes.Repeat([]byte("x"), 5000), diskdump.ErrNoDump},
		{"ELF class", corrupt(elf64, 4, 9), diskdump.ErrCorrupt},
		{"ELF data", corrupt(elf64, 5, 0), diskdump.ErrCorrupt},
		{"ELF not core", corrupt(elf64, 16, le16(2)...), diskdump.ErrUnsupportedVersion},
		{"ELF phentsize", corrupt(elf64, 54, le16(40)...), diskdump.ErrCorrupt},
		{"ELF phoff beyond EOF", corrupt(elf64, 32, 0, 0, 0, 0, 1, 0, 0, 0), diskdump.ErrTruncated},
		{"ELF32 phoff beyond EOF", corrupt(elf32, 28, le32(1<<30)...), diskdump.ErrTruncated},
		{"ELF note size", corrupt(elf64, 64+2*56+4, le32(1<<20)...), diskdump.ErrCorrupt},
		{"ELF note segment huge", corrupt(elf64, 64+32, 0, 0, 0, 1), diskdump.ErrCorrupt},
		{"ELF no PT_LOAD", corrupt(elf64, 64+56, le32(ptNote)...), diskdump.ErrCorrupt},
		{"ELF filesz > memsz", corrupt(elf64, 64+56+32, 0, 0, 0, 0, 0, 1), diskdump.ErrCorrupt},
		{"DISKDUMP block_size", corrupt(dd, 428, le32(1000)...), diskdump.ErrCorrupt},
		{"DISKDUMP bitmap_blocks", corrupt(dd, 436, le32(7)...), diskdump.ErrCorrupt},
		{"DISKDUMP nr_cpus", corrupt(dd, 460, le32(0)...), diskdump.ErrCorrupt},
		{"DISKDUMP max_mapnr", corrupt(dd, 440, le32(1<<30)...), diskdump.ErrCorrupt},
		{"DISKDUMP bitmaps past the file", corrupt(corrupt(dd, 440, le32(1<<30)...), 436, le32(65536)...), diskdump.ErrTruncated},
		{"DISKDUMP table past the file", dd[:4*4096+10], diskdump.ErrTruncated},
		{"DISKDUMP header only", dd[:4096], diskdump.ErrTruncated},
		{"DISKDUMP short header", dd[:300], diskdump.ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(tc.img), int64(len(tc.img)))
			requireTyped(t, err, tc.sentinel)
			var fe *diskdump.FormatError
			require.ErrorAs(t, err, &fe)
			assert.GreaterOrEqual(t, fe.Off, int64(0))
		})
	}
}

func TestReadPageErrors(t *testing.T) {
	for _, f := range []Format{FormatDiskdump, FormatKdump} {
		t.Run(f.String(), func(t *testing.T) {
			img, d := smallFile(t, f, diskdump.ArchX86_64, Options{})
			_, _, _, ds, tbl := decodeTable(t, img)
			o := binary.LittleEndian
			// The first zlib page and the first raw page.
			var zi, ri = -1, -1
			for i, e := range ds {
				if e.flags&PageDescCompressed != 0 && zi < 0 {
					zi = i
				}
				if e.flags&PageDescCompressed == 0 && ri < 0 {
					ri = i
				}
			}
			require.GreaterOrEqual(t, zi, 0)
			require.GreaterOrEqual(t, ri, 0)
			desc := func(i int) int64 { return tbl + int64(i)*pageDescSize }
			tests := []struct {
				name     string
				img      []byte
				pfn      uint64
				sentinel error
			}{
				{"size 0", corrupt(img, desc(zi)+8, 0, 0, 0, 0), ds[zi].pfn, diskdump.ErrCorrupt},
				{"size > page", corrupt(img, desc(zi)+8, o.AppendUint32(nil, 4097)...), ds[zi].pfn, diskdump.ErrCorrupt},
				{"raw page short", corrupt(img, desc(ri)+8, o.AppendUint32(nil, 4000)...), ds[ri].pfn, diskdump.ErrCorrupt},
				{"offset in table", corrupt(img, desc(zi), o.AppendUint64(nil, uint64(tbl))...), ds[zi].pfn, diskdump.ErrCorrupt},
				{"offset past EOF", corrupt(img, desc(zi), o.AppendUint64(nil, uint64(len(img)-10))...), ds[zi].pfn, diskdump.ErrTruncated},
				{"offset negative", corrupt(img, desc(ri), 0, 0, 0, 0, 0, 0, 0, 0x80), ds[ri].pfn, diskdump.ErrCorrupt},
				{"bad zlib", corrupt(img, ds[zi].off+5, 0xff, 0xff, 0xff), ds[zi].pfn, diskdump.ErrCorrupt},
				{"bad zlib header", corrupt(img, ds[zi].off, 0, 0), ds[zi].pfn, diskdump.ErrCorrupt},
				{"bad adler32", corrupt(img, ds[zi].off+int64(ds[zi].size)-1, img[ds[zi].off+int64(ds[zi].size)-1]^1), ds[zi].pfn, diskdump.ErrCorrupt},
			}
			if f == FormatKdump {
				type tcase = struct {
					name     string
					img      []byte
					pfn      uint64
					sentinel error
				}
				// A zlib stream is not a valid page of the other
				// compressions; a flag of none is unsupported.
				for _, fl := range []uint32{PageDescLZO, PageDescSnappy, PageDescZstd} {
					tests = append(tests, tcase{fmt.Sprintf("zlib flagged 0x%x", fl), corrupt(img, desc(zi)+12, o.AppendUint32(nil, fl)...), ds[zi].pfn, diskdump.ErrCorrupt})
				}
				tests = append(tests, tcase{"unknown compression", corrupt(img, desc(zi)+12, o.AppendUint32(nil, 0x8)...), ds[zi].pfn, diskdump.ErrUnsupportedVersion})
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					v, err := Open(bytes.NewReader(tc.img), int64(len(tc.img)))
					require.NoError(t, err)
					_, err = v.ReadPage(tc.pfn, nil)
					requireTyped(t, err, tc.sentinel)
					var pe *diskdump.PageError
					require.ErrorAs(t, err, &pe)
					assert.Equal(t, tc.pfn, pe.PFN)
					// Other pages are unaffected.
					for pfn, want := range d.want {
						if pfn == tc.pfn {
							continue
						}
						got, err := v.ReadPage(pfn, nil)
						require.NoError(t, err, "PFN %d", pfn)
						require.Equal(t, want, got)
					}
				})
			}
		})
	}
}

// TestReadPageAllocs checks that ReadPage reuses dst and its own
// buffers.
func TestReadPageAllocs(t *testing.T) {
	if testutil.Race {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, f := range allFormats {
		t.Run(f.String(), func(t *testing.T) {
			img, d := smallFile(t, f, diskdump.ArchX86_64, Options{})
			v, err := Open(bytes.NewReader(img), int64(len(img)))
			require.NoError(t, err)
			buf := make([]byte, d.b)
			var pfns []uint64
			for p := range d.want {
				pfns = append(pfns, p)
			}
			_, err = v.ReadPage(pfns[0], buf)
			require.NoError(t, err)
			allocs := testing.AllocsPerRun(50, func() {
				for _, p := range pfns {
					if _, err := v.ReadPage(p, buf); err != nil {
						t.Fatal(err)
					}
				}
			})
			assert.Zero(t, allocs)
		})
	}
}

func FuzzOpen(f *testing.F) {
	// Small seeds (12 PFNs) keep the fuzzer's minimisation fast.
	for _, fm := range allFormats {
		for _, a := range []diskdump.Arch{diskdump.ArchX86_64, diskdump.ArchI386, diskdump.ArchPPC64} {
			d := newSynthDump(f, synthConfig{arch: a, maxPFN: 12, holes: [][2]uint64{{3, 5}}, compressed: true, seed: 32,
				excluded: func(p uint64) bool { return p == 7 }})
			mf := memfile.New(nil)
			_, err := writeSource(mf, d.source(), fm, Options{ShareZeroPage: true})
			require.NoError(f, err)
			f.Add(mf.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		v, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			var fe *diskdump.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("untyped open error %T %v", err, err)
			}
			return
		}
		if v.PageSize() < 4096 || v.PageSize() > 65536 {
			t.Fatalf("page size %d", v.PageSize())
		}
		if h := v.Header(); h != nil {
			// Re-encoding the header and parsing it again gives it back.
			blk, err := h.EncodeBlock(v.PageSize())
			if err != nil {
				t.Fatal(err)
			}
			h2, err := diskdump.ParseHeader(blk, diskdump.HeaderCheck{})
			if err != nil {
				t.Fatalf("re-encoded header does not parse: %v", err)
			}
			if h2.Signature != h.Signature || h2.Status != h.Status || h2.MaxMapnr != h.MaxMapnr || h2.BitmapBlocks != h.BitmapBlocks {
				t.Fatalf("header round trip: %+v != %+v", h2, h)
			}
		}
		buf := make([]byte, v.PageSize())
		n := 0
		for pfn := range v.Pages() {
			if n++; n > 256 {
				break
			}
			_, err := v.ReadPage(pfn, buf)
			if err == nil {
				continue
			}
			var pe *diskdump.PageError
			if !errors.As(err, &pe) || pe.PFN != pfn {
				t.Fatalf("PFN %d: untyped or misplaced error %v", pfn, err)
			}
			if errors.Is(err, ErrNotInDump) || errors.Is(err, ErrPageExcluded) {
				t.Fatalf("PFN %d listed by Pages but %v", pfn, err)
			}
		}
		for _, pfn := range []uint64{0, 1, v.MaxPFN() - 1, v.MaxPFN(), 1 << 40, ^uint64(0)} {
			if _, err := v.ReadPage(pfn, buf); err != nil {
				var pe *diskdump.PageError
				if !errors.As(err, &pe) {
					t.Fatalf("PFN %d: untyped error %v", pfn, err)
				}
			}
		}
		// Rewriting what opened never panics: an error, or a result.
		if res, err := WriteFile(discardWriterAt{}, v, Options{Format: FormatKdump, DumpLevel: 31, Workers: 1}); err == nil && res == nil {
			t.Fatal("WriteFile: no result and no error")
		}
	})
}
