package diskdump

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rdrSampleDir is where the golden partitions live (HELPERS.md).
var rdrSampleDir = filepath.Join("..", "..", "shared", "samples")

var rdrSampleNames = []string{"raw-x86_64-dl0-bo2", "cmp-x86_64-dl0-bo2", "partial-cmp-dl19-bo3"}

// rdrSample is a golden partition with its page list and JSON description.
type rdrSample struct {
	name  string
	image []byte
	pages map[uint64]string // PFN -> hex SHA-256
	order []uint64          // PFNs in file order
	desc  rdrSampleJSON
}

type rdrSampleJSON struct {
	Header struct {
		BitmapBlocks   uint32   `json:"bitmap_blocks"`
		BlockSize      int32    `json:"block_size"`
		CurrentCPU     uint32   `json:"current_cpu"`
		DeviceBlocks   uint32   `json:"device_blocks"`
		HeaderVersion  int32    `json:"header_version"`
		MaxMapnr       uint32   `json:"max_mapnr"`
		NrCPUs         int32    `json:"nr_cpus"`
		Signature      string   `json:"signature"`
		Status         uint32   `json:"status"`
		SubHdrSize     int32    `json:"sub_hdr_size"`
		Tasks          []uint64 `json:"tasks"`
		TotalRAMBlocks uint32   `json:"total_ram_blocks"`
		WrittenBlocks  uint32   `json:"written_blocks"`
		Timestamp      struct {
			Sec  int64 `json:"sec"`
			Nsec int64 `json:"nsec"`
		} `json:"timestamp"`
		Utsname map[string]string `json:"utsname"`
	} `json:"header"`
	Geometry struct {
		DataStart       uint64 `json:"data_start"`
		HeaderBlocks    uint64 `json:"header_blocks"`
		RAMBitmapBlocks uint64 `json:"ram_bitmap_blocks"`
	} `json:"geometry"`
	RAMRanges [][2]uint64 `json:"ram_ranges"`
	Stats     struct {
		SavedPages   uint64 `json:"saved_pages"`
		SkippedPages uint64 `json:"skipped_pages"`
	} `json:"stats"`
}

var rdrSampleCache = map[string]*rdrSample{}

// rdrLoadSample gunzips a golden sample into memory (cached per test
// binary; callers must not modify image, they copy it to mutate).
func rdrLoadSample(tb testing.TB, name string) *rdrSample {
	tb.Helper()
	if s, ok := rdrSampleCache[name]; ok {
		return s
	}
	gzPath := filepath.Join(rdrSampleDir, name+".part.gz")
	f, err := os.Open(gzPath)
	if errors.Is(err, os.ErrNotExist) {
		tb.Skipf("golden sample %s not found (expected in %s)", name, rdrSampleDir)
	}
	require.NoError(tb, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(tb, err)
	img, err := io.ReadAll(zr)
	require.NoError(tb, err)
	s := &rdrSample{name: name, image: img, pages: map[uint64]string{}}

	pf, err := os.Open(filepath.Join(rdrSampleDir, name+".pages"))
	require.NoError(tb, err)
	defer pf.Close()
	sc := bufio.NewScanner(pf)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		require.Len(tb, fields, 2)
		pfn, err := strconv.ParseUint(fields[0], 10, 64)
		require.NoError(tb, err)
		s.pages[pfn] = fields[1]
		s.order = append(s.order, pfn)
	}
	require.NoError(tb, sc.Err())

	jb, err := os.ReadFile(filepath.Join(rdrSampleDir, name+".json"))
	require.NoError(tb, err)
	require.NoError(tb, json.Unmarshal(jb, &s.desc))
	rdrSampleCache[name] = s
	return s
}

// rdrCollect runs Pages and returns the SHA-256 of every decompressed page
// by PFN, the PFNs in iteration order and the errors.
func rdrCollect(t testing.TB, p *Partition) (map[uint64]string, []uint64, []error) {
	t.Helper()
	got := map[uint64]string{}
	var order []uint64
	var errs []error
	var dst []byte
	for pg, err := range p.Pages() {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var derr error
		dst, derr = pg.Decompress(dst)
		if derr != nil {
			errs = append(errs, derr)
			continue
		}
		sum := sha256.Sum256(dst)
		got[pg.PFN] = hex.EncodeToString(sum[:])
		order = append(order, pg.PFN)
	}
	return got, order, errs
}

func TestGoldenSamples(t *testing.T) {
	for _, name := range rdrSampleNames {
		t.Run(name, func(t *testing.T) {
			s := rdrLoadSample(t, name)
			p, err := OpenPartition(bytes.NewReader(s.image), int64(len(s.image)))
			require.NoError(t, err)
			h, d := p.Header(), s.desc.Header
			assert.Equal(t, d.Signature, h.Signature)
			assert.Equal(t, d.HeaderVersion, h.Version)
			assert.Equal(t, d.BitmapBlocks, h.BitmapBlocks)
			assert.Equal(t, d.BlockSize, h.BlockSize)
			assert.Equal(t, d.CurrentCPU, h.CurrentCPU)
			assert.Equal(t, d.DeviceBlocks, h.DeviceBlocks)
			assert.Equal(t, d.MaxMapnr, h.MaxMapnr)
			assert.Equal(t, d.NrCPUs, h.NrCPUs)
			assert.Equal(t, Status(d.Status), h.Status)
			assert.Equal(t, d.SubHdrSize, h.SubHdrSize)
			assert.Equal(t, d.TotalRAMBlocks, h.TotalRAMBlocks)
			assert.Equal(t, d.WrittenBlocks, h.WrittenBlocks)
			assert.Equal(t, d.Timestamp.Sec, h.Sec)
			assert.Equal(t, d.Timestamp.Nsec, h.Frac)
			assert.Equal(t, d.Tasks, h.Tasks[:len(d.Tasks)])
			assert.Equal(t, d.Utsname["machine"], h.Utsname.Machine)
			assert.Equal(t, d.Utsname["release"], h.Utsname.Release)
			assert.Equal(t, d.Utsname["nodename"], h.Utsname.Nodename)
			assert.Equal(t, ArchX86_64, p.Arch())
			assert.Equal(t, 4096, p.BlockSize())
			assert.False(t, p.IsSwap())
			assert.Equal(t, s.desc.Geometry.DataStart, p.Geometry().FirstDataBlock())
			assert.Equal(t, s.desc.Geometry.HeaderBlocks, p.Geometry().HeaderBlocks())
			assert.Equal(t, s.desc.Geometry.RAMBitmapBlocks, p.Geometry().RAMBitmapBlocks)
			require.NotNil(t, p.SubHeader())
			assert.NotNil(t, p.SubHeader().Regs)

			// Bitmap 1 is exactly the RAM ranges.
			var ram uint64
			for _, rg := range s.desc.RAMRanges {
				for pfn := rg[0]; pfn < rg[1]; pfn++ {
					require.True(t, p.RAMBitmap().Test(pfn), "PFN %d", pfn)
				}
				ram += rg[1] - rg[0]
			}
			assert.Equal(t, ram, p.RAMBitmap().Count())

			got, order, errs := rdrCollect(t, p)
			assert.Empty(t, errs)
			assert.Equal(t, s.pages, got)
			assert.Equal(t, s.order, order, "PFN order")
			st := p.Stats()
			assert.Equal(t, uint64(len(s.pages)), st.Expected)
			assert.Equal(t, uint64(len(s.pages)), st.Found)
			assert.Zero(t, st.Lost)
			assert.Equal(t, ram, st.RAMPages)
			assert.Equal(t, s.desc.Stats.SkippedPages, st.Excluded)
			assert.Equal(t, s.desc.Stats.SkippedPages != 0, p.Incomplete())
			assert.Equal(t, uint64(len(s.pages)), p.DumpableBitmap().Count())
			for pfn := range s.pages {
				assert.True(t, p.DumpableBitmap().Test(pfn))
			}
		})
	}
}
