package vmcore

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
)

// flattenedBenchStream is a 64 MiB vmcore written through FlattenedWriter in
// 64 KiB ascending writes, as makedumpfile writes page data: about 64 MiB of
// stream, built once.
var flattenedBenchStream = sync.OnceValue(func() []byte {
	const size = 64 << 20
	file := make([]byte, size)
	r := rand.New(rand.NewPCG(13, 14))
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(file[i:], r.Uint64())
	}
	var buf bytes.Buffer
	buf.Grow(size + size/1024 + FlattenedStartSize + 16)
	fw := NewFlattenedWriter(&buf)
	for off := 0; off < size; off += 64 << 10 {
		if _, err := fw.WriteAt(file[off:off+64<<10], int64(off)); err != nil {
			panic(err)
		}
	}
	if err := fw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
})

// flattenedMemFile is a fixed-size in-memory io.WriterAt, so the benchmark
// measures Rearrange and not a growing buffer.
type flattenedMemFile []byte

func (m flattenedMemFile) WriteAt(p []byte, off int64) (int, error) {
	return copy(m[off:], p), nil
}

// BenchmarkRearrange rearranges the 64 MiB stream in memory; compare with
// `makedumpfile -R` on the same stream (BENCHMARKS.md).
func BenchmarkRearrange(b *testing.B) {
	stream := flattenedBenchStream()
	dst := make(flattenedMemFile, 64<<20)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := Rearrange(dst, bytes.NewReader(stream), int64(len(stream)), nil)
		if err != nil || res.Torn() || res.Size != 64<<20 {
			b.Fatalf("%v %+v", err, res)
		}
	}
}

// BenchmarkFlattenedWriter writes the same 64 MiB file as a stream into a
// preallocated buffer.
func BenchmarkFlattenedWriter(b *testing.B) {
	stream := flattenedBenchStream()
	file := make([]byte, 64<<20)
	var buf bytes.Buffer
	buf.Grow(len(stream))
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		fw := NewFlattenedWriter(&buf)
		for off := 0; off < len(file); off += 1 << 20 {
			if _, err := fw.WriteAt(file[off:off+1<<20], int64(off)); err != nil {
				b.Fatal(err)
			}
		}
		if err := fw.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
