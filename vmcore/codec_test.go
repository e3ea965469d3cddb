package vmcore

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/internal/zero"
)

// TestPageCodecZeroPage checks the zero-page shortcut of the KDUMP
// compressor: the cached stream is the bytes deflate makes for a zero page,
// before and after other pages went through the same codec, and inflates
// back to zeros.
func TestPageCodecZeroPage(t *testing.T) {
	for _, b := range []int{4096, 16384, 65536} {
		fresh, ok := newPageCodec(b, CompressZlib).compress(make([]byte, b))
		require.True(t, ok)
		c := newPageCodec(b, CompressZlib)
		other := bytes.Repeat([]byte("dumpkit "), b/8)
		for i := range 3 {
			got, ok := c.compressPage(make([]byte, b))
			require.True(t, ok)
			assert.Equal(t, fresh, got, "block size %d, round %d", b, i)
			_, ok = c.compressPage(other)
			require.True(t, ok)
		}
		page := make([]byte, b)
		page[b-1] = 1
		got, ok := c.compressPage(page)
		require.True(t, ok)
		assert.NotEqual(t, fresh, got, "a page with one non-zero byte is not the zero page")
		dst := make([]byte, b)
		require.NoError(t, diskdump.Inflate(dst, fresh))
		assert.True(t, zero.Is(dst))
	}
}

// BenchmarkCompressPage compresses the non-zero pages of the synthetic
// machine's mix with each KDUMP compression: ns/op is per page, ratio
// the compressed size over the page size.
func BenchmarkCompressPage(b *testing.B) {
	const bs = 4096
	src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: 8 << 20, Seed: 5})
	var pages [][]byte
	for _, p := range src.ContentPages() {
		pages = append(pages, p)
	}
	for _, c := range allCompressions {
		b.Run(c.String(), func(b *testing.B) {
			codec := newPageCodec(bs, c)
			dst := make([]byte, 0, bs)
			var in, out int64
			i := 0
			b.SetBytes(bs)
			for b.Loop() {
				p := pages[i%len(pages)]
				i++
				got, ok := codec.compressTo(dst[:0], p)
				in += bs
				if ok {
					out += int64(len(got))
				} else {
					out += bs
				}
			}
			b.ReportMetric(float64(out)/float64(in), "ratio")
		})
	}
}
