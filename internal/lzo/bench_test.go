package lzo

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
)

// syntheticPages returns the non-zero RAM pages of a synthetic x86_64
// machine of mem bytes in pages of size bytes, with the given content mix
// (the zero value: the default mix). Seed 5 and 8 MiB of 4 KiB pages are
// the pages of vmcore's BenchmarkCompressPage.
func syntheticPages(tb testing.TB, size int, mem uint64, mix kernel.PageMix) [][]byte {
	m := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: diskdump.ArchX86_64, PageSize: size, MemBytes: mem, Seed: 5, Mix: mix})
	var pages [][]byte
	for _, p := range m.ContentPages() {
		pages = append(pages, p)
	}
	require.NotEmpty(tb, pages)
	return pages
}

// pageMixes are the synthetic machine's default mix and each of its kinds
// of non-zero page alone.
var pageMixes = []struct {
	name string
	mix  kernel.PageMix
}{
	{"mix", kernel.PageMix{}},
	{"text", kernel.PageMix{Text: 1}},
	{"pattern", kernel.PageMix{Pattern: 1}},
	{"sparse", kernel.PageMix{Sparse: 1}},
	{"random", kernel.PageMix{Random: 1}},
}

// BenchmarkCompress compresses the pages of the synthetic machine, block
// sizes 4, 16 and 64 KiB (8, 32 and 64 MiB of memory: the corpora of
// bench/lzo), of the default mix and, for 4 KiB, of each kind alone: ns/op
// is per block, ratio the stream's size over the block's.
func BenchmarkCompress(b *testing.B) {
	mem := map[int]uint64{4096: 8 << 20, 16384: 32 << 20, 65536: 64 << 20}
	for _, size := range []int{4096, 16384, 65536} {
		for _, pm := range pageMixes {
			if size != 4096 && pm.name != "mix" {
				continue
			}
			b.Run(fmt.Sprintf("%d/%s", size, pm.name), func(b *testing.B) {
				pages := syntheticPages(b, size, mem[size], pm.mix)
				var c Compressor
				dst := make([]byte, 0, MaxCompressedLen(size))
				var in, out int64
				i := 0
				b.SetBytes(int64(size))
				for b.Loop() {
					z, err := c.Compress(dst, pages[i%len(pages)])
					if err != nil {
						b.Fatal(err)
					}
					i++
					in += int64(size)
					out += int64(len(z))
				}
				b.ReportMetric(float64(out)/float64(in), "ratio")
			})
		}
	}
}
