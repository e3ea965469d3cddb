package vmcore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
)

// Unflatten: the vmcore savecore rebuilds from a flattened stream, complete
// or torn (doc/FLATTENED.md §7).

// rehearsalVmcore dumps a synthetic x86_64 machine of mem bytes with the
// kernel writer (compressed), then converts the partition to a vmcore of
// format f with Write.
func rehearsalVmcore(t testing.TB, mem uint64, f Format) []byte {
	t.Helper()
	a := diskdump.ArchX86_64
	src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: a, MemBytes: mem, Seed: 23})
	cfg := kernel.DefaultConfig(a)
	cfg.Compress, cfg.SampleRate = true, -1
	cfg.Time = time.Unix(1764700000, 250000000)
	maxPFN := mem / 4096
	g := diskdump.NewGeometry(4096, maxPFN, maxPFN, true)
	dev := g.TotalBlocks() + g.RAMBitmapBlocks + 16
	part := memfile.New(make([]byte, dev*4096))
	res, err := kernel.WriteDump(part, dev, src, cfg)
	require.NoError(t, err)
	require.Equal(t, kernel.OutcomeCompleted, res.Outcome)
	p, err := diskdump.OpenPartition(bytes.NewReader(part.Bytes()), int64(len(part.Bytes())))
	require.NoError(t, err)
	out := memfile.New(nil)
	_, err = Write(out, p, Options{Format: f, ShareZeroPage: f == FormatKdump})
	require.NoError(t, err)
	return out.Bytes()
}

// flattenBytes flattens a whole vmcore file with FlattenFile.
func flattenBytes(t testing.TB, file []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := FlattenFile(&buf, bytes.NewReader(file), int64(len(file)))
	require.NoError(t, err)
	require.Positive(t, n)
	return buf.Bytes()
}

// unflattenBytes runs Unflatten on stream in memory.
func unflattenBytes(t testing.TB, stream []byte) ([]byte, *UnflattenResult, error) {
	t.Helper()
	dst := memfile.New(nil)
	res, err := Unflatten(dst, bytes.NewReader(stream), int64(len(stream)), nil)
	got := dst.Bytes()
	if err == nil {
		require.Equal(t, res.Size, int64(len(got)), "file size")
	}
	return got, res, err
}

func TestUnflattenComplete(t *testing.T) {
	man, fixtures := loadFlattenedFixtures(t)
	kd := rehearsalVmcore(t, 4<<20, FormatKdump)
	elf := rehearsalVmcore(t, 4<<20, FormatELF)
	cases := []struct {
		name   string
		stream []byte
		want   []byte // the file, when known
		sha    string // else its SHA-256 as makedumpfile -R made it
		format Format
		pages  uint64
	}{
		{name: "ours KDUMP", stream: flattenBytes(t, kd), want: kd, format: FormatKdump, pages: mustOpen(t, kd).NumPages()},
		{name: "ours ELF", stream: flattenBytes(t, elf), want: elf, format: FormatELF, pages: mustOpen(t, elf).NumPages()},
	}
	for _, fx := range man {
		f := FormatKdump
		if fx.Name == "elf-d0" {
			f = FormatELF
		}
		cases = append(cases, struct {
			name   string
			stream []byte
			want   []byte
			sha    string
			format Format
			pages  uint64
		}{name: "makedumpfile " + fx.Name, stream: fixtures[fx.Name], sha: fx.RearrangedSHA256, format: f})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, res, err := unflattenBytes(t, tc.stream)
			require.NoError(t, err)
			assert.False(t, res.Torn())
			assert.False(t, res.Incomplete)
			assert.Equal(t, tc.format, res.Format)
			if tc.want != nil {
				require.True(t, bytes.Equal(tc.want, got), "rebuilt file differs (%d vs %d bytes)", len(got), len(tc.want))
				assert.Equal(t, tc.pages, res.Pages)
			} else {
				assert.Equal(t, tc.sha, sha256Flattened(got))
			}
			if tc.format == FormatKdump {
				require.NotNil(t, res.Header)
				assert.Equal(t, uint64(res.Header.MaxMapnr), res.UnknownFromPFN)
			}
		})
	}
}

// TestUnflattenMakedumpfileReadsFlattenFile checks FlattenFile's streams
// against makedumpfile -R and makedumpfile-R.pl.
func TestUnflattenMakedumpfileReadsFlattenFile(t *testing.T) {
	requireMakedumpfile(t, true)
	for _, f := range []Format{FormatKdump, FormatELF} {
		t.Run(f.String(), func(t *testing.T) {
			file := rehearsalVmcore(t, 4<<20, f)
			stream := flattenBytes(t, file)
			assert.True(t, bytes.Equal(file, makedumpfileRearrange(t, stream)), "makedumpfile -R")
			assert.True(t, bytes.Equal(file, perlRearrange(t, stream)), "makedumpfile-R.pl")
		})
	}
}

// refPages holds the content of every page of a complete vmcore.
func refPages(t *testing.T, v *File) map[uint64]string {
	t.Helper()
	m := map[uint64]string{}
	var buf []byte
	var err error
	for pfn := range v.Pages() {
		buf, err = v.ReadPage(pfn, buf)
		require.NoError(t, err, "PFN %d", pfn)
		m[pfn] = sha(buf)
	}
	return m
}

// tornPages checks a vmcore rebuilt from a torn KDUMP stream: it opens, is
// marked incomplete, and every page it holds equals the page of the
// complete file (ref, from refPages). It returns the pages held.
func tornPages(t *testing.T, what string, got []byte, res *UnflattenResult, ref map[uint64]string) uint64 {
	t.Helper()
	v, err := Open(bytes.NewReader(got), int64(len(got)))
	require.NoError(t, err, what)
	require.True(t, v.Partial(), "%s: not marked incomplete", what)
	require.Equal(t, res.Pages, v.NumPages(), what)
	var n uint64
	var a []byte
	for pfn := range v.Pages() {
		a, err = v.ReadPage(pfn, a)
		require.NoError(t, err, "%s: PFN %d", what, pfn)
		want, ok := ref[pfn]
		require.True(t, ok, "%s: PFN %d not in the complete dump", what, pfn)
		require.Equal(t, want, sha(a), "%s: PFN %d differs from the complete dump", what, pfn)
		n++
	}
	require.Equal(t, res.Pages, n, what)
	require.LessOrEqual(t, res.Pages+res.Lost, uint64(len(ref)), what)
	return n
}

func TestUnflattenTornKdump(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	file := rehearsalVmcore(t, 4<<20, FormatKdump)
	_, fixtures := loadFlattenedFixtures(t)
	for name, stream := range map[string][]byte{"ours": flattenBytes(t, file), "makedumpfile zlib": fixtures["kdump-zlib-d1"]} {
		t.Run(name, func(t *testing.T) {
			complete, _, err := unflattenBytes(t, stream)
			require.NoError(t, err)
			ref := refPages(t, mustOpen(t, complete))
			tails := flattenedTails(r)
			names := []string{"nothing", "zeros", "random", "0xff"}
			var runs, kept, noHeader int
			for i, cut := range flattenedCuts(t, stream, r) {
				// One tail per cut, in turn: every tail meets every kind of cut.
				tailName := names[i%len(names)]
				if tailName == "0xff" && cut > len(stream)-FlattenedHeaderSize {
					continue
				}
				what := fmt.Sprintf("cut %d + %s", cut, tailName)
				torn := append(bytes.Clone(stream[:cut]), tails[tailName]...)
				start := time.Now()
				got, res, err := unflattenBytes(t, torn)
				require.Less(t, time.Since(start), 5*time.Second, what)
				runs++
				if errors.Is(err, ErrFlattenedNoHeader) {
					noHeader++
					continue
				}
				require.NoError(t, err, what)
				require.True(t, res.Torn() && res.Incomplete, what)
				if tornPages(t, what, got, res, ref) > 0 {
					kept++
				}
			}
			t.Logf("%d torn copies: %d without the header, %d with pages kept", runs, noHeader, kept)
			if name == "ours" {
				assert.Positive(t, kept, "a tear in the data area keeps the pages before it")
			}
		})
	}
}

// TestUnflattenTornKdumpOracle has libkdumpfile read vmcores rebuilt from
// torn streams: the table cut, the data cut, and a tear near the end.
func TestUnflattenTornKdumpOracle(t *testing.T) {
	requireOracle(t, false)
	file := rehearsalVmcore(t, 4<<20, FormatKdump)
	stream := flattenBytes(t, file)
	whole, err := Open(bytes.NewReader(file), int64(len(file)))
	require.NoError(t, err)
	for _, frac := range []float64{0.1, 0.5, 0.97} {
		t.Run(fmt.Sprint(frac), func(t *testing.T) {
			cut := FlattenedStartSize + int(frac*float64(len(stream)-FlattenedStartSize))
			// The old contents of a partition follow the tear.
			old := make([]byte, 1<<20)
			for i := range old {
				old[i] = byte(i*7 + i>>9)
			}
			got, res, err := unflattenBytes(t, append(bytes.Clone(stream[:cut]), old...))
			require.NoError(t, err)
			tornPages(t, "oracle", got, res, refPages(t, whole))
			path := filepath.Join(t.TempDir(), "vmcore")
			require.NoError(t, os.WriteFile(path, got, 0o600))
			v, err := Open(bytes.NewReader(got), int64(len(got)))
			require.NoError(t, err)
			want := map[uint64]string{}
			var buf []byte
			for pfn := range v.Pages() {
				buf, err = v.ReadPage(pfn, buf)
				require.NoError(t, err)
				want[pfn] = sha(buf)
			}
			checkOracle(t, path, FormatKdump, want, v.MaxPFN(), 4096)
			t.Logf("cut at %d of %d: %d pages kept, %d lost", cut, len(stream), res.Pages, res.Lost)
		})
	}
}

// TestUnflattenTornELF: the bytes of a torn ELF vmcore that arrived equal
// the complete file's, the others read as zeros and are reported as holes.
func TestUnflattenTornELF(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	file := rehearsalVmcore(t, 4<<20, FormatELF)
	stream := flattenBytes(t, file)
	cuts := flattenedCuts(t, stream, r)
	recs, _ := flattenedReaderWalk(t, stream, 0)
	// The record with the headers is lost with the one after it when that
	// one is cut short: the reader cannot tell its header from old data.
	headers := int(recs[1].DataOff()+recs[1].Size) + FlattenedHeaderSize
	for _, cut := range cuts[len(cuts)-40:] {
		what := fmt.Sprintf("cut %d", cut)
		got, res, err := unflattenBytes(t, append(bytes.Clone(stream[:cut]), make([]byte, 100)...))
		if errors.Is(err, ErrFlattenedNoHeader) {
			require.Less(t, cut, headers, what)
			continue
		}
		require.NoError(t, err, what)
		require.True(t, res.Incomplete, what)
		require.Equal(t, int64(len(file)), res.Size, what)
		masked := make([]byte, len(file))
		for _, rg := range res.Rearrange.Coverage.Ranges() {
			copy(masked[rg.Off:rg.End], file[rg.Off:rg.End])
		}
		require.True(t, bytes.Equal(masked, got), "%s: rebuilt file is not the arrived part of the complete one", what)
		var listed int64
		for _, h := range res.Holes {
			listed += h.Len()
			assert.False(t, res.Rearrange.Coverage.Contains(h.Off, 1), "%s: hole %+v was written", what, h)
		}
		assert.LessOrEqual(t, listed, res.HoleBytes, what)
		assert.Positive(t, res.HoleBytes, "%s: the last PT_LOAD bytes never arrived", what)
	}
}

// TestUnflattenTornHugeDevice: a torn stream at the start of a 1 TiB device
// whose old contents look like records; Unflatten finishes at once and the
// rebuilt file stays small.
func TestUnflattenTornHugeDevice(t *testing.T) {
	file := rehearsalVmcore(t, 4<<20, FormatKdump)
	stream := flattenBytes(t, file)
	recs, _ := flattenedReaderWalk(t, stream, 0)
	cut := int(recs[len(recs)/2].StreamOff)
	const tib = int64(1) << 40
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{name: "record at 512 GiB", tail: appendFlattenedHeader(nil, tib/2, 4096)},
		{name: "record as large as the device", tail: appendFlattenedHeader(nil, 0, tib-int64(cut)-16)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := &flattenedDevice{prefix: append(bytes.Clone(stream[:cut]), tc.tail...), size: tib,
				fill: func(off int64) byte { return byte(uint64(off) * 0x9e3779b97f4a7c15 >> 56) }}
			dst, err := os.Create(filepath.Join(t.TempDir(), "vmcore"))
			require.NoError(t, err)
			defer dst.Close()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			res, err := Unflatten(dst, dev, dev.size, nil)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			require.NoError(t, err)
			assert.Less(t, elapsed, 5*time.Second)
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "bytes allocated")
			assert.True(t, res.Torn())
			assert.LessOrEqual(t, res.Size, int64(len(file)), "the KDUMP header bounds the file")
			got, err := os.ReadFile(dst.Name())
			require.NoError(t, err)
			require.Equal(t, res.Size, int64(len(got)))
			tornPages(t, tc.name, got, res, refPages(t, mustOpen(t, file)))
		})
	}
}

func mustOpen(t *testing.T, file []byte) *File {
	t.Helper()
	v, err := Open(bytes.NewReader(file), int64(len(file)))
	require.NoError(t, err)
	return v
}

func TestUnflattenNotFlattened(t *testing.T) {
	_, _, err := unflattenBytes(t, make([]byte, 8192))
	require.ErrorIs(t, err, ErrNotFlattened)
	// A torn stream whose records hold no vmcore header.
	stream := appendFlattenedRecord(encodeFlattenedStart(), 1<<20, bytes.Repeat([]byte{7}, 100))
	_, res, err := unflattenBytes(t, stream)
	require.ErrorIs(t, err, ErrFlattenedNoHeader)
	assert.True(t, res.Torn())
}
