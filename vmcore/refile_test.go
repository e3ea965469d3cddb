package vmcore

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
)

// TestWriteFile rewrites DISKDUMP and KDUMP vmcores of a compressed dump
// (taken at level 0) with dump levels: the pages kept are those
// keptByRules keeps from what each input records (a DISKDUMP file has
// page_flags, and MAPPING_ANON on zlib pages or, with StrictAnon, on
// every page; a KDUMP file neither), byte for byte; filtering the result
// again at the same level leaves out nothing more.
func TestWriteFile(t *testing.T) {
	const mem = 4 << 20
	a := diskdump.ArchX86_64
	bs := a.PageSize()
	src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: a, MemBytes: mem, Seed: 77})
	_, saved, p := matrixPartition(t, matrixCase{name: "x86_64", arch: a, mem: mem, compress: true, devExtra: 64})
	judge := oracleMissing(false) == ""
	rawRec := map[uint64]bool{} // PFNs the partition holds as raw records
	for pg, err := range p.Pages() {
		require.NoError(t, err)
		rawRec[pg.PFN] = !pg.Compressed
	}
	inputs := []struct {
		name    string
		opt     Options
		records bool
	}{
		{"diskdump", Options{Format: FormatDiskdump}, true},
		{"diskdump-strict", Options{Format: FormatDiskdump, StrictAnon: true}, true},
		{"kdump-zstd", Options{Format: FormatKdump, Compression: CompressZstd, ShareZeroPage: true}, false},
		{"kdump-lzo", Options{Format: FormatKdump, Compression: CompressLZO}, false},
	}
	for _, in := range inputs {
		mf := memfile.New(nil)
		_, err := Write(mf, p, in.opt)
		require.NoError(t, err)
		f, err := Open(bytes.NewReader(mf.Bytes()), int64(len(mf.Bytes())))
		require.NoError(t, err)
		for _, level := range []int{0, 9, 19, 31} {
			want := map[uint64]string{}
			for pfn := range saved {
				at := src.Attrs(pfn)
				// A raw page of a DISKDUMP input has MAPPING_ANON only
				// with StrictAnon.
				anonKnown := !rawRec[pfn] || (in.opt.StrictAnon && at.Anon)
				if content := expectedPage(t, src, pfn, bs, true); keptByRules(at, content, level, in.records, anonKnown) {
					want[pfn] = sha(content)
				}
			}
			for _, out := range []Options{{Format: FormatAuto}, {Format: FormatDiskdump}, {Format: FormatKdump, Compression: CompressSnappy}, {Format: FormatELF}} {
				name := fmt.Sprintf("%s/level %d/to %v", in.name, level, out.Format)
				t.Run(name, func(t *testing.T) {
					out.DumpLevel = DumpLevel(level)
					img, res := rewrite(t, f, out)
					applied, _ := DumpLevel(level).Split(in.records)
					assert.Equal(t, applied, res.DumpLevel)
					assert.Equal(t, uint64(len(saved)-len(want)), res.Excluded)
					assert.Equal(t, uint64(len(want)), res.Pages)
					assert.Zero(t, res.Lost)
					g, err := Open(bytes.NewReader(img), int64(len(img)))
					require.NoError(t, err)
					checkKept(t, g, want)
					if g.Format() == FormatELF {
						return
					}
					again, res2 := rewrite(t, g, out)
					assert.Zero(t, res2.Excluded, "a filtered file filtered again at the same level")
					assert.Equal(t, res.Pages, res2.Pages)
					g2, err := Open(bytes.NewReader(again), int64(len(again)))
					require.NoError(t, err)
					checkKept(t, g2, want)
					if judge && level == 31 {
						checkOracle(t, writeTemp(t, "vmcore", img), g.Format(), want, uint64(p.Header().MaxMapnr), bs)
					}
				})
			}
		}
	}
}

// TestWriteFileELF rewrites an ELF vmcore of a compressed dump: at level
// 0 every PFN of its PT_LOAD is a page (holes and lost pages as zeros),
// ExcludeClean leaves out the zero pages and is the only bit that
// applies; an ELF output keeps the registers and the panic task.
func TestWriteFileELF(t *testing.T) {
	judge := oracleMissing(false) == ""
	for _, a := range []diskdump.Arch{diskdump.ArchX86_64, diskdump.ArchI386, diskdump.ArchPPC64} {
		tc := matrixCase{name: a.String(), arch: a, mem: 6 << 20, compress: true, devExtra: 64}
		_, saved, p := matrixPartition(t, tc)
		mf := memfile.New(nil)
		_, err := Write(mf, p, Options{Format: FormatELF})
		require.NoError(t, err)
		in := mf.Bytes()
		f, err := Open(bytes.NewReader(in), int64(len(in)))
		require.NoError(t, err)
		zeroSum := sha(make([]byte, p.BlockSize()))
		for _, level := range []int{0, 2, 31} {
			want := map[uint64]string{}
			for pfn := range uint64(p.Header().MaxMapnr) {
				w, ok := saved[pfn]
				if !ok {
					w = zeroSum
				}
				if level&2 == 0 || w != zeroSum {
					want[pfn] = w
				}
			}
			for _, out := range []Format{FormatAuto, FormatDiskdump, FormatKdump} {
				t.Run(fmt.Sprintf("%v/level %d/to %v", a, level, out), func(t *testing.T) {
					img, res := rewrite(t, f, Options{Format: out, DumpLevel: DumpLevel(level), Compression: CompressLZO})
					assert.Equal(t, DumpLevel(level&2), res.DumpLevel)
					assert.Equal(t, DumpLevel(level&^2), res.DumpLevelUnapplied)
					g, err := Open(bytes.NewReader(img), int64(len(img)))
					require.NoError(t, err)
					checkKept(t, g, want)
					if g.Format() != FormatELF {
						assert.Equal(t, uint64(len(want)), res.Pages)
						if judge && level == 31 && a == diskdump.ArchX86_64 {
							checkOracle(t, writeTemp(t, "vmcore", img), g.Format(), want, uint64(p.Header().MaxMapnr), p.BlockSize())
						}
						return
					}
					require.Equal(t, len(f.Notes()), len(g.Notes()))
					for i, n := range f.Notes() {
						if n.Type != NTDiskdump {
							assert.Equal(t, n, g.Notes()[i], "note %d", i)
						}
					}
				})
			}
		}
	}
}

func rewrite(t *testing.T, f *File, opt Options) ([]byte, *Result) {
	t.Helper()
	mf := memfile.New(nil)
	res, err := WriteFile(mf, f, opt)
	require.NoError(t, err)
	require.NoError(t, res.Errors)
	return mf.Bytes(), res
}

// checkKept compares the pages of v with want (PFN -> SHA-256): every
// page of want is there, no other page has data (ELF: reads as zeros).
func checkKept(t *testing.T, v *File, want map[uint64]string) {
	t.Helper()
	zero := sha(make([]byte, v.PageSize()))
	buf := make([]byte, v.PageSize())
	for pfn := range v.MaxPFN() {
		got, err := v.ReadPage(pfn, buf)
		w, kept := want[pfn]
		switch {
		case kept:
			require.NoError(t, err, "PFN %d", pfn)
			require.Equal(t, w, sha(got), "PFN %d", pfn)
		case v.Format() == FormatELF:
			if err == nil {
				require.Equal(t, zero, sha(got), "PFN %d", pfn)
			}
		default:
			require.Error(t, err, "PFN %d", pfn)
		}
	}
}
