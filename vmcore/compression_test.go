package vmcore

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

var allCompressions = []Compression{CompressZlib, CompressLZO, CompressSnappy, CompressZstd}

func TestParseCompression(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Compression
		flag uint32
	}{
		{"zlib", CompressZlib, 0x1},
		{"LZO", CompressLZO, 0x2},
		{" snappy ", CompressSnappy, 0x4},
		{"Zstd", CompressZstd, 0x20},
	} {
		t.Run(tc.in, func(t *testing.T) {
			c, err := ParseCompression(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, c)
			assert.Equal(t, tc.flag, c.Flag())
			back, err := ParseCompression(c.String())
			require.NoError(t, err)
			assert.Equal(t, c, back)
		})
	}
	_, err := ParseCompression("lz4")
	require.ErrorIs(t, err, diskdump.ErrUnsupportedVersion)
	assert.Equal(t, "Compression(9)", Compression(9).String())
	_, err = writeSource(memfile.New(nil), newSynthDump(t, synthConfig{arch: diskdump.ArchX86_64, maxPFN: 100, seed: 1}).source(),
		FormatKdump, Options{Compression: 9})
	require.ErrorIs(t, err, diskdump.ErrUnsupportedVersion)
}

// TestKdumpCompressions writes KDUMP files of raw and compressed dumps in
// each compression: the header status and every compressed page carry
// the compression's bit, pages that do not shrink are raw, the file is
// the same for any number of workers, and every page reads back.
func TestKdumpCompressions(t *testing.T) {
	for _, a := range []diskdump.Arch{diskdump.ArchX86_64, diskdump.ArchPPC64, diskdump.ArchIA64} {
		for _, c := range allCompressions {
			for _, compressed := range []bool{false, true} {
				for _, share := range []bool{false, true} {
					name := fmt.Sprintf("%v/%v/compressed %v/share zero %v", a, c, compressed, share)
					t.Run(name, func(t *testing.T) {
						d := newSynthDump(t, synthConfig{arch: a, maxPFN: 300, compressed: compressed, seed: 9,
							holes: [][2]uint64{{40, 50}}})
						var img []byte
						for _, w := range []int{1, 3} {
							mf := memfile.New(nil)
							res, err := writeSource(mf, d.source(), FormatKdump, Options{Compression: c, ShareZeroPage: share, Workers: w})
							require.NoError(t, err)
							require.NoError(t, res.Errors)
							if img == nil {
								img = mf.Bytes()
								continue
							}
							require.True(t, bytes.Equal(img, mf.Bytes()), "Workers %d gives another file", w)
						}
						h, _, _, ds, _ := decodeTable(t, img)
						assert.Equal(t, diskdump.Status(c.Flag()), h.Status)
						var packed, raw int
						for _, e := range ds {
							switch e.flags {
							case c.Flag():
								packed++
								assert.Less(t, e.size, uint32(d.b), "PFN %d", e.pfn)
							case 0:
								raw++
								assert.Equal(t, uint32(d.b), e.size, "PFN %d", e.pfn)
							default:
								t.Fatalf("PFN %d: flags 0x%x", e.pfn, e.flags)
							}
						}
						assert.Positive(t, packed)
						assert.Positive(t, raw, "random pages are stored raw")
						checkReadBack(t, img, d, FormatKdump)
					})
				}
			}
		}
	}
}

// TestOracleCompressions has libkdumpfile read every page of KDUMP files
// in each compression, made from partitions of the kernel-exact writer,
// and crash parse their headers.
func TestOracleCompressions(t *testing.T) {
	requireOracle(t, true)
	for _, tc := range []matrixCase{
		{name: "x86_64 raw", arch: diskdump.ArchX86_64, mem: 5 << 20, devExtra: 64},
		{name: "x86_64 compressed", arch: diskdump.ArchX86_64, mem: 5 << 20, compress: true, devExtra: 64},
	} {
		_, want, p := matrixPartition(t, tc)
		for _, c := range allCompressions {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				mf := memfile.New(nil)
				res, err := Write(mf, p, Options{Format: FormatKdump, Compression: c, ShareZeroPage: c == CompressZstd})
				require.NoError(t, err)
				require.NoError(t, res.Errors)
				path := writeTemp(t, "vmcore", mf.Bytes())
				checkOracle(t, path, FormatKdump, want, uint64(p.Header().MaxMapnr), p.BlockSize())
				v, err := Open(bytes.NewReader(mf.Bytes()), int64(len(mf.Bytes())))
				require.NoError(t, err)
				assert.Equal(t, diskdump.Status(c.Flag()), v.Header().Status)
				checkCrash(t, path, FormatKdump, v.Header(), res.Pages)
			})
		}
	}
}

// TestReadMakedumpfile reads KDUMP files that makedumpfile made (-c zlib,
// -l LZO with liblzo2's lzo1x_1_compress) from our ELF vmcore: every page
// reads back as in the partition.
func TestReadMakedumpfile(t *testing.T) {
	mk, err := exec.LookPath("makedumpfile")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("makedumpfile not installed")
		}
		t.Skip("makedumpfile not installed")
	}
	_, want, p := matrixPartition(t, matrixCase{name: "x86_64 raw", arch: diskdump.ArchX86_64, mem: 4 << 20, devExtra: 64})
	mf := memfile.New(nil)
	_, err = Write(mf, p, Options{Format: FormatELF})
	require.NoError(t, err)
	elf := writeTemp(t, "vmcore.elf", mf.Bytes())
	for _, tc := range []struct {
		flag string
		c    Compression
	}{{"-c", CompressZlib}, {"-l", CompressLZO}} {
		t.Run(tc.c.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "vmcore")
			cmd := exec.Command(mk, tc.flag, "-d", "0", elf, out)
			b, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", b)
			img, err := os.ReadFile(out)
			require.NoError(t, err)
			v, err := Open(bytes.NewReader(img), int64(len(img)))
			require.NoError(t, err)
			require.Equal(t, FormatKdump, v.Format())
			assert.NotZero(t, v.Header().Status&diskdump.Status(tc.c.Flag()), "status 0x%x", v.Header().Status)
			zero := sha(make([]byte, v.PageSize()))
			var n, packed int
			buf := make([]byte, v.PageSize())
			for pfn := range v.Pages() {
				got, err := v.ReadPage(pfn, buf)
				require.NoError(t, err, "PFN %d", pfn)
				w, ok := want[pfn]
				if !ok {
					w = zero // ELF holes: RAM pages the dump did not hold
				}
				require.Equal(t, w, sha(got), "PFN %d", pfn)
				n++
			}
			_, _, _, ds, _ := decodeTable(t, img)
			for _, e := range ds {
				if e.flags == tc.c.Flag() {
					packed++
				}
			}
			assert.Positive(t, n)
			assert.Positive(t, packed, "makedumpfile compressed pages with %v", tc.c)
		})
	}
}

// fuzzPage feeds arbitrary bytes to the KDUMP page decoder of c as the
// data of a 4 KiB page: no panic, and a page that decodes has exactly the
// page's size. The seeds are pages of the synthetic machine as the
// writer's codec stores them; what it makes of a fuzzed page decodes back
// to it.
func fuzzPage(f *testing.F, c Compression) {
	const b = 4096
	codec := newPageCodec(b, c)
	for pfn := range uint64(5) {
		if out, ok := codec.compressPage(synthPage(b, pfn, 3)); ok {
			f.Add(bytes.Clone(out))
		}
	}
	f.Add([]byte{})
	var dec pageDecoder
	f.Fuzz(func(t *testing.T, in []byte) {
		dst := make([]byte, b, b+16)
		if err := dec.decode(dst, in, c.Flag()); err != nil {
			require.ErrorIs(t, err, diskdump.ErrCorrupt)
		}
		require.Equal(t, make([]byte, 16), dst[b:b+16], "nothing written past the page")
		page := make([]byte, b)
		copy(page, in)
		out, ok := codec.compressPage(page)
		if !ok {
			return
		}
		require.NoError(t, dec.decode(dst, out, c.Flag()))
		require.Equal(t, page, dst)
	})
}

func FuzzPageZlib(f *testing.F)   { fuzzPage(f, CompressZlib) }
func FuzzPageLZO(f *testing.F)    { fuzzPage(f, CompressLZO) }
func FuzzPageSnappy(f *testing.F) { fuzzPage(f, CompressSnappy) }
func FuzzPageZstd(f *testing.F)   { fuzzPage(f, CompressZstd) }
