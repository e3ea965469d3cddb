package vmcore

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
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
