package kernel

import (
	"bytes"
	"compress/zlib"

	"github.com/dumpkit/dumpkit/internal/zero"
)

// deflater compresses pages the way diskdump_compress_gzip does: a zlib
// stream at level 1 (Z_BEST_SPEED), one Z_FINISH. Deflate is deterministic,
// so the zero page is compressed once.
type deflater struct {
	zw    *zlib.Writer
	out   bytes.Buffer
	zeroZ []byte
}

func newDeflater(bs int) *deflater {
	z := &deflater{}
	z.out.Grow(bs + 512)
	z.zw, _ = zlib.NewWriterLevel(&z.out, zlib.BestSpeed)
	return z
}

// deflate returns the zlib stream of page, appended to dst[:0].
func (z *deflater) deflate(page, dst []byte) []byte {
	if zero.Is(page) && z.zeroZ != nil {
		return append(dst[:0], z.zeroZ...)
	}
	z.out.Reset()
	z.zw.Reset(&z.out)
	_, _ = z.zw.Write(page)
	_ = z.zw.Close()
	if zero.Is(page) {
		z.zeroZ = bytes.Clone(z.out.Bytes())
	}
	return append(dst[:0], z.out.Bytes()...)
}
