package diskdump_test

// Micro-benchmarks of the hot paths that savecore and dumpformat spend their
// CPU in (BENCHMARKS.md §6): header decode, bitmap conversion and vmcore
// writing. Signature fill/check and record parsing (Pages) are benchmarked
// next to their tests (signature_test.go, reader_test.go), WriteDump in
// writer_test.go. Run with
//
//	go test ./diskdump -run '^$' -bench . -benchmem

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/vmcore"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

// benchMem is the RAM of the benchmark machine: 64 MiB, 16384 pages.
const benchMem = 64 << 20

var benchParts struct {
	once sync.Once
	img  map[bool][]byte // compressed -> partition image
	err  error
}

// benchPartition returns a rehearsal dump of a 64 MiB synthetic x86_64
// machine with the default page mix, raw or compressed, in memory.
func benchPartition(b *testing.B, compress bool) *diskdump.Partition {
	b.Helper()
	benchParts.once.Do(func() {
		benchParts.img = map[bool][]byte{}
		for _, c := range []bool{false, true} {
			img, err := benchDump(c)
			if err != nil {
				benchParts.err = err
				return
			}
			benchParts.img[c] = img
		}
	})
	require.NoError(b, benchParts.err)
	img := benchParts.img[compress]
	p, err := diskdump.OpenPartition(memfile.New(img), int64(len(img)))
	require.NoError(b, err)
	return p
}

func benchDump(compress bool) ([]byte, error) {
	a := diskdump.ArchX86_64
	bs := a.PageSize()
	devBlocks := uint64(benchMem/bs + 64)
	img := make([]byte, int(devBlocks)*bs)
	fp := diskdump.FormatParams{BlockSize: bs, Order: a.ByteOrder(), BlockOrder: 2, SampleRate: 8}
	if err := diskdump.FormatInitial(memfile.New(img), devBlocks, fp, nil); err != nil {
		return nil, err
	}
	cfg := kernel.DefaultConfig(a)
	cfg.Compress = compress
	cfg.Time = time.Unix(1246291200, 0)
	f := memfile.New(img)
	src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: a, MemBytes: benchMem, Seed: 7})
	res, err := kernel.WriteDump(f, devBlocks, src, cfg)
	if err != nil {
		return nil, err
	}
	if res.Outcome != kernel.OutcomeCompleted {
		return nil, fmt.Errorf("rehearsal dump %v", res.Outcome)
	}
	return f.Bytes(), nil
}

// benchDiscard is an io.WriterAt that keeps nothing: the benchmarks measure
// the codec, not a file system.
type benchDiscard struct{ n int64 }

func (d *benchDiscard) WriteAt(p []byte, off int64) (int, error) {
	d.n += int64(len(p))
	return len(p), nil
}

// BenchmarkWriteVmcore writes each vmcore format from a raw and a
// compressed 64 MiB dump (MB/s of machine memory). kdump-1 is the KDUMP
// writer with one compression goroutine, kdump with GOMAXPROCS;
// diskdump-verify inflates every zlib record (VerifyRecords) on
// GOMAXPROCS goroutines, diskdump-verify-1 on one.
func BenchmarkWriteVmcore(b *testing.B) {
	for _, tc := range []struct {
		name     string
		compress bool
		format   vmcore.Format
		workers  int
		verify   bool
	}{
		{"raw/elf", false, vmcore.FormatELF, 0, false},
		{"raw/diskdump", false, vmcore.FormatDiskdump, 0, false},
		{"raw/kdump-1", false, vmcore.FormatKdump, 1, false},
		{"raw/kdump", false, vmcore.FormatKdump, 0, false},
		{"compressed/elf", true, vmcore.FormatELF, 0, false},
		{"compressed/diskdump", true, vmcore.FormatDiskdump, 0, false},
		{"compressed/diskdump-verify", true, vmcore.FormatDiskdump, 0, true},
		{"compressed/diskdump-verify-1", true, vmcore.FormatDiskdump, 1, true},
		{"compressed/kdump-verify", true, vmcore.FormatKdump, 0, true},
		{"compressed/kdump", true, vmcore.FormatKdump, 0, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := benchPartition(b, tc.compress)
			opt := vmcore.Options{Format: tc.format, Workers: tc.workers, VerifyRecords: tc.verify}
			b.SetBytes(benchMem)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				res, err := vmcore.Write(&benchDiscard{}, p, opt)
				if err != nil {
					b.Fatal(err)
				}
				if res.Lost != 0 || res.Errors != nil {
					b.Fatalf("lost %d: %v", res.Lost, res.Errors)
				}
			}
			reportCPU(b, cpu0)
		})
	}
}

// BenchmarkOpenPartition is header decode and check, sub-header and
// bitmaps: what savecore and dumpformat -c do before any page.
func BenchmarkOpenPartition(b *testing.B) {
	p := benchPartition(b, true)
	img := benchParts.img[true]
	_ = p
	b.ReportAllocs()
	for b.Loop() {
		if _, err := diskdump.OpenPartition(memfile.New(img), int64(len(img))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseHeader decodes and checks the header block alone.
func BenchmarkParseHeader(b *testing.B) {
	p := benchPartition(b, false)
	blk, err := p.Header().EncodeBlock(p.BlockSize())
	require.NoError(b, err)
	chk := diskdump.HeaderCheck{DeviceBlocks: uint64(benchMem/p.BlockSize() + 64), BaseOff: int64(p.BlockSize()), BaseBlk: 1}
	b.SetBytes(int64(len(blk)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := diskdump.ParseHeader(blk, chk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBitmap converts between the partition's dense dumpable bitmap
// and a PFN-indexed one for a 4 GiB machine (1 Mi pages) whose RAM has a
// hole every 64 pages, and walks a bitmap with All.
func BenchmarkBitmap(b *testing.B) {
	const npfn = 1 << 20
	ram := diskdump.MakeBitmap(npfn)
	pfn := diskdump.MakeBitmap(npfn)
	for p := uint64(0); p < npfn; p++ {
		if p%64 != 63 {
			ram.Set(p)
			if p%3 != 0 {
				pfn.Set(p)
			}
		}
	}
	dense := diskdump.PFNToDense(ram, pfn)
	b.Run("DenseToPFN", func(b *testing.B) {
		b.SetBytes(npfn / 8)
		b.ReportAllocs()
		for b.Loop() {
			diskdump.DenseToPFN(ram, dense)
		}
	})
	b.Run("PFNToDense", func(b *testing.B) {
		b.SetBytes(npfn / 8)
		b.ReportAllocs()
		for b.Loop() {
			diskdump.PFNToDense(ram, pfn)
		}
	})
	b.Run("All", func(b *testing.B) {
		b.SetBytes(npfn / 8)
		b.ReportAllocs()
		for b.Loop() {
			var n uint64
			for range pfn.All() {
				n++
			}
			if n != pfn.Count() {
				b.Fatal(n)
			}
		}
	})
}

// cpuTime is the user+system CPU time of the process so far. The build
// machine is shared: wall time per op swings with the load, CPU time per
// op much less, so the benchmarks report both.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ms/op (all goroutines) and, for benchmarks with
// SetBytes, cpu-MB/s: bytes per second of CPU time.
func reportCPU(b *testing.B, since time.Duration) {
	d := cpuTime() - since
	if b.N == 0 || d <= 0 {
		return
	}
	b.ReportMetric(float64(d.Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(benchMem)*float64(b.N)/d.Seconds()/1e6, "cpu-MB/s")
}
