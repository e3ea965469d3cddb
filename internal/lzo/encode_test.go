package lzo

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTrip compresses b, checks the stream's bound, decodes it back and
// returns the stream's instructions.
func roundTrip(t *testing.T, c *Compressor, b []byte) []op {
	t.Helper()
	z, err := c.Compress(nil, b)
	require.NoError(t, err)
	require.LessOrEqual(t, len(z), storedLen(len(b)))
	require.LessOrEqual(t, storedLen(len(b)), MaxCompressedLen(len(b)))
	back := make([]byte, len(b))
	n, err := Decompress(back, z)
	require.NoError(t, err)
	require.Equal(t, len(b), n)
	require.True(t, bytes.Equal(b, back), "round trip")
	ops, err := walk(z)
	require.NoError(t, err)
	for _, o := range ops {
		require.LessOrEqual(t, o.dist, m4MaxDist, "%+v", o)
	}
	return ops
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestLiteralRuns checks each form of a literal run: after a match (in
// its S bits, 0000LLLL, with an extension), before a match or at the end
// of the block, and at the start of a stream (the first byte, or 0000 with
// an extension).
func TestLiteralRuns(t *testing.T) {
	var c Compressor
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 3, 4, 5, 15, 16, 17, 18, 19, 20, 237, 238, 239, 240, 272, 273, 274, 300, 528, 529, 1000, 3000} {
		want := op{kind: "lit", n: n, ext: n > 18}
		if n <= 3 {
			want.kind = "lit-s"
		}
		head := randomBytes(rng, 20)
		lits := randomBytes(rng, n)
		lits[0] = ^head[0] // ends the match before
		// 20 bytes, the same 20 again (a match), n random literals.
		b := append(append(append([]byte{}, head...), head...), lits...)
		t.Run(fmt.Sprintf("after a match, at the end %d", n), func(t *testing.T) {
			assert.Contains(t, roundTrip(t, &c, b), want)
		})
		// The search steps over up to 10 bytes after 300 literals,
		// and finds the 20 bytes at the end again.
		if n <= 300 {
			t.Run(fmt.Sprintf("after a match, before one %d", n), func(t *testing.T) {
				ops := roundTrip(t, &c, append(append([]byte{}, b...), head...))
				assert.Contains(t, ops, want)
				// From the second 20 bytes if the search looked
				// at the start of the last, else from the first.
				last := ops[len(ops)-2]
				assert.Contains(t, []op{{kind: "m3", n: 20, dist: 20 + n}, {kind: "m3", n: 20, dist: 40 + n}}, last)
			})
		}
		t.Run(fmt.Sprintf("at the start %d", n), func(t *testing.T) {
			first := op{kind: "lit-first", n: n}
			if n > 238 {
				first = op{kind: "lit", n: n, ext: true}
			}
			assert.Equal(t, []op{first, {kind: "end"}}, roundTrip(t, &c, lits))
		})
	}
}

// matchDists and matchLens are the edges of the distance and length
// classes of matches.
var (
	matchDists = []int{1, 2, 3, 7, 8, 9, 100, 2047, 2048, 2049, 16383, 16384, 16385, 16386, 40000, 49151, 49152, 60000}
	matchLens  = []int{4, 5, 8, 9, 10, 33, 34, 35, 288, 289, 290, 543, 544, 600, 2000}
)

// matchBlock is a block with a match of m bytes at dist: a random head
// of up to m bytes, zeros up to dist (one long match), the head's first m
// bytes again (repeated when m > dist) and a byte that ends the match.
func matchBlock(rng *rand.Rand, m, dist int) []byte {
	head := randomBytes(rng, min(m, dist))
	for i := range min(len(head), 8) {
		head[i] = byte(0x41 + i) // no shorter period
	}
	b := append(head, make([]byte, dist-len(head))...)
	for i := range m {
		b = append(b, b[i])
	}
	return append(b, ^b[len(b)-dist])
}

// TestMatches checks matches of every length class at the edges of each
// distance class: M2 (up to 8 bytes, 2048 back), M3 (up to 16384 back,
// an extension past 33 bytes) and M4 (up to 49151 back, an extension past
// 9 bytes), and that nothing farther is taken.
func TestMatches(t *testing.T) {
	var c Compressor
	rng := rand.New(rand.NewPCG(5, 6))
	for _, dist := range matchDists {
		for _, m := range matchLens {
			if dist+m > MaxBlock-8 {
				continue
			}
			t.Run(fmt.Sprintf("%d at %d", m, dist), func(t *testing.T) {
				ops := roundTrip(t, &c, matchBlock(rng, m, dist))
				if dist > m4MaxDist {
					for _, o := range ops {
						assert.NotEqual(t, dist, o.dist, "%+v", ops)
					}
					return
				}
				var kind string
				switch {
				case m <= m2MaxLen && dist <= m2MaxDist:
					kind = "m2"
				case dist <= m3MaxDist:
					kind = "m3"
				default:
					kind = "m4"
				}
				ext := kind == "m3" && m > m3MaxLen || kind == "m4" && m > m4MaxLen
				assert.Contains(t, ops, op{kind: kind, n: m, dist: dist, ext: ext}, "%+v", ops)
			})
		}
	}
}

// TestSyntheticPages compresses pages of each kind of the synthetic
// machine in blocks of 4, 16 and 64 KiB.
func TestSyntheticPages(t *testing.T) {
	var c Compressor
	for _, size := range []int{4096, 16384, 65536} {
		for _, pm := range pageMixes {
			t.Run(fmt.Sprintf("%d/%s", size, pm.name), func(t *testing.T) {
				pages := syntheticPages(t, size, uint64(size)*16, pm.mix)
				for _, p := range pages[:min(len(pages), 4)] {
					roundTrip(t, &c, p)
				}
			})
		}
	}
}

// TestWindowPastTheBlock compresses blocks of zeros, each shorter than
// the one before: the window past the end still holds the zeros of the
// longer block, and a match must stop at the end of the block all the
// same. Then the same lengths of random bytes, which may not match
// what is left of them.
func TestWindowPastTheBlock(t *testing.T) {
	var c Compressor
	rng := rand.New(rand.NewPCG(7, 8))
	for _, fill := range []string{"zeros", "random"} {
		for _, n := range []int{MaxBlock, 65535, 49153, 16385, 4097, 4096, 4095, 300, 17, 9, 8, 5, 4, 3, 1, 0} {
			t.Run(fmt.Sprintf("%s %d", fill, n), func(t *testing.T) {
				b := make([]byte, n)
				if fill == "random" {
					b = randomBytes(rng, n)
				}
				roundTrip(t, &c, b)
			})
		}
	}
}

// TestWorstCase checks the bound on incompressible blocks of every length
// class: the stream of all literals is exactly what the format needs for
// them, within MaxCompressedLen, and Compress allocates nothing when dst
// has the room vmcore gives it (len(src)+len(src)/255+64).
func TestWorstCase(t *testing.T) {
	var c Compressor
	rng := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{0, 1, 3, 4, 238, 239, 273, 274, 4096, 16384, 65536} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b := randomBytes(rng, n)
			want := n + 3 // the literals and the end marker
			switch {
			case n > 238:
				want += 1 + (n-18-1)/255 + 1 // 0000 0000, the extension
			case n > 0:
				want++ // the first byte
			}
			z := make([]byte, 0, n+n/255+64)
			allocs := testing.AllocsPerRun(3, func() {
				var err error
				z, err = c.Compress(z[:0], b)
				require.NoError(t, err)
			})
			assert.Zero(t, allocs)
			require.Len(t, z, want)
			require.LessOrEqual(t, len(z), MaxCompressedLen(n))
			roundTrip(t, &c, b)
		})
	}
}

// FuzzCompress: any block compresses within MaxCompressedLen to a stream
// that decodes back to it, uses no distance LZO1X cannot encode, and
// the stream is the same from a Compressor that compressed other blocks
// before as from a new one (nothing of an earlier block leaks into the
// next).
func FuzzCompress(f *testing.F) {
	for _, tc := range blocks() {
		if len(tc.data) <= 4096 {
			f.Add(tc.data)
		}
	}
	for _, pm := range pageMixes[1:] {
		f.Add(syntheticPages(f, 4096, 4096*16, pm.mix)[0])
	}
	var c Compressor
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > MaxBlock {
			return
		}
		z, err := c.Compress(nil, in)
		require.NoError(t, err)
		var fresh Compressor
		again, err := fresh.Compress(nil, in)
		require.NoError(t, err)
		require.Equal(t, again, z)
		roundTrip(t, &c, in)
	})
}

// TestWorstCaseMatches builds blocks of the shape that makes a stream
// longer than the block as one literal run: matches of 4 bytes in 3, far
// back, each followed by 19 literals, a run that costs 2 bytes on top of
// its literals. Compress writes the literal run instead. With 5-byte
// matches (5 in 3) the stream stays shorter and keeps them. The sources of
// the matches are positions the search looked at in a random head, and 200
// zeros let it step 1 byte at a time again after the head.
func TestWorstCaseMatches(t *testing.T) {
	var c Compressor
	rng := rand.New(rand.NewPCG(13, 14))
	for _, size := range []int{4096, 16384, 65536} {
		for _, m := range []int{4, 5} {
			t.Run(fmt.Sprintf("%d, %d-byte matches", size, m), func(t *testing.T) {
				const head = 2100
				b := randomBytes(rng, head)
				var seen []int
				for ip := 1; ip < head-8; ip += 1 + ip>>skipShift {
					seen = append(seen, ip)
				}
				b = append(b, make([]byte, 200)...)
				segments := 0
				for ; len(b)+m+19 <= size; segments++ {
					from := seen[segments%len(seen)]
					b = append(b, b[from:from+m]...)
					b = append(b, randomBytes(rng, 19)...)
				}
				ops := roundTrip(t, &c, b)
				z, err := c.Compress(nil, b)
				require.NoError(t, err)
				require.LessOrEqual(t, len(z), storedLen(len(b)))
				if m == minMatch && size > 4096 {
					require.Equal(t, []op{{kind: "lit", n: len(b), ext: true}, {kind: "end"}}, ops)
					return
				}
				taken := 0
				for _, o := range ops {
					if o.n == m && o.kind != "lit" && o.kind != "lit-s" {
						taken++
					}
				}
				// Later ones lose their source in the table.
				assert.Greater(t, taken, min(segments, len(seen))/2, "the matches are taken")
			})
		}
	}
}
