package diskdump

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// prAgree checks that a PageReader returns, in a shuffled order, every
// page Pages yields before its first lost page, and that a page not in
// the dumped bitmap is reported absent. It returns the pages compared.
func prAgree(t testing.TB, img []byte) int {
	p, err := OpenPartition(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		return 0
	}
	want := map[uint64][]byte{}
	var order []uint64
	for pg, err := range p.Pages() {
		if err != nil {
			break
		}
		data, err := pg.Decompress(nil)
		if err != nil {
			break
		}
		want[pg.PFN] = data
		order = append(order, pg.PFN)
	}
	pr, err := p.PageReader()
	require.NoError(t, err)
	require.Equal(t, p.BlockSize(), pr.PageSize())
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	var dst []byte
	for _, pfn := range order {
		dst, err = pr.ReadPage(pfn, dst)
		require.NoError(t, err, "pfn %d", pfn)
		require.Equal(t, want[pfn], dst, "pfn %d", pfn)
	}
	for pfn := range uint64(p.Header().MaxMapnr) + 2 {
		if p.dumped.Test(pfn) {
			continue
		}
		_, err := pr.ReadPage(pfn, dst)
		require.ErrorIs(t, err, ErrPageAbsent, "pfn %d", pfn)
		break
	}
	return len(order)
}

func TestPageReaderGoldenSamples(t *testing.T) {
	for _, name := range rdrSampleNames {
		t.Run(name, func(t *testing.T) {
			s := rdrLoadSample(t, name)
			n := prAgree(t, s.image)
			assert.Equal(t, len(s.pages), n, "every page of the sample compared")
		})
	}
}

func TestPageReaderKernelWriter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		compress bool
		level    int
		cut      int64
	}{
		{"raw", false, 0, 0}, {"compressed", true, 0, 0}, {"partial raw", false, 1, 0},
		{"partial compressed", true, 19, 0}, {"raw power cut", false, 0, 200}, {"compressed power cut", true, 0, 320},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const blocks = 1100
			img := make([]byte, blocks*4096)
			for blk := range uint64(blocks) {
				FillSignature(img[blk*4096:(blk+1)*4096], blk, binary.LittleEndian)
			}
			img, _, err := writeTestDump(img, blocks, TestDump{Arch: ArchX86_64, MemBytes: 1000 * 4096, Seed: 7, Mix: [5]int{30, 20, 20, 10, 20},
				NoRandomBad: true, Compress: tc.compress, DumpLevel: tc.level, StopAfter: tc.cut})
			require.NoError(t, err)
			n := prAgree(t, img)
			assert.Greater(t, n, 100)
		})
	}
}

// TestPageReaderDamage: a damaged record header ends the index; the pages
// before it are read, those after it are absent with the reason.
func TestPageReaderDamage(t *testing.T) {
	d := rdrBuild(t, rdrSpec{maxPFN: 300, ram: [][2]uint64{{0, 300}}, compress: true})
	d.setRec(d.pfns[200], pageRecord{size: 0})
	p, err := OpenPartition(bytes.NewReader(d.img), int64(len(d.img)))
	require.NoError(t, err)
	pr, err := p.PageReader()
	require.NoError(t, err)
	require.ErrorIs(t, pr.Err(), ErrCorrupt)
	_, err = pr.ReadPage(d.pfns[199], nil)
	require.NoError(t, err)
	_, err = pr.ReadPage(d.pfns[250], nil)
	require.ErrorIs(t, err, ErrPageAbsent)
	require.ErrorIs(t, err, ErrCorrupt)
	var pe *PageError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, d.pfns[250], pe.PFN)
}

// TestPageReaderIndexSize: the sparse index stays a few bytes per MiB.
func TestPageReaderIndexSize(t *testing.T) {
	const pages = 4096
	d := rdrBuild(t, rdrSpec{maxPFN: pages, ram: [][2]uint64{{0, pages}}, compress: true})
	p, err := OpenPartition(bytes.NewReader(d.img), int64(len(d.img)))
	require.NoError(t, err)
	pr, err := p.PageReader()
	require.NoError(t, err)
	require.NoError(t, pr.Err()) // builds the index (it is lazy)
	assert.Len(t, pr.index, pages/indexStride)
	assert.LessOrEqual(t, 8*len(pr.index)+8*len(pr.rank), 40*(pages*4096>>20), "bytes per MiB of RAM")
}

func FuzzPageReader(f *testing.F) {
	rdrLimitMinimize(f)
	for _, s := range rdrFuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		img := rdrExpand(in)
		prAgree(t, img)
		p, err := OpenPartition(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		pr, err := p.PageReader()
		require.NoError(t, err)
		for pfn := range uint64(p.Header().MaxMapnr) + 1 {
			data, err := pr.ReadPage(pfn, nil)
			if err != nil {
				var pe *PageError
				require.ErrorAs(t, err, &pe)
				continue
			}
			require.Len(t, data, p.BlockSize())
		}
	})
}

// TestPageReaderZeroRecord: after the first zero page of a compressed
// dump, records with the same bytes are read as zero pages without being
// inflated, and every page still reads as Pages gives it.
func TestPageReaderZeroRecord(t *testing.T) {
	const blocks = 1100
	img := make([]byte, blocks*4096)
	for blk := range uint64(blocks) {
		FillSignature(img[blk*4096:(blk+1)*4096], blk, binary.LittleEndian)
	}
	img, _, err := writeTestDump(img, blocks, TestDump{Arch: ArchX86_64, MemBytes: 1000 * 4096, Seed: 3, Mix: [5]int{60, 10, 10, 10, 10},
		NoRandomBad: true, Compress: true})
	require.NoError(t, err)
	p, err := OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	pr, err := p.PageReader()
	require.NoError(t, err)
	var zeros, cached int
	buf := make([]byte, 4096)
	for pg, err := range p.Pages() {
		require.NoError(t, err)
		want, err := pg.Decompress(nil)
		require.NoError(t, err)
		hit := pr.zeroRec != nil && bytes.Equal(pg.Data, pr.zeroRec)
		got, err := pr.ReadPage(pg.PFN, buf)
		require.NoError(t, err)
		require.Equal(t, want, got, "PFN %d", pg.PFN)
		if bytes.Equal(want, make([]byte, 4096)) {
			zeros++
		}
		if hit {
			cached++
		}
	}
	require.NotNil(t, pr.zeroRec, "a zero page's record is kept")
	assert.Greater(t, zeros, 300)
	assert.Equal(t, zeros-1, cached, "every zero page after the first is read without inflating")
}
