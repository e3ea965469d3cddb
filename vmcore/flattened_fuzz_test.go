package vmcore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flattenedModel rearranges stream the plain way, as a check on the
// look-ahead of FlattenedReader: parse every header up to the first
// implausible one, apply them all at the end marker, all but the last on a
// tear.
func flattenedModel(stream []byte, limit int64) (file []byte, records int, complete bool) {
	type rec struct{ off, size, data int64 }
	var recs []rec
	pos := int64(FlattenedStartSize)
	for {
		if int64(len(stream))-pos < FlattenedHeaderSize {
			break
		}
		off := int64(binary.BigEndian.Uint64(stream[pos:]))
		size := int64(binary.BigEndian.Uint64(stream[pos+8:]))
		if off == -1 && size == -1 {
			complete = true
			break
		}
		left := int64(len(stream)) - pos - FlattenedHeaderSize
		if off < 0 || size <= 0 || size > left || off > limit-size {
			break
		}
		recs = append(recs, rec{off, size, pos + FlattenedHeaderSize})
		pos += FlattenedHeaderSize + size
	}
	if !complete && len(recs) > 0 {
		recs = recs[:len(recs)-1]
	}
	for _, r := range recs {
		if end := r.off + r.size; end > int64(len(file)) {
			file = append(file, make([]byte, end-int64(len(file)))...)
		}
		copy(file[r.off:], stream[r.data:r.data+r.size])
	}
	return file, len(recs), complete
}

// FuzzFlattened feeds arbitrary streams to Rearrange: it must not panic,
// must stay within the size limit, must agree with flattenedModel, and what
// it applied, written again by FlattenedWriter, must rearrange to the same
// file.
func FuzzFlattened(f *testing.F) {
	for _, s := range flattenedFuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		limit := int64(4*len(stream) + 1<<16) // keeps memfile small whatever the headers say
		dst := memfile.New(nil)
		res, err := Rearrange(dst, bytes.NewReader(stream), int64(len(stream)), &RearrangeOptions{MaxFileSize: limit, MaxRanges: 64})
		if err != nil {
			require.True(t, errors.Is(err, ErrNotFlattened) || errors.Is(err, ErrFlattenedVersion), "%v", err)
			require.Zero(t, res.Records)
			return
		}
		require.True(t, IsFlattened(stream))
		got := dst.Bytes()
		require.LessOrEqual(t, int64(len(got)), limit)
		require.Equal(t, int64(len(got)), res.Size)
		want, n, complete := flattenedModel(stream, limit)
		require.Equal(t, want, got)
		require.Equal(t, int64(n), res.Records)
		require.Equal(t, complete, !res.Torn())
		require.LessOrEqual(t, res.Coverage.Bytes(), res.Bytes)
		for _, rg := range res.Coverage.Ranges() {
			require.True(t, rg.Off >= 0 && rg.Off < rg.End && rg.End <= res.Size, "%+v", rg)
		}
		if res.Records == 0 {
			return
		}
		checkFlattenedRewrite(t, stream, limit, got)
	})
}

// checkFlattenedRewrite writes the applied records of stream again with
// FlattenedWriter and wants the same rearranged file.
func checkFlattenedRewrite(t *testing.T, stream []byte, limit int64, want []byte) {
	fr, err := NewFlattenedReader(bytes.NewReader(stream), int64(len(stream)), limit)
	require.NoError(t, err)
	var buf bytes.Buffer
	fw := NewFlattenedWriter(&buf)
	for fr.Next() {
		rec := fr.Record()
		_, err := fw.WriteAt(stream[rec.DataOff():rec.DataOff()+rec.Size], rec.Off)
		require.NoError(t, err)
	}
	require.NoError(t, fr.Err())
	require.NoError(t, fw.Close())
	again := memfile.New(nil)
	res, err := Rearrange(again, bytes.NewReader(buf.Bytes()), int64(buf.Len()), &RearrangeOptions{MaxFileSize: limit})
	require.NoError(t, err)
	assert.False(t, res.Torn())
	require.Equal(t, want, again.Bytes())
}

// flattenedFuzzSeeds are small streams: the metadata records (up to 1 KiB
// each: KDUMP header and sub-header, ELF header and program headers) of the
// makedumpfile fixtures in makedumpfile's order, a torn copy of each, the
// short writer round-trip cases, and two degenerate streams. Whole fixtures
// would make each run and every minimisation slow without reaching more code.
func flattenedFuzzSeeds(t testing.TB) [][]byte {
	_, fixtures := loadFlattenedFixtures(t)
	var seeds [][]byte
	for _, name := range []string{"kdump-zlib-d1", "kdump-lzo-d0", "elf-d0"} {
		stream := fixtures[name]
		fr, err := NewFlattenedReader(bytes.NewReader(stream), int64(len(stream)), 0)
		require.NoError(t, err)
		var ws []flattenedWrite
		for fr.Next() {
			if rec := fr.Record(); rec.Size <= 1024 {
				ws = append(ws, flattenedWrite{rec.Off, stream[rec.DataOff() : rec.DataOff()+rec.Size]})
			}
		}
		small := writeFlattenedStream(t, ws)
		seeds = append(seeds, small, small[:len(small)-40])
	}
	for _, tc := range flattenedWriteCases() {
		if s := writeFlattenedStream(t, tc.writes); len(s) < 8<<10 {
			seeds = append(seeds, s)
		}
	}
	return append(seeds,
		appendFlattenedEnd(encodeFlattenedStart()),
		appendFlattenedHeader(encodeFlattenedStart(), 0, 100))
}
