package vmcore

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Torn streams: a capture that died leaves the first bytes of a stream,
// followed by whatever the device held before (doc/FLATTENED.md §5, §7).

// flattenedTornSources are complete streams without overlapping records, so
// that every byte a torn copy reports as written must equal the byte of the
// complete file.
func flattenedTornSources(t *testing.T) map[string][]byte {
	_, fixtures := loadFlattenedFixtures(t)
	elf := flattenedTestELF(rand.New(rand.NewPCG(5, 6)), 8)
	return map[string][]byte{
		"makedumpfile kdump-zlib":                   fixtures["kdump-zlib-d1"],
		"makedumpfile kdump-lzo":                    fixtures["kdump-lzo-d0"],
		"ours, ELF in 3000-byte writes, descending": writeFlattenedStream(t, flattenedChunks(elf, 3000, true)),
	}
}

// flattenedCuts returns where to cut stream: at every record header, a few
// bytes into and before each, and at random offsets.
func flattenedCuts(t *testing.T, stream []byte, r *rand.Rand) []int {
	recs, stop := flattenedReaderWalk(t, stream, 0)
	require.Equal(t, FlattenedComplete, stop.End)
	var heads []int
	for _, rec := range recs {
		heads = append(heads, int(rec.StreamOff))
	}
	heads = append(heads, int(stop.Off), FlattenedStartSize+1)
	var cuts []int
	for _, h := range heads {
		for _, d := range []int{-9, -1, 0, 1, 8, 9, 15, 16, 17} {
			cuts = append(cuts, h+d)
		}
	}
	for range 60 {
		cuts = append(cuts, FlattenedStartSize+r.IntN(len(stream)-FlattenedStartSize))
	}
	var ok []int
	for _, c := range cuts {
		if c >= FlattenedStartSize && c < len(stream)-1 && c != int(stop.Off) {
			ok = append(ok, c)
		}
	}
	return ok
}

// flattenedTails is what may follow a torn stream on a device.
func flattenedTails(r *rand.Rand) map[string][]byte {
	random := make([]byte, 1+r.IntN(100000))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	return map[string][]byte{
		"nothing": nil,
		"zeros":   make([]byte, 1+r.IntN(100000)),
		"random":  random,
		"0xff":    bytes.Repeat([]byte{0xff}, 7),
	}
}

func TestFlattenedTorn(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for name, stream := range flattenedTornSources(t) {
		t.Run(name, func(t *testing.T) {
			whole, wres := rearrangeBytes(t, stream, nil)
			require.False(t, wres.Torn())
			recs, _ := flattenedReaderWalk(t, stream, 0)
			runs := 0
			for _, cut := range flattenedCuts(t, stream, r) {
				for tailName, tail := range flattenedTails(r) {
					if tailName == "0xff" && cut > len(stream)-FlattenedHeaderSize {
						continue // completes the end marker: not torn
					}
					torn := append(bytes.Clone(stream[:cut]), tail...)
					checkFlattenedTorn(t, fmt.Sprintf("cut %d + %s", cut, tailName), torn, cut, recs, whole, wres)
					runs++
				}
			}
			t.Logf("%d torn copies", runs)
		})
	}
}

// checkFlattenedTorn rearranges a torn copy of a stream cut at cut and wants:
// torn, no wrong byte in the covered ranges, and no record lost but the one
// before the tear. recs are the records of the complete stream.
func checkFlattenedTorn(t *testing.T, what string, torn []byte, cut int, recs []FlattenedRecord, whole []byte, wres *RearrangeResult) {
	t.Helper()
	dst := memfile.New(nil)
	start := time.Now()
	res, err := Rearrange(dst, bytes.NewReader(torn), int64(len(torn)), nil)
	require.NoError(t, err, what)
	require.Less(t, time.Since(start), 5*time.Second, what)
	require.True(t, res.Torn(), "%s: %+v", what, res.FlattenedStop)
	got := dst.Bytes()
	for _, rg := range res.Coverage.Ranges() {
		require.LessOrEqual(t, rg.End, int64(len(whole)), "%s: range %+v past the complete file", what, rg)
		require.True(t, bytes.Equal(whole[rg.Off:rg.End], got[rg.Off:rg.End]), "%s: wrong bytes in %+v", what, rg)
		require.True(t, wres.Coverage.Contains(rg.Off, rg.Len()), "%s: %+v never written by the complete stream", what, rg)
	}
	arrived := int64(0)
	for _, rec := range recs {
		if rec.DataOff()+rec.Size <= int64(cut) {
			arrived++
		}
	}
	require.GreaterOrEqual(t, res.Records, arrived-1, "%s: records lost", what)
	require.LessOrEqual(t, res.Records, arrived+1, "%s: records from nowhere", what)
}

// flattenedDevice is a large virtual device: prefix, then fill(off) for every
// other byte, so tests can put a torn stream on a terabyte without memory.
type flattenedDevice struct {
	prefix []byte
	size   int64
	fill   func(off int64) byte
}

func (d *flattenedDevice) ReadAt(p []byte, off int64) (int, error) {
	if off >= d.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > d.size-off {
		n = int(d.size - off)
	}
	for i := range n {
		if o := off + int64(i); o < int64(len(d.prefix)) {
			p[i] = d.prefix[o]
		} else {
			p[i] = d.fill(o)
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestFlattenedTornOnHugeDevice puts a torn stream at the start of a 1 TiB
// device and checks that old data after it ends the stream at once, with
// little memory, whatever the headers it holds claim.
func TestFlattenedTornOnHugeDevice(t *testing.T) {
	_, fixtures := loadFlattenedFixtures(t)
	stream := fixtures["kdump-zlib-d1"]
	recs, _ := flattenedReaderWalk(t, stream, 0)
	require.Len(t, recs, 7)
	cut := int(recs[len(recs)-1].StreamOff) // the page-descriptor table never arrived
	const tib = int64(1) << 40
	hash := func(off int64) byte { x := uint64(off) * 0x9e3779b97f4a7c15; return byte(x >> 56) }
	for _, tc := range []struct {
		name  string
		tail  []byte
		fill  func(int64) byte
		limit int64
		end   FlattenedEnd
		// records applied: the last record that arrived is dropped unless the
		// header after it looks plausible; a plausible garbage header is
		// dropped in its turn.
		records int
	}{
		{name: "zeros", fill: func(int64) byte { return 0 }, end: FlattenedBadHeader, records: 5},
		{name: "random", fill: hash, end: FlattenedBadHeader, records: 5},
		// Erased flash reads as 0xff: the end marker. Nothing can tell.
		{name: "0xff", fill: func(int64) byte { return 0xff }, end: FlattenedComplete, records: 6},
		{name: "record as large as the device", tail: appendFlattenedHeader(nil, 0, tib-int64(cut)-16), fill: hash, end: FlattenedNoMarker, records: 6},
		{name: "record larger than the device", tail: appendFlattenedHeader(nil, 0, tib), fill: hash, end: FlattenedCutData, records: 5},
		{name: "record at 1 TiB, limit 1 GiB", tail: appendFlattenedHeader(nil, tib, 4096), fill: hash, limit: 1 << 30, end: FlattenedBeyondLimit, records: 5},
		{name: "record at 1 TiB, then zeros", tail: appendFlattenedHeader(nil, tib, 4096), fill: func(int64) byte { return 0 }, end: FlattenedBadHeader, records: 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := &flattenedDevice{prefix: append(bytes.Clone(stream[:cut]), tc.tail...), size: tib, fill: tc.fill}
			opts := &RearrangeOptions{MaxFileSize: tc.limit}
			var res *RearrangeResult
			var err error
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			allocs := testing.AllocsPerRun(3, func() {
				res, err = Rearrange(discardFlattened{}, dev, dev.size, opts)
			})
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			require.NoError(t, err)
			assert.Less(t, elapsed, 5*time.Second)
			assert.Less(t, allocs, 20.0, "allocations per Rearrange")
			assert.Less(t, (after.TotalAlloc-before.TotalAlloc)/4, uint64(1<<20), "bytes allocated per Rearrange")
			assert.Equal(t, tc.end, res.End, "%+v", res.FlattenedStop)
			assert.Equal(t, int64(tc.records), res.Records)
			assert.Equal(t, tc.end != FlattenedComplete, res.Torn())
		})
	}
}
