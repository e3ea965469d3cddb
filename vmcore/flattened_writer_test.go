package vmcore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flattenedWrite is one positioned write of a round-trip case.
type flattenedWrite struct {
	off  int64
	data []byte
}

// flattenedPattern returns n bytes drawn from seed.
func flattenedPattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// flattenedWriteCases are write sequences our writer must carry through a
// stream: out-of-order, overlapping, with holes, and longer than one record.
func flattenedWriteCases() []struct {
	name   string
	writes []flattenedWrite
} {
	p := flattenedPattern
	return []struct {
		name   string
		writes []flattenedWrite
	}{
		{name: "one byte", writes: []flattenedWrite{{0, []byte{7}}}},
		{name: "ascending", writes: []flattenedWrite{{0, p(1, 4096)}, {4096, p(2, 4096)}, {8192, p(3, 100)}}},
		{name: "out of order", writes: []flattenedWrite{{8192, p(1, 4096)}, {0, p(2, 464)}, {4096, p(3, 104)}, {4200, p(4, 356)}}},
		{name: "holes", writes: []flattenedWrite{{100000, p(1, 10)}, {5, p(2, 3)}, {70000, p(3, 1)}}},
		{name: "overlap later wins", writes: []flattenedWrite{{0, []byte("1111")}, {2, []byte("2222")}}},
		{name: "rewrite same extent", writes: []flattenedWrite{{64, make([]byte, 112)}, {0, p(1, 64)}, {176, p(2, 9000)}, {64, p(3, 112)}}},
		{name: "split records", writes: []flattenedWrite{{10, p(1, 3*flattenedMaxRecord+17)}, {0, p(2, flattenedMaxRecord)}}},
		{name: "empty write ignored", writes: []flattenedWrite{{0, nil}, {3, []byte("abc")}, {1 << 20, nil}}},
		{name: "last write not the largest", writes: []flattenedWrite{{50000, p(1, 50)}, {0, p(2, 10)}}},
	}
}

// applyFlattenedWrites is the file the writes describe.
func applyFlattenedWrites(writes []flattenedWrite) []byte {
	var f []byte
	for _, w := range writes {
		if len(w.data) == 0 {
			continue
		}
		if end := int(w.off) + len(w.data); end > len(f) {
			f = append(f, make([]byte, end-len(f))...)
		}
		copy(f[w.off:], w.data)
	}
	return f
}

// writeFlattenedStream writes the writes through a FlattenedWriter.
func writeFlattenedStream(t testing.TB, writes []flattenedWrite) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw := NewFlattenedWriter(&buf)
	for _, w := range writes {
		n, err := fw.WriteAt(w.data, w.off)
		require.NoError(t, err)
		require.Equal(t, len(w.data), n)
	}
	require.NoError(t, fw.Close())
	require.NoError(t, fw.Close(), "second Close")
	return buf.Bytes()
}

func TestFlattenedRoundTrip(t *testing.T) {
	for _, tc := range flattenedWriteCases() {
		t.Run(tc.name, func(t *testing.T) {
			stream := writeFlattenedStream(t, tc.writes)
			want := applyFlattenedWrites(tc.writes)
			require.True(t, IsFlattened(stream))
			assert.Equal(t, encodeFlattenedStart(), stream[:FlattenedStartSize])
			assert.Equal(t, bytes.Repeat([]byte{0xff}, 16), stream[len(stream)-16:], "ends with the end marker")
			got, res := rearrangeBytes(t, stream, nil)
			assert.Equal(t, want, got)
			assert.Equal(t, int64(len(want)), res.Size)
			assert.False(t, res.Torn())
			assert.Empty(t, res.Dropped)
			var nbytes, nrec int64
			cov := NewFlattenedCoverage(0)
			for _, w := range tc.writes {
				nbytes += int64(len(w.data))
				nrec += (int64(len(w.data)) + flattenedMaxRecord - 1) / flattenedMaxRecord
				cov.Add(w.off, int64(len(w.data)))
			}
			assert.Equal(t, nbytes, res.Bytes)
			assert.Equal(t, nrec, res.Records)
			assert.Equal(t, cov.Ranges(), res.Coverage.Ranges())
			assert.Equal(t, int64(len(stream)), FlattenedStartSize+16*(nrec+1)+nbytes, "no padding, no extra bytes")
		})
	}
}

func TestFlattenedWriterRecordsAndSize(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFlattenedWriter(&buf)
	assert.Zero(t, buf.Len(), "nothing written before the first record")
	_, err := fw.WriteAt(make([]byte, flattenedMaxRecord+1), 100)
	require.NoError(t, err)
	assert.Equal(t, int64(2), fw.Records())
	assert.Equal(t, int64(100+flattenedMaxRecord+1), fw.Size())
	require.NoError(t, fw.Close())
	recs, stop := flattenedReaderWalk(t, buf.Bytes(), 0)
	assert.Equal(t, []FlattenedRecord{
		{StreamOff: FlattenedStartSize, Off: 100, Size: flattenedMaxRecord},
		{StreamOff: FlattenedStartSize + 16 + flattenedMaxRecord, Off: 100 + flattenedMaxRecord, Size: 1},
	}, recs)
	assert.Equal(t, FlattenedComplete, stop.End)
}

// flattenedFailingWriter accepts n bytes, then fails.
type flattenedFailingWriter struct{ n int }

var errFlattenedWrite = errors.New("injected write error")

func (f *flattenedFailingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, errFlattenedWrite
	}
	f.n -= len(p)
	return len(p), nil
}

func TestFlattenedWriterErrors(t *testing.T) {
	t.Run("close without records", func(t *testing.T) {
		var buf bytes.Buffer
		fw := NewFlattenedWriter(&buf)
		_, err := fw.WriteAt(nil, 5)
		require.NoError(t, err)
		require.ErrorIs(t, fw.Close(), ErrFlattenedEmpty)
		assert.Zero(t, buf.Len())
	})
	t.Run("write after close", func(t *testing.T) {
		fw := NewFlattenedWriter(&bytes.Buffer{})
		_, err := fw.WriteAt([]byte("a"), 0)
		require.NoError(t, err)
		require.NoError(t, fw.Close())
		_, err = fw.WriteAt([]byte("a"), 0)
		require.ErrorIs(t, err, ErrFlattenedClosed)
	})
	t.Run("offset outside the file", func(t *testing.T) {
		fw := NewFlattenedWriter(&bytes.Buffer{})
		_, err := fw.WriteAt([]byte("a"), -1)
		require.Error(t, err)
		_, err = fw.WriteAt([]byte("ab"), 1<<63-1)
		require.Error(t, err)
	})
	for _, n := range []int{0, 100, FlattenedStartSize, FlattenedStartSize + 20, FlattenedStartSize + 16 + 4 + 8} {
		t.Run(fmt.Sprintf("writer fails after %d bytes", n), func(t *testing.T) {
			fw := NewFlattenedWriter(&flattenedFailingWriter{n: n})
			_, err1 := fw.WriteAt([]byte("abcd"), 0)
			_, err2 := fw.WriteAt([]byte("efgh"), 4)
			err3 := fw.Close()
			err := errors.Join(err1, err2, err3)
			require.ErrorIs(t, err, errFlattenedWrite, "fail after %d bytes", n)
			if err1 != nil {
				require.ErrorIs(t, err2, errFlattenedWrite, "sticky")
				require.ErrorIs(t, err3, errFlattenedWrite, "sticky")
			}
		})
	}
}

// TestFlattenedWriterConcurrent writes disjoint ranges from several
// goroutines, as a parallel vmcore writer may.
func TestFlattenedWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFlattenedWriter(&buf)
	const workers, per, size = 4, 50, 3000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				off := int64((i*workers + w) * size)
				_, err := fw.WriteAt(flattenedPattern(uint64(off), size), off)
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	require.NoError(t, fw.Close())
	got, res := rearrangeBytes(t, buf.Bytes(), nil)
	require.False(t, res.Torn())
	require.Equal(t, int64(workers*per), res.Records)
	for k := range workers * per {
		require.Equal(t, flattenedPattern(uint64(k*size), size), got[k*size:(k+1)*size], "chunk %d", k)
	}
}

// flattenedFailingWriterAt fails every write.
type flattenedFailingWriterAt struct{}

func (flattenedFailingWriterAt) WriteAt([]byte, int64) (int, error) { return 0, errFlattenedWrite }

func TestRearrangeWriteError(t *testing.T) {
	stream := writeFlattenedStream(t, []flattenedWrite{{0, []byte("abc")}, {3, []byte("d")}})
	res, err := Rearrange(flattenedFailingWriterAt{}, bytes.NewReader(stream), int64(len(stream)), nil)
	require.ErrorIs(t, err, errFlattenedWrite)
	assert.Contains(t, err.Error(), "stream offset 0x1000")
	assert.Zero(t, res.Records)
}

func TestRearrangeProgress(t *testing.T) {
	stream := writeFlattenedStream(t, []flattenedWrite{{0, []byte("abc")}, {3, []byte("d")}})
	var seen []int64
	_, err := Rearrange(discardFlattened{}, bytes.NewReader(stream), int64(len(stream)), &RearrangeOptions{
		Progress: func(off, size int64) {
			assert.Equal(t, int64(len(stream)), size)
			seen = append(seen, off)
		},
	})
	require.NoError(t, err)
	assert.Equal(t, []int64{FlattenedStartSize + 19, FlattenedStartSize + 19 + 17}, seen)
}
