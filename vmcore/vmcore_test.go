package vmcore

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/fixtures"
	"github.com/dumpkit/dumpkit/internal/testutil"
	"github.com/dumpkit/dumpkit/internal/zero"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var allFormats = []Format{FormatELF, FormatDiskdump, FormatKdump}

func TestParseFormat(t *testing.T) {
	for _, f := range []Format{FormatAuto, FormatELF, FormatDiskdump, FormatKdump} {
		got, err := ParseFormat(f.String())
		require.NoError(t, err)
		assert.Equal(t, f, got)
	}
	got, err := ParseFormat(" KDUMP ")
	require.NoError(t, err)
	assert.Equal(t, FormatKdump, got)
	_, err = ParseFormat("lkcd")
	assert.ErrorIs(t, err, diskdump.ErrUnsupportedVersion)
	assert.Equal(t, "Format(9)", Format(9).String())
}

// synthCases is the encoder matrix on synthetic page sequences.
func synthCases() []struct {
	name string
	cfg  synthConfig
} {
	return []struct {
		name string
		cfg  synthConfig
	}{
		{"x86_64 raw full", synthConfig{arch: diskdump.ArchX86_64, maxPFN: 1200, holes: [][2]uint64{{159, 256}, {700, 800}}, seed: 1}},
		{"x86_64 compressed", synthConfig{arch: diskdump.ArchX86_64, maxPFN: 800, holes: [][2]uint64{{159, 256}}, compressed: true, seed: 2}},
		{"x86_64 partial lost", synthConfig{arch: diskdump.ArchX86_64, maxPFN: 800, holes: [][2]uint64{{0, 1}, {159, 256}}, compressed: true, seed: 3,
			excluded: func(p uint64) bool { return p%11 == 4 }, lost: func(p uint64) bool { return p%97 == 5 }}},
		{"x86_64 interrupted", synthConfig{arch: diskdump.ArchX86_64, maxPFN: 800, compressed: true, stopAt: 555, seed: 4}},
		{"i386 compressed partial", synthConfig{arch: diskdump.ArchI386, maxPFN: 800, compressed: true, seed: 6,
			excluded: func(p uint64) bool { return p%13 == 0 }}},
		{"ppc64 raw", synthConfig{arch: diskdump.ArchPPC64, maxPFN: 800, holes: [][2]uint64{{300, 500}}, seed: 8}},
		{"ia64 compressed", synthConfig{arch: diskdump.ArchIA64, maxPFN: 600, holes: [][2]uint64{{100, 300}}, compressed: true, seed: 9}},
	}
}

// checkReadBack opens a written vmcore with Open and compares every
// page with what the dump holds.
func checkReadBack(t *testing.T, img []byte, d *synthDump, f Format) {
	t.Helper()
	v, err := Open(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	assert.Equal(t, f, v.Format())
	assert.Equal(t, d.b, v.PageSize())
	assert.Equal(t, uint64(d.hdr.MaxMapnr), v.MaxPFN())
	buf := make([]byte, d.b)
	zero := make([]byte, d.b)
	var n uint64
	for pfn := range uint64(d.hdr.MaxMapnr) {
		got, err := v.ReadPage(pfn, buf)
		want, stored := d.want[pfn]
		switch {
		case stored:
			require.NoError(t, err, "PFN %d", pfn)
			require.True(t, bytes.Equal(want, got), "PFN %d content", pfn)
			n++
		case f == FormatELF:
			require.NoError(t, err, "PFN %d", pfn)
			require.True(t, bytes.Equal(zero, got), "PFN %d: ELF hole must read as zeros", pfn)
		case d.ram.Test(pfn):
			require.ErrorIs(t, err, ErrPageExcluded, "PFN %d", pfn)
		default:
			require.ErrorIs(t, err, ErrNotInDump, "PFN %d", pfn)
		}
	}
	assert.Equal(t, uint64(len(d.want)), n)
	_, err = v.ReadPage(uint64(d.hdr.MaxMapnr), buf)
	assert.ErrorIs(t, err, ErrNotInDump)
	var pe *diskdump.PageError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, uint64(d.hdr.MaxMapnr), pe.PFN)
	if f != FormatELF {
		var listed []uint64
		for p := range v.Pages() {
			listed = append(listed, p)
		}
		assert.Len(t, listed, len(d.want))
		for _, p := range listed {
			_, ok := d.want[p]
			require.True(t, ok, "PFN %d listed but not stored", p)
		}
	}
	assert.Equal(t, d.incomplete || d.lostCount() > 0, v.Partial(), "partial flag")
}

func TestWriteSynthetic(t *testing.T) {
	for _, tc := range synthCases() {
		d := newSynthDump(t, tc.cfg)
		for _, f := range allFormats {
			t.Run(tc.name+"/"+f.String(), func(t *testing.T) {
				mf := memfile.New(nil)
				var calls int
				var last int64
				opt := Options{Format: f, Workers: 3, Progress: func(done, total int64) {
					calls++
					assert.GreaterOrEqual(t, done, last)
					assert.LessOrEqual(t, done, total)
					last = done
				}}
				res, err := writeSource(mf, d.source(), f, opt)
				require.NoError(t, err)
				img := mf.Bytes()
				assert.Equal(t, int64(len(img)), res.Size)
				assert.Equal(t, uint64(len(d.want)), res.Pages)
				assert.Equal(t, d.lostCount(), res.Lost)
				assert.Equal(t, d.incomplete || d.lostCount() > 0, res.Incomplete)
				if d.lostCount() > d.dumpable.Count()-uint64(len(d.recs)) {
					var pe *diskdump.PageError
					assert.True(t, errors.As(res.Errors, &pe), "lost pages are reported")
				}
				assert.Positive(t, calls)
				assert.Equal(t, last, d.source().total)
				assert.LessOrEqual(t, allocatedEstimate(img, d.b), estimateSize(d.source(), f))
				checkReadBack(t, img, d, f)
			})
		}
	}
}

// allocatedEstimate is the number of bytes of img a sparse file would
// allocate: blocks that are not all zero.
func allocatedEstimate(img []byte, b int) int64 {
	var n int64
	for i := 0; i < len(img); i += b {
		blk := img[i:min(i+b, len(img))]
		if !zero.Is(blk) {
			n += int64(b)
		}
	}
	return n
}

// sample is a golden partition of the shared samples folder.
type sample struct {
	name  string
	image []byte
	pages map[uint64]string // PFN -> SHA-256 of every recoverable page
}

var sampleDir = fixtures.SampleDir()

var sampleNames = []string{"raw-x86_64-dl0-bo2", "cmp-x86_64-dl0-bo2", "partial-cmp-dl19-bo3"}

var sampleCache = map[string]*sample{}

func loadSample(t testing.TB, name string) *sample {
	t.Helper()
	if s, ok := sampleCache[name]; ok {
		return s
	}
	gz := filepath.Join(sampleDir, name+".part.gz")
	f, err := os.Open(gz)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("golden sample %s not found in %s", name, sampleDir)
	}
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	img, err := io.ReadAll(zr)
	require.NoError(t, err)
	s := &sample{name: name, image: img, pages: map[uint64]string{}}
	pb, err := os.ReadFile(filepath.Join(sampleDir, name+".pages"))
	require.NoError(t, err)
	for line := range strings.SplitSeq(strings.TrimSpace(string(pb)), "\n") {
		pfnStr, sum, ok := strings.Cut(line, " ")
		require.True(t, ok, line)
		pfn, err := strconv.ParseUint(pfnStr, 10, 64)
		require.NoError(t, err)
		s.pages[pfn] = sum
	}
	sampleCache[name] = s
	return s
}

func (s *sample) open(t testing.TB) *diskdump.Partition {
	t.Helper()
	p, err := diskdump.OpenPartition(bytes.NewReader(s.image), int64(len(s.image)))
	require.NoError(t, err)
	return p
}

// checkPages reads every PFN of a vmcore with Open: the
// recovered pages with their SHA-256, the rest absent (DISKDUMP, KDUMP) or
// zero (ELF).
func checkPages(t *testing.T, img []byte, f Format, want map[uint64]string, ram *diskdump.Bitmap, maxPFN uint64) {
	t.Helper()
	v, err := Open(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	require.Equal(t, f, v.Format())
	require.Equal(t, maxPFN, v.MaxPFN())
	zero := sha(make([]byte, v.PageSize()))
	buf := make([]byte, v.PageSize())
	for pfn := range maxPFN {
		got, err := v.ReadPage(pfn, buf)
		w, ok := want[pfn]
		switch {
		case ok:
			require.NoError(t, err, "PFN %d", pfn)
			require.Equal(t, w, sha(got), "PFN %d", pfn)
		case f == FormatELF:
			require.NoError(t, err, "PFN %d", pfn)
			require.Equal(t, zero, sha(got), "PFN %d", pfn)
		case ram.Test(pfn):
			require.ErrorIs(t, err, ErrPageExcluded, "PFN %d", pfn)
		default:
			require.ErrorIs(t, err, ErrNotInDump, "PFN %d", pfn)
		}
	}
	if f != FormatELF {
		assert.Equal(t, uint64(len(want)), v.NumPages())
	}
}

// sampleFiles caches the vmcore of each sample and format, shared by
// the tests that read it (KDUMP compression is slow under -race).
var sampleFiles = map[string]struct {
	img []byte
	res *Result
}{}

func sampleFile(t *testing.T, s *sample, p *diskdump.Partition, f Format) ([]byte, *Result) {
	t.Helper()
	key := s.name + "/" + f.String()
	if c, ok := sampleFiles[key]; ok {
		return c.img, c.res
	}
	mf := memfile.New(nil)
	res, err := Write(mf, p, Options{Format: f})
	require.NoError(t, err)
	sampleFiles[key] = struct {
		img []byte
		res *Result
	}{mf.Bytes(), res}
	return mf.Bytes(), res
}

func TestWriteSamples(t *testing.T) {
	for _, name := range sampleNames {
		for _, f := range allFormats {
			t.Run(name+"/"+f.String(), func(t *testing.T) {
				s := loadSample(t, name)
				p := s.open(t)
				mf := memfile.New(nil)
				var last, total int64
				progress := func(done, tot int64) {
					assert.GreaterOrEqual(t, done, last, "progress goes forward")
					assert.LessOrEqual(t, done, tot)
					last, total = done, tot
				}
				res, err := Write(mf, p, Options{Format: f, Progress: progress})
				require.NoError(t, err)
				require.NoError(t, res.Errors)
				assert.Equal(t, int64(p.Header().WrittenBlocks)*int64(p.BlockSize()), total, "total is the extent the kernel wrote")
				assert.Equal(t, total, last)
				sampleFiles[name+"/"+f.String()] = struct {
					img []byte
					res *Result
				}{mf.Bytes(), res}
				assert.Equal(t, uint64(len(s.pages)), res.Pages)
				assert.Equal(t, int64(len(mf.Bytes())), res.Size)
				assert.Equal(t, p.Incomplete(), res.Incomplete)
				assert.LessOrEqual(t, allocatedEstimate(mf.Bytes(), p.BlockSize()), EstimateSize(p, Options{Format: f}))
				checkPages(t, mf.Bytes(), f, s.pages, p.RAMBitmap(), uint64(p.Header().MaxMapnr))
			})
		}
	}
}

func TestDefaultFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Format
	}{
		{"raw-x86_64-dl0-bo2", FormatELF},
		{"cmp-x86_64-dl0-bo2", FormatDiskdump},
		{"partial-cmp-dl19-bo3", FormatDiskdump},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := loadSample(t, tc.name).open(t)
			assert.Equal(t, tc.want, DefaultFormat(p))
			mf := memfile.New(nil)
			res, err := Write(mf, p, Options{})
			require.NoError(t, err)
			assert.Equal(t, tc.want, res.Format)
			v, err := Open(bytes.NewReader(mf.Bytes()), int64(len(mf.Bytes())))
			require.NoError(t, err)
			assert.Equal(t, tc.want, v.Format())
		})
	}
}

// failingWriterAt fails every write that reaches byte failAt or later.
type failingWriterAt struct {
	writerAtBuffer
	failAt int64
}

var errInjected = errors.New("injected write error")

func (w *failingWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > w.failAt {
		return 0, errInjected
	}
	return w.writerAtBuffer.WriteAt(p, off)
}

func TestWriteErrors(t *testing.T) {
	d := newSynthDump(t, synthConfig{arch: diskdump.ArchX86_64, maxPFN: 800, compressed: true, seed: 41})
	for _, f := range allFormats {
		for _, at := range []int64{0, 100, 20000, 1 << 20} {
			t.Run(fmt.Sprintf("%v/%d", f, at), func(t *testing.T) {
				w := &failingWriterAt{failAt: at}
				_, err := writeSource(w, d.source(), f, Options{Workers: 4})
				require.ErrorIs(t, err, errInjected)
				assert.Regexp(t, "^diskdump: ", err.Error())
			})
		}
	}
}

// discardWriterAt accepts and drops every write.
type discardWriterAt struct{}

func (discardWriterAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// TestWriteAllocations checks that the writers do not allocate per
// page: converting a sample of about 4000 pages costs a bounded number of
// allocations (buffers, bitmaps, headers), plus what compress/flate
// allocates when pages are inflated.
func TestWriteAllocations(t *testing.T) {
	if testutil.Race {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, name := range []string{"raw-x86_64-dl0-bo2", "cmp-x86_64-dl0-bo2"} {
		for _, f := range allFormats {
			t.Run(name+"/"+f.String(), func(t *testing.T) {
				s := loadSample(t, name)
				p := s.open(t)
				allocs := testing.AllocsPerRun(3, func() {
					if _, err := Write(discardWriterAt{}, p, Options{Format: f, Workers: 1}); err != nil {
						t.Fatal(err)
					}
				})
				limit := 150.0
				if f == FormatELF && p.Header().Status.Compressed() {
					// Inflating costs compress/flate about one allocation
					// per page (its dynamic Huffman tables), nothing of ours.
					limit += 1.1 * float64(len(s.pages))
				}
				assert.Less(t, allocs, limit, "pages: %d", len(s.pages))
			})
		}
	}
}

// benchPartitions caches the benchmark partitions: a 128 MiB x86_64
// synthetic machine dumped raw and compressed by WriteDump, in memory.
var benchPartitions = map[bool][]byte{}

func benchPartition(b *testing.B, compress bool) []byte {
	if img, ok := benchPartitions[compress]; ok {
		return img
	}
	const mem = 128 << 20
	src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: mem, Seed: 5})
	cfg := kernel.DefaultConfig(diskdump.ArchX86_64)
	cfg.Compress, cfg.SampleRate = compress, -1
	g := diskdump.NewGeometry(4096, mem/4096, mem/4096, compress)
	dev := g.TotalBlocks() + g.RAMBitmapBlocks + 16
	mf := memfile.New(make([]byte, dev*4096))
	res, err := kernel.WriteDump(mf, dev, src, cfg)
	require.NoError(b, err)
	require.Equal(b, kernel.OutcomeCompleted, res.Outcome)
	benchPartitions[compress] = mf.Bytes()
	return mf.Bytes()
}

// benchWrite measures Write from an in-memory partition into a
// discarding output: MB/s are bytes of partition consumed per second;
// cpu-ms/op the CPU time of the process per op (all goroutines; less
// noisy than ns/op on a shared machine); file-bytes is the size of the
// vmcore (ELF: the bytes written, not the sparse length).
func benchWrite(b *testing.B, opt Options, compress bool) {
	img := benchPartition(b, compress)
	p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(b, err)
	b.SetBytes(int64(p.Header().WrittenBlocks) * 4096)
	b.ReportAllocs()
	var size int64
	cpu0 := cpuTime(b)
	for b.Loop() {
		var w countingWriterAt
		res, err := Write(&w, p, opt)
		if err != nil {
			b.Fatal(err)
		}
		size = res.Size
		if opt.Format == FormatELF {
			size = w.n
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(size), "file-bytes")
}

// cpuTime is the user and system CPU time of the process.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countingWriterAt discards what is written and counts the bytes.
type countingWriterAt struct{ n int64 }

func (w *countingWriterAt) WriteAt(p []byte, _ int64) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// BenchmarkWrite converts the raw and the compressed benchmark partition
// into each format, KDUMP in each compression (kdump is zlib).
func BenchmarkWrite(b *testing.B) {
	cases := []struct {
		name string
		opt  Options
	}{
		{"elf", Options{Format: FormatELF}},
		{"diskdump", Options{Format: FormatDiskdump}},
		{"kdump", Options{Format: FormatKdump}},
		{"kdump-lzo", Options{Format: FormatKdump, Compression: CompressLZO}},
		{"kdump-snappy", Options{Format: FormatKdump, Compression: CompressSnappy}},
		{"kdump-zstd", Options{Format: FormatKdump, Compression: CompressZstd}},
		{"kdump-zstd-dl31", Options{Format: FormatKdump, Compression: CompressZstd, DumpLevel: 31}},
	}
	for _, tc := range cases {
		for _, compress := range []bool{false, true} {
			name := "raw"
			if compress {
				name = "compressed"
			}
			b.Run(tc.name+"/"+name, func(b *testing.B) { benchWrite(b, tc.opt, compress) })
		}
	}
}

// BenchmarkReadPage reads every page of a DISKDUMP vmcore in memory.
func BenchmarkReadPage(b *testing.B) {
	img := benchPartition(b, true)
	p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(b, err)
	mf := memfile.New(nil)
	_, err = Write(mf, p, Options{Format: FormatDiskdump})
	require.NoError(b, err)
	v, err := Open(bytes.NewReader(mf.Bytes()), int64(len(mf.Bytes())))
	require.NoError(b, err)
	var pfns []uint64
	for pfn := range v.Pages() {
		pfns = append(pfns, pfn)
	}
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(pfns)) * 4096)
	b.ReportAllocs()
	for b.Loop() {
		for _, pfn := range pfns {
			if _, err := v.ReadPage(pfn, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
