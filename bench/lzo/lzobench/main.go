// Command lzobench is the Go side of the LZO1X encoder benchmark of issue
// 18 (bench/lzo/run.sh; not installed). It writes page corpora of the
// synthetic machine and compresses them with internal/lzo, so that
// callgrind and the wall clock see the same pages as the C harness
// lzo1x1.c, which compresses them with liblzo2's lzo1x_1_compress.
//
//	lzobench corpus DIR                 writes DIR/pages-4096.bin, -16384, -65536, -4096-text ...
//	lzobench compress FILE PAGESIZE [REPS]
//
// A corpus is the non-zero RAM pages of a synthetic x86_64 machine (the
// mix of BenchmarkCompressPage in vmcore: seed 5), page after page. compress
// prints the page count, input and output bytes, the ratio and ns per page.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/internal/lzo"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "lzobench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "corpus":
		return writeCorpora(args[1])
	case (len(args) == 3 || len(args) == 4) && args[0] == "compress":
		size, err := strconv.Atoi(args[2])
		if err != nil || size <= 0 || size > lzo.MaxBlock {
			return fmt.Errorf("bad page size %q", args[2])
		}
		reps := 1
		if len(args) == 4 {
			if reps, err = strconv.Atoi(args[3]); err != nil || reps < 1 {
				return fmt.Errorf("bad repeat count %q", args[3])
			}
		}
		return compress(args[1], size, reps)
	}
	return fmt.Errorf("usage: lzobench corpus DIR | lzobench compress FILE PAGESIZE [REPS]")
}

// writeCorpora writes one corpus per block size, of the default mix: 8 MiB
// of memory in 4 KiB pages, 32 MiB in 16 KiB pages and 64 MiB in 64 KiB
// pages; and one per kind of page in 4 KiB pages (pages-4096-text.bin and
// so on).
func writeCorpora(dir string) error {
	for _, c := range []struct {
		size int
		mem  uint64
		name string
		mix  kernel.PageMix
	}{
		{4096, 8 << 20, "", kernel.PageMix{}},
		{16384, 32 << 20, "", kernel.PageMix{}},
		{65536, 64 << 20, "", kernel.PageMix{}},
		{4096, 8 << 20, "-text", kernel.PageMix{Text: 1}},
		{4096, 8 << 20, "-pattern", kernel.PageMix{Pattern: 1}},
		{4096, 8 << 20, "-sparse", kernel.PageMix{Sparse: 1}},
		{4096, 8 << 20, "-random", kernel.PageMix{Random: 1}},
	} {
		m := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: diskdump.ArchX86_64, PageSize: c.size, MemBytes: c.mem, Seed: 5, Mix: c.mix})
		var out []byte
		for _, p := range m.ContentPages() {
			out = append(out, p...)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("pages-%d%s.bin", c.size, c.name)), out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// compress compresses each page of the corpus reps times.
func compress(path string, size, reps int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	n := len(data) / size
	if n == 0 || len(data)%size != 0 {
		return fmt.Errorf("%s: %d bytes is not a whole number of %d-byte pages", path, len(data), size)
	}
	var c lzo.Compressor
	scratch := make([]byte, 0, size+size/255+64) // what vmcore gives
	var out int
	start := time.Now()
	for range reps {
		out = 0
		for i := range n {
			z, err := c.Compress(scratch, data[i*size:(i+1)*size])
			if err != nil {
				return err
			}
			out += len(z)
		}
	}
	ns := float64(time.Since(start).Nanoseconds()) / float64(n*reps)
	fmt.Printf("go-lzo pages %d in %d out %d ratio %.4f ns/page %.0f\n", n, n*size, out, float64(out)/float64(n*size), ns)
	return nil
}
