package diskdump

import (
	"bytes"
	stdflate "compress/flate"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// refInflate is inflate written with the standard library's decoder, which
// the page reader used before it moved to klauspost/compress: the same
// framing rules (zlib header, exactly len(dst) bytes, end of the deflate
// stream, Adler-32), so that FuzzInflate can hold the two to the same
// answers.
func refInflate(dst, src []byte) (int, bool) {
	if !zlibHeaderOK(src) {
		return 0, false
	}
	br := bytes.NewReader(src[2:])
	fr := stdflate.NewReader(br)
	if _, err := io.ReadFull(fr, dst); err != nil {
		return 0, false
	}
	var one [1]byte
	if n, err := fr.Read(one[:]); n != 0 || err != io.EOF {
		return 0, false
	}
	var sum [4]byte
	if n, _ := br.Read(sum[:]); n != 4 || binary.BigEndian.Uint32(sum[:]) != adler32.Checksum(dst) {
		return 0, false
	}
	return br.Len(), true
}

// FuzzInflate: the record decoder (klauspost/compress's flate under our
// zlib framing) accepts exactly the streams the standard library's does,
// with the same page and the same number of bytes left after the trailer:
// resynchronisation relies on that count.
func FuzzInflate(f *testing.F) {
	const b = 4096
	var zb bytes.Buffer
	for _, level := range []int{zlib.BestSpeed, zlib.DefaultCompression, zlib.NoCompression} {
		for seed := range uint64(4) {
			zb.Reset()
			zw, err := zlib.NewWriterLevel(&zb, level)
			require.NoError(f, err)
			_, err = zw.Write(bytes.Repeat([]byte(fmt.Sprintf("inflate seed %d. ", seed)), b/16)[:b])
			require.NoError(f, err)
			require.NoError(f, zw.Close())
			f.Add(append(bytes.Clone(zb.Bytes()), "mm"...))
			f.Add(bytes.Clone(zb.Bytes()[:zb.Len()-3]))
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		got, want := make([]byte, b), make([]byte, b)
		rest, err := inflate(got, src)
		wrest, ok := refInflate(want, src)
		require.Equal(t, ok, err == nil, "accepted by the reference: %v; by inflate: %v", ok, err)
		if ok {
			require.Equal(t, wrest, rest)
			require.True(t, bytes.Equal(want, got))
		}
	})
}
