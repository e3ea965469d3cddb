package vmcore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsFlattened(t *testing.T) {
	good := encodeFlattenedStart()
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name    string
		block   []byte
		want    bool
		wantOff int64 // of the FlattenedError from NewFlattenedReader
		wantErr error // nil: the reader opens
	}{
		{name: "start block", block: good, want: true},
		{name: "first 32 bytes", block: good[:32], want: true, wantOff: 32, wantErr: ErrNotFlattened},
		{name: "31 bytes", block: good[:31], wantErr: ErrNotFlattened},
		{name: "empty", block: nil, wantErr: ErrNotFlattened},
		{name: "other signature", block: with(func(b []byte) []byte { b[0] = 'M'; return b }), wantErr: ErrNotFlattened},
		{name: "signature not NUL-terminated", block: with(func(b []byte) []byte { copy(b[12:], "XXXX"); return b }), wantOff: 12, wantErr: ErrNotFlattened},
		{name: "signature bytes 13-15 set", block: with(func(b []byte) []byte { copy(b[13:], "XYZ"); return b }), want: true},
		{name: "type 2", block: with(func(b []byte) []byte { b[23] = 2; return b }), wantOff: 16, wantErr: ErrNotFlattened},
		{name: "little-endian type", block: with(func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[16:], 1)
			binary.LittleEndian.PutUint64(b[24:], 1)
			return b
		}), wantOff: 16, wantErr: ErrNotFlattened},
		{name: "version 2", block: with(func(b []byte) []byte { b[31] = 2; return b }), want: true, wantOff: 24, wantErr: ErrFlattenedVersion},
		{name: "KDUMP header", block: append([]byte("KDUMP   "), make([]byte, 4088)...), wantErr: ErrNotFlattened},
		{name: "zeros", block: make([]byte, 4096), wantErr: ErrNotFlattened},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, IsFlattened(tc.block))
			stream := appendFlattenedEnd(appendFlattenedRecord(tc.block, 0, []byte("x")))
			if len(tc.block) < FlattenedStartSize {
				stream = tc.block
			}
			_, err := NewFlattenedReader(bytes.NewReader(stream), int64(len(stream)), 0)
			if tc.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			var fe *FlattenedError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.wantOff, fe.Off, "%v", err)
			assert.Contains(t, err.Error(), "vmcore: flattened stream:")
		})
	}
}

// flattenedReaderWalk collects what a FlattenedReader hands out.
func flattenedReaderWalk(t *testing.T, stream []byte, maxFileSize int64) ([]FlattenedRecord, FlattenedStop) {
	t.Helper()
	fr, err := NewFlattenedReader(bytes.NewReader(stream), int64(len(stream)), maxFileSize)
	require.NoError(t, err)
	var recs []FlattenedRecord
	for fr.Next() {
		recs = append(recs, fr.Record())
	}
	require.NoError(t, fr.Err())
	assert.False(t, fr.Next(), "Next after the end")
	return recs, fr.Stop()
}

func TestFlattenedReaderEnds(t *testing.T) {
	start := encodeFlattenedStart()
	two := appendFlattenedRecord(appendFlattenedRecord(bytes.Clone(start), 8, []byte("abcd")), 0, []byte("xy"))
	const afterTwo = FlattenedStartSize + 16 + 4 + 16 + 2
	r1 := FlattenedRecord{StreamOff: FlattenedStartSize, Off: 8, Size: 4}
	r2 := FlattenedRecord{StreamOff: FlattenedStartSize + 20, Off: 0, Size: 2}
	for _, tc := range []struct {
		name   string
		stream []byte
		limit  int64
		recs   []FlattenedRecord
		stop   FlattenedStop
	}{
		{name: "complete", stream: appendFlattenedEnd(bytes.Clone(two)), recs: []FlattenedRecord{r1, r2},
			stop: FlattenedStop{End: FlattenedComplete, Off: afterTwo}},
		{name: "bytes after the end marker", stream: append(appendFlattenedEnd(bytes.Clone(two)), 0xff, 1, 2),
			recs: []FlattenedRecord{r1, r2}, stop: FlattenedStop{End: FlattenedComplete, Off: afterTwo}},
		{name: "no record", stream: appendFlattenedEnd(bytes.Clone(start)),
			stop: FlattenedStop{End: FlattenedComplete, Off: FlattenedStartSize}},
		{name: "start block only", stream: start, stop: FlattenedStop{End: FlattenedNoMarker, Off: FlattenedStartSize}},
		{name: "no end marker", stream: two, recs: []FlattenedRecord{r1},
			stop: FlattenedStop{End: FlattenedNoMarker, Off: afterTwo, Dropped: r2}},
		{name: "header cut", stream: append(bytes.Clone(two), 0xff, 0xff), recs: []FlattenedRecord{r1},
			stop: FlattenedStop{End: FlattenedCutHeader, Off: afterTwo, Dropped: r2}},
		{name: "zeros after", stream: append(bytes.Clone(two), make([]byte, 512)...), recs: []FlattenedRecord{r1},
			stop: FlattenedStop{End: FlattenedBadHeader, Off: afterTwo, Dropped: r2}},
		{name: "end marker (-1, 0)", stream: appendFlattenedHeader(bytes.Clone(two), -1, 0), recs: []FlattenedRecord{r1},
			stop: FlattenedStop{End: FlattenedBadHeader, Off: afterTwo, Dropped: r2}},
		{name: "negative offset", stream: appendFlattenedHeader(bytes.Clone(two), -5, 3), recs: []FlattenedRecord{r1},
			stop: FlattenedStop{End: FlattenedBadHeader, Off: afterTwo, Dropped: r2}},
		{name: "zero-size first record", stream: appendFlattenedEnd(appendFlattenedHeader(bytes.Clone(start), 0, 0)),
			stop: FlattenedStop{End: FlattenedBadHeader, Off: FlattenedStartSize}},
		{name: "data past the end", stream: appendFlattenedHeader(bytes.Clone(two), 0, 1000), recs: []FlattenedRecord{r1},
			stop: FlattenedStop{End: FlattenedCutData, Off: afterTwo, Dropped: r2}},
		{name: "offset 2^40", stream: appendFlattenedEnd(appendFlattenedRecord(bytes.Clone(two), 1<<40, []byte("z"))),
			recs: []FlattenedRecord{r1}, stop: FlattenedStop{End: FlattenedBeyondLimit, Off: afterTwo, Dropped: r2}},
		{name: "size max int64", stream: appendFlattenedHeader(bytes.Clone(two), 1, 1<<63-1), recs: []FlattenedRecord{r1},
			stop: FlattenedStop{End: FlattenedBeyondLimit, Off: afterTwo, Dropped: r2}},
		{name: "at the limit", limit: 13, stream: appendFlattenedEnd(appendFlattenedRecord(bytes.Clone(two), 12, []byte("z"))),
			recs: []FlattenedRecord{r1, r2, {StreamOff: afterTwo, Off: 12, Size: 1}},
			stop: FlattenedStop{End: FlattenedComplete, Off: afterTwo + 17}},
		{name: "one past the limit", limit: 12, stream: appendFlattenedEnd(appendFlattenedRecord(bytes.Clone(two), 12, []byte("z"))),
			recs: []FlattenedRecord{r1}, stop: FlattenedStop{End: FlattenedBeyondLimit, Off: afterTwo, Dropped: r2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, stop := flattenedReaderWalk(t, tc.stream, tc.limit)
			assert.Equal(t, tc.recs, recs)
			assert.Equal(t, tc.stop, stop)
			assert.Equal(t, tc.stop.End != FlattenedComplete, stop.Torn())
		})
	}
}

func TestFlattenedEndString(t *testing.T) {
	for e := FlattenedComplete; e <= FlattenedBeyondLimit; e++ {
		assert.NotContains(t, e.String(), "FlattenedEnd(")
	}
	assert.Equal(t, "FlattenedEnd(42)", FlattenedEnd(42).String())
	assert.Equal(t, "complete", FlattenedComplete.String())
}

// flattenedFailingReader fails every read from failAt on.
type flattenedFailingReader struct {
	r      io.ReaderAt
	failAt int64
}

var errFlattenedInjected = errors.New("injected read error")

func (f flattenedFailingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.failAt {
		return 0, errFlattenedInjected
	}
	return f.r.ReadAt(p, off)
}

func TestFlattenedReadErrors(t *testing.T) {
	stream := appendFlattenedEnd(appendFlattenedRecord(appendFlattenedRecord(encodeFlattenedStart(), 0, []byte("abcd")), 4, []byte("ef")))
	for _, failAt := range []int64{0, 10, FlattenedStartSize + 3, FlattenedStartSize + 20 + 3, FlattenedStartSize + 20 + 18 + 3} {
		r := flattenedFailingReader{r: bytes.NewReader(stream), failAt: failAt}
		_, err := Rearrange(discardFlattened{}, r, int64(len(stream)), nil)
		require.ErrorIs(t, err, errFlattenedInjected, "fail at %d", failAt)
	}
	// A device shorter than it claims to be is a read error, not a tear.
	_, err := Rearrange(discardFlattened{}, bytes.NewReader(stream[:len(stream)-8]), int64(len(stream)), nil)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// discardFlattened is an io.WriterAt that keeps nothing.
type discardFlattened struct{}

func (discardFlattened) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// TestFlattenedRawLayout checks the raw mirrors against the C sizes
// (MAX_SIZE_MDF_HEADER and struct makedumpfile_data_header) and the
// hand-written codecs against encoding/binary's reading of the structs.
func TestFlattenedRawLayout(t *testing.T) {
	assert.Equal(t, FlattenedStartSize, binary.Size(rawFlattenedStart{}))
	assert.Equal(t, FlattenedHeaderSize, binary.Size(rawFlattenedHeader{}))

	start := rawFlattenedStart{Type: -2, Version: 1 << 40}
	copy(start.Signature[:], "makedumpfile\x00xyz")
	var want, got bytes.Buffer
	require.NoError(t, binary.Write(&want, binary.BigEndian, &start))
	b := bytes.Repeat([]byte{0xee}, FlattenedStartSize)
	start.encode(b)
	got.Write(b)
	assert.Equal(t, want.Bytes(), got.Bytes())
	assert.Equal(t, start, decodeFlattenedStart(b))

	h := rawFlattenedHeader{Offset: -1 << 62, BufSize: 0x0102030405060708}
	want.Reset()
	require.NoError(t, binary.Write(&want, binary.BigEndian, h))
	hb := make([]byte, FlattenedHeaderSize)
	h.encode(hb)
	assert.Equal(t, want.Bytes(), hb)
	assert.Equal(t, h, decodeFlattenedHeader(hb))
	flattenedEndMarker.encode(hb)
	assert.Equal(t, bytes.Repeat([]byte{0xff}, 16), hb)
}
