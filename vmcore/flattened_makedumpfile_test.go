package vmcore

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Byte identity with makedumpfile 1.7.2, the reference reader and writer of
// the flattened format (doc/FLATTENED.md §8).

// TestFlattenedMakedumpfileStreams rearranges streams that `makedumpfile -F`
// made from an ELF vmcore, with `makedumpfile -R`, makedumpfile-R.pl and
// Rearrange, and wants the same bytes and size from all three.
func TestFlattenedMakedumpfileStreams(t *testing.T) {
	requireMakedumpfile(t, true)
	elf := flattenedTestELF(rand.New(rand.NewPCG(1, 2)), 64)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "kdump-zlib", args: []string{"-c", "-d", "0"}},
		{name: "kdump-lzo", args: []string{"-l", "-d", "0"}},
		{name: "kdump-zlib-d1", args: []string{"-c", "-d", "1"}},
		{name: "kdump-raw", args: []string{"-d", "0"}},
		{name: "elf", args: []string{"-E", "-d", "0"}},
		{name: "elf-d1", args: []string{"-E", "-d", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := makedumpfileFlatten(t, elf, tc.args...)
			require.True(t, IsFlattened(stream))
			want := makedumpfileRearrange(t, stream)
			got, res := rearrangeBytes(t, stream, nil)
			assert.False(t, res.Torn(), "stop %+v", res.FlattenedStop)
			assert.Equal(t, int64(len(stream)-FlattenedHeaderSize), res.Off, "end marker is the stream's last 16 bytes")
			assert.Equal(t, int64(len(want)), res.Size)
			require.Equal(t, len(want), len(got), "file size")
			require.True(t, bytesEqualFlattened(want, got), "bytes differ from makedumpfile -R")
			assert.True(t, bytesEqualFlattened(want, perlRearrange(t, stream)), "makedumpfile-R.pl differs from makedumpfile -R")
			t.Logf("%s: stream %d bytes, %d records, file %d bytes", tc.name, len(stream), res.Records, res.Size)
		})
	}
}

// TestFlattenedMakedumpfileReadsOurs gives streams of our writer to
// `makedumpfile -R` and makedumpfile-R.pl: both must rebuild the intended
// file, byte for byte and size for size, as Rearrange does.
func TestFlattenedMakedumpfileReadsOurs(t *testing.T) {
	requireMakedumpfile(t, true)
	cases := flattenedWriteCases()
	elf := flattenedTestELF(rand.New(rand.NewPCG(3, 4)), 16)
	cases = append(cases, struct {
		name   string
		writes []flattenedWrite
	}{name: "ELF vmcore in 1000-byte writes, descending", writes: flattenedChunks(elf, 1000, true)})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := writeFlattenedStream(t, tc.writes)
			want := applyFlattenedWrites(tc.writes)
			got, _ := rearrangeBytes(t, stream, nil)
			require.Equal(t, want, got)
			assert.True(t, bytesEqualFlattened(want, makedumpfileRearrange(t, stream)), "makedumpfile -R")
			assert.True(t, bytesEqualFlattened(want, perlRearrange(t, stream)), "makedumpfile-R.pl")
		})
	}
}

// flattenedChunks cuts f into writes of n bytes, last first when descending.
func flattenedChunks(f []byte, n int, descending bool) []flattenedWrite {
	var ws []flattenedWrite
	for off := 0; off < len(f); off += n {
		ws = append(ws, flattenedWrite{int64(off), f[off:min(len(f), off+n)]})
	}
	if descending {
		slices.Reverse(ws)
	}
	return ws
}

// TestFlattenedMakedumpfileOnPartition rehearses a raw partition: a
// makedumpfile stream written over old random data, as dd leaves it
// (doc/FLATTENED.md §5, §8). makedumpfile ignores what follows the end
// marker, and so must Rearrange.
func TestFlattenedMakedumpfileOnPartition(t *testing.T) {
	requireMakedumpfile(t, false)
	_, fixtures := loadFlattenedFixtures(t)
	r := rand.New(rand.NewPCG(9, 10))
	for name, stream := range fixtures {
		t.Run(name, func(t *testing.T) {
			part := make([]byte, 1<<20)
			for i := range part {
				part[i] = byte(r.Uint32())
			}
			copy(part, stream)
			want := makedumpfileRearrange(t, part)
			got, res := rearrangeBytes(t, part, nil)
			assert.False(t, res.Torn())
			assert.Equal(t, int64(len(stream)-FlattenedHeaderSize), res.Off)
			assert.True(t, bytesEqualFlattened(want, got), "differs from makedumpfile -R")
		})
	}
}
