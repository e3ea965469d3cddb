package lzo

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blocks are inputs that reach every instruction of the format: short
// blocks (first-byte literal runs), runs of zeros (long matches, length
// extensions), text (short matches at small distances), repeats more
// than 16 KiB apart (the 0001HLLL matches) and random bytes (long literal
// runs with extensions).
func blocks() []struct {
	name string
	data []byte
} {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := func(n int) []byte {
		var b []byte
		for i := 0; len(b) < n; i++ {
			b = fmt.Appendf(b, "line %d of a page of text, pid %d, %x\n", i, rng.IntN(100000), rng.Uint32()&0xfff)
		}
		return b[:n]
	}
	far := random(20000)
	far = append(far, random(30000)...)
	far = append(far, far[100:5100]...) // a 5000-byte match 50000 back... too far: literals
	far = append(far, far[30000:30300]...)
	far = append(far, bytes.Repeat([]byte{0xab}, 40)...)
	far = far[:min(len(far), MaxBlock)]
	mixed := append(append(random(3), make([]byte, 600)...), text(3000)...)
	mixed = append(mixed, random(700)...)
	mixed = append(mixed, mixed[50:1300]...)
	var out []struct {
		name string
		data []byte
	}
	add := func(name string, b []byte) {
		out = append(out, struct {
			name string
			data []byte
		}{name, b})
	}
	for _, n := range []int{1, 2, 3, 4, 5, 17, 18, 19, 238, 239, 300} {
		add(fmt.Sprintf("random %d", n), random(n))
	}
	add("zero page", make([]byte, 4096))
	add("zero 64 KiB", make([]byte, MaxBlock))
	add("text page", text(4096))
	add("text 16 KiB", text(16384))
	add("random page", random(4096))
	add("random 64 KiB", random(MaxBlock))
	add("repeats 16-49 KiB back", far)
	add("mixed", mixed)
	add("stamped zero page", append([]byte("Bad page. PFN 4711 flags 80000000\n"), make([]byte, 4062)...))
	return out
}

func TestRoundTrip(t *testing.T) {
	var c Compressor
	for _, tc := range blocks() {
		t.Run(tc.name, func(t *testing.T) {
			for round := range 2 { // the second round reuses the table
				z, err := c.Compress(nil, tc.data)
				require.NoError(t, err)
				assert.LessOrEqual(t, len(z), len(tc.data)+len(tc.data)/255+16, "round %d", round)
				dst := make([]byte, len(tc.data))
				n, err := Decompress(dst, z)
				require.NoError(t, err, "round %d", round)
				require.Equal(t, len(tc.data), n)
				require.True(t, bytes.Equal(tc.data, dst), "round %d", round)
				// One byte short of room is an overrun, never a write
				// beyond dst.
				if len(tc.data) > 0 {
					short := make([]byte, len(tc.data)-1, len(tc.data)+64)
					_, err = Decompress(short, z)
					require.ErrorIs(t, err, ErrOutputOverrun)
					assert.True(t, bytes.Equal(make([]byte, 65), short[len(short):len(short)+65]), "nothing written past len(dst)")
				}
			}
		})
	}
	_, err := c.Compress(nil, make([]byte, MaxBlock+1))
	require.ErrorIs(t, err, ErrTooLarge)
}

// TestCompressAppends checks that Compress appends to dst.
func TestCompressAppends(t *testing.T) {
	var c Compressor
	page := bytes.Repeat([]byte("dumpkit "), 512)
	z, err := c.Compress([]byte("prefix"), page)
	require.NoError(t, err)
	require.Equal(t, "prefix", string(z[:6]))
	dst := make([]byte, len(page))
	n, err := Decompress(dst, z[6:])
	require.NoError(t, err)
	require.Equal(t, page, dst[:n])
}

func TestDecompressErrors(t *testing.T) {
	var c Compressor
	page := bytes.Repeat([]byte("0123456789abcdef"), 256)
	z, err := c.Compress(nil, page)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
		dst  int // 0: a page
	}{
		{"empty", nil, ErrCorrupt, 0},
		{"no end marker", z[:len(z)-3], ErrCorrupt, 0},
		{"cut end marker", z[:len(z)-1], ErrCorrupt, 0},
		{"data after the end", append(append([]byte{}, z...), 0), ErrCorrupt, 0},
		{"match before the start", []byte{0x40 | 0x1c, 0xff, 0x11, 0, 0}, ErrCorrupt, 0},
		{"literal run past the input", []byte{17 + 200, 'a', 'b'}, ErrCorrupt, 0},
		{"endless extension", append([]byte{0}, make([]byte, 100)...), ErrCorrupt, 0},
		{"match longer than the output", []byte{17 + 1, 'a', 0x20, 0, 0xff, 0, 0}, ErrOutputOverrun, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.dst == 0 {
				tc.dst = len(page)
			}
			_, err := Decompress(make([]byte, tc.dst), tc.in)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

// requireLiblzo2 skips when python3-lzo (liblzo2's Python binding) is
// missing, unless CI=true.
func requireLiblzo2(t *testing.T) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", "import lzo").CombinedOutput()
	if err == nil {
		return
	}
	why := "python3-lzo (liblzo2) not installed: " + strings.TrimSpace(string(out))
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// liblzo2Script decompresses each file "<name>.z" of a directory with
// lzo1x_decompress_safe and compresses each "<name>.in" with
// lzo1x_1_compress, printing hex.
const liblzo2Script = `
import lzo, os, sys
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    p = os.path.join(d, name)
    data = open(p, 'rb').read()
    if name.endswith('.z'):
        n = int(name.split('.')[0].split('-')[1])
        print(name, lzo.decompress(data, False, n).hex())
    elif name.endswith('.in'):
        print(name, lzo.compress(data, 1, False).hex())
`

// liblzo2Blocks are more inputs for TestLiblzo2: two pages of each kind
// of the synthetic machine in blocks of 4, 16 and 64 KiB, and a block of
// each match form (matchBlock).
func liblzo2Blocks(t *testing.T) []struct {
	name string
	data []byte
} {
	var out []struct {
		name string
		data []byte
	}
	for _, size := range []int{4096, 16384, 65536} {
		for _, pm := range pageMixes {
			for i, p := range syntheticPages(t, size, uint64(size)*16, pm.mix)[:2] {
				out = append(out, struct {
					name string
					data []byte
				}{fmt.Sprintf("synthetic %d %s %d", size, pm.name, i), p})
			}
		}
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, dist := range matchDists {
		for _, m := range matchLens {
			if dist+m <= MaxBlock-8 {
				out = append(out, struct {
					name string
					data []byte
				}{fmt.Sprintf("match %d at %d", m, dist), matchBlock(rng, m, dist)})
			}
		}
	}
	return out
}

// TestLiblzo2 checks both directions against liblzo2: it decompresses
// what Compress wrote, and Decompress reads what lzo1x_1_compress wrote.
func TestLiblzo2(t *testing.T) {
	requireLiblzo2(t)
	dir := t.TempDir()
	var c Compressor
	bs := append(blocks(), liblzo2Blocks(t)...)
	for i, tc := range bs {
		z, err := c.Compress(nil, tc.data)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d-%d.z", i, len(tc.data))), z, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d-%d.in", i, len(tc.data))), tc.data, 0o644))
	}
	out, err := exec.Command("/usr/bin/python3", "-c", liblzo2Script, dir).Output()
	require.NoError(t, err)
	seen := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		name, hx, ok := strings.Cut(line, " ")
		require.True(t, ok, line)
		b, err := hex.DecodeString(hx)
		require.NoError(t, err)
		var i, n int
		var ext string
		_, err = fmt.Sscanf(strings.Replace(name, ".", " ", 1), "%d-%d %s", &i, &n, &ext)
		require.NoError(t, err, name)
		tc := bs[i]
		switch ext {
		case "z":
			assert.True(t, bytes.Equal(tc.data, b), "%s: liblzo2 decompresses our stream", tc.name)
		case "in":
			dst := make([]byte, n)
			got, err := Decompress(dst, b)
			require.NoError(t, err, "%s: our decoder on liblzo2's stream", tc.name)
			assert.True(t, bytes.Equal(tc.data, dst[:got]), tc.name)
		}
		seen++
	}
	require.Equal(t, 2*len(bs), seen)
}

// FuzzDecompress: any input decodes without panic and without writing
// past len(dst); what Compress makes of the input decodes back to it.
func FuzzDecompress(f *testing.F) {
	var c Compressor
	for _, tc := range blocks() {
		if len(tc.data) <= 4096 {
			z, _ := c.Compress(nil, tc.data)
			f.Add(z)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		dst := make([]byte, 4096, 4096+16)
		n, err := Decompress(dst, in)
		require.LessOrEqual(t, n, 4096)
		if err == nil {
			require.Equal(t, make([]byte, 16), dst[4096:4096+16])
		}
		if len(in) > MaxBlock {
			return
		}
		z, err := c.Compress(nil, in)
		require.NoError(t, err)
		back := make([]byte, len(in))
		m, err := Decompress(back, z)
		require.NoError(t, err)
		require.Equal(t, len(in), m)
		require.True(t, bytes.Equal(in, back))
	})
}
