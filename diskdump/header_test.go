package diskdump

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dumpkit/dumpkit/fixtures"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRawHeaderSizes(t *testing.T) {
	assert.Equal(t, header32Size, binary.Size(rawHeader32{}))
	assert.Equal(t, header64Size, binary.Size(rawHeader64{}))
}

func sampleHeader(a Arch) *Header {
	return &Header{
		Layout: LayoutOf(a), Signature: DumpSignature, Version: 0,
		Utsname: Utsname{"Linux", "node.example.com", "2.6.9-89.ELsmp", "#1 SMP Mon Jun 22 12:19:40 EDT 2009", a.Machine(), "(none)"},
		Sec:     1246291200, Frac: 123456789, Status: StatusCompleted | StatusCompressed,
		BlockSize: int32(a.PageSize()), SubHdrSize: 1, BitmapBlocks: 2, MaxMapnr: 4096, TotalRAMBlocks: 3899,
		DeviceBlocks: 3908, WrittenBlocks: 3903, CurrentCPU: 1, NrCPUs: 4,
		Tasks: []uint64{0x1000, 0x2000, 0x3000, 0x4000},
	}
}

func TestHeaderOffsets(t *testing.T) {
	tests := []struct {
		name                                 string
		arch                                 Arch
		status, written, tasks, bsize, nrcpu int
	}{
		{"64-bit LE", ArchX86_64, 424, 452, 464, 428, 460},
		{"64-bit BE", ArchPPC64, 424, 452, 464, 428, 460},
		{"32-bit LE", ArchI386, 412, 440, 452, 416, 448},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := sampleHeader(tc.arch)
			b, err := h.EncodeBlock(4096)
			require.NoError(t, err)
			o := h.Layout.Order
			assert.Equal(t, "DISKDUMP", string(b[:8]))
			assert.Equal(t, "Linux", string(b[12:17]))
			assert.Equal(t, h.Utsname.Machine, string(b[272:272+len(h.Utsname.Machine)]))
			assert.Equal(t, uint32(h.Status), o.Uint32(b[tc.status:]))
			assert.Equal(t, uint32(3903), o.Uint32(b[tc.written:]))
			assert.Equal(t, uint32(h.BlockSize), o.Uint32(b[tc.bsize:]))
			assert.Equal(t, uint32(4), o.Uint32(b[tc.nrcpu:]))
			if h.Layout.Is64 {
				assert.Equal(t, uint64(0x1000), o.Uint64(b[tc.tasks:]))
				assert.Equal(t, uint64(0x4000), o.Uint64(b[tc.tasks+24:]))
				assert.Equal(t, uint64(1246291200), o.Uint64(b[408:]))
			} else {
				assert.Equal(t, uint32(0x1000), o.Uint32(b[tc.tasks:]))
				assert.Equal(t, uint32(1246291200), o.Uint32(b[404:]))
			}
			for _, f := range []string{"status", "written_blocks", "tasks", "block_size", "nr_cpus"} {
				assert.Positive(t, h.Layout.FieldOffset(f))
			}
			assert.Equal(t, tc.status, h.Layout.FieldOffset("status"))
			assert.Equal(t, tc.written, h.Layout.FieldOffset("written_blocks"))
			assert.Equal(t, tc.tasks, h.Layout.FieldOffset("tasks"))
		})
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, a := range Arches {
		t.Run(a.String(), func(t *testing.T) {
			h := sampleHeader(a)
			b, err := h.EncodeBlock(a.PageSize())
			require.NoError(t, err)
			got, err := ParseHeader(b, HeaderCheck{DeviceBlocks: 3908, BaseBlk: 1})
			require.NoError(t, err)
			assert.Equal(t, h, got)
			assert.Equal(t, a, got.Arch())
		})
	}
}

func TestHeaderProbeUnknownMachine(t *testing.T) {
	// With an unknown machine the layout is probed (doc/FORMAT.md §4.3).
	for _, a := range Arches {
		h := sampleHeader(a)
		h.Utsname.Machine = "weird"
		h.Status = StatusCompleted
		b, err := h.EncodeBlock(a.PageSize())
		require.NoError(t, err)
		got, err := ParseHeader(b, HeaderCheck{})
		require.NoError(t, err, a.String())
		assert.Equal(t, h.Layout, got.Layout, a.String())
	}
}

func TestHeaderTime(t *testing.T) {
	h := sampleHeader(ArchX86_64)
	assert.Equal(t, int64(1246291200123456789), h.Time().UnixNano())
	h.Utsname.Release = "2.4.21-37.ELsmp"
	h.Frac = 250000
	assert.True(t, h.FracIsMicro())
	assert.Equal(t, int64(1246291200250000000), h.Time().UnixNano())
}

func TestStatusString(t *testing.T) {
	assert.Equal(t, "COMPLETED", StatusCompleted.String())
	assert.Equal(t, "INCOMPLETED|COMPRESSED", (StatusIncompleted | StatusCompressed).String())
	assert.Equal(t, "IN_PROGRESS", StatusInProgress.String())
	assert.Equal(t, "SHORT_AREA|COMPRESSED", (StatusShortArea | StatusCompressed).String())
	assert.Equal(t, "0x3", Status(3).String())
}

func TestParseHeaderErrors(t *testing.T) {
	base := sampleHeader(ArchX86_64)
	tests := []struct {
		name     string
		mod      func(h *Header)
		field    string
		sentinel error
	}{
		{"block size not power of two", func(h *Header) { h.BlockSize = 5000 }, "block_size", ErrCorrupt},
		{"block size too small", func(h *Header) { h.BlockSize = 2048 }, "block_size", ErrCorrupt},
		{"block size too big", func(h *Header) { h.BlockSize = 131072 }, "block_size", ErrCorrupt},
		{"sub_hdr_size zero", func(h *Header) { h.SubHdrSize = 0 }, "sub_hdr_size", ErrCorrupt},
		{"sub_hdr_size huge", func(h *Header) { h.SubHdrSize = 1 << 30 }, "sub_hdr_size", ErrCorrupt},
		{"bitmap_blocks inconsistent", func(h *Header) { h.BitmapBlocks = 3 }, "bitmap_blocks", ErrCorrupt},
		{"max_mapnr zero", func(h *Header) { h.MaxMapnr = 0 }, "max_mapnr", ErrCorrupt},
		{"nr_cpus zero", func(h *Header) { h.NrCPUs = 0 }, "nr_cpus", ErrCorrupt},
		{"nr_cpus negative", func(h *Header) { h.NrCPUs = -1 }, "nr_cpus", ErrCorrupt},
		{"nr_cpus beyond block", func(h *Header) { h.NrCPUs = 1000; h.Tasks = nil }, "nr_cpus", ErrCorrupt},
		{"bitmaps beyond device", func(h *Header) { h.MaxMapnr = 1 << 30; h.BitmapBlocks = 32768 }, "bitmap_blocks", ErrTooSmall},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := *base
			tc.mod(&h)
			b, err := h.EncodeBlock(4096)
			require.NoError(t, err)
			_, err = ParseHeader(b, HeaderCheck{DeviceBlocks: 3908, BaseOff: 4096, BaseBlk: 1})
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.field, fe.Field)
			assert.Equal(t, int64(1), fe.Blk)
			assert.Equal(t, int64(4096+h.Layout.FieldOffset(tc.field)), fe.Off)
			assert.ErrorIs(t, err, tc.sentinel)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
}

func TestParseHeaderSignatureAndTruncation(t *testing.T) {
	h := sampleHeader(ArchX86_64)
	b, err := h.EncodeBlock(4096)
	require.NoError(t, err)
	_, err = ParseHeader(make([]byte, 4096), HeaderCheck{})
	assert.ErrorIs(t, err, ErrNoDump)
	// Every prefix boundary gives ErrTruncated, never a panic.
	for _, n := range []int{0, 4, 7, 8, 100, 451, 463} {
		_, err := ParseHeader(b[:n], HeaderCheck{})
		assert.ErrorIs(t, err, ErrTruncated, "prefix %d", n)
	}
	got, err := ParseHeader(b[:464], HeaderCheck{})
	require.NoError(t, err)
	assert.Empty(t, got.Tasks, "tasks beyond the buffer are not invented")
	var fe *FormatError
	_, err = ParseHeader(b[:100], HeaderCheck{})
	require.ErrorAs(t, err, &fe)
}

// TestSampleHeaders decodes the headers of the golden partitions in
// fixtures/samples and checks them against their JSON descriptions.
func TestSampleHeaders(t *testing.T) {
	dir := fixtures.SampleDir()
	for _, name := range []string{"raw-x86_64-dl0-bo2", "cmp-x86_64-dl0-bo2", "partial-cmp-dl19-bo3"} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, name+".part.gz"))
			if errors.Is(err, os.ErrNotExist) {
				t.Skipf("golden samples not found at %s", dir)
			}
			require.NoError(t, err)
			defer f.Close()
			zr, err := gzip.NewReader(f)
			require.NoError(t, err)
			b := make([]byte, 8192)
			_, err = io.ReadFull(zr, b)
			require.NoError(t, err)
			h, err := ParseHeader(b[4096:], HeaderCheck{BaseOff: 4096, BaseBlk: 1})
			require.NoError(t, err)
			assert.Equal(t, ArchX86_64, h.Arch())
			assert.Equal(t, int32(0), h.Version)
			assert.Equal(t, "oracle.example.com", h.Utsname.Nodename)
			assert.Equal(t, int64(1246291200), h.Sec)
			assert.Equal(t, int32(4), h.NrCPUs)
			assert.Equal(t, uint32(1), h.CurrentCPU)
			assert.Len(t, h.Tasks, 4)
			assert.Equal(t, name != "raw-x86_64-dl0-bo2", h.Status.Compressed())
			assert.True(t, CheckSignature(b[:4096], 0, binary.LittleEndian), "block 0 keeps the format signature")
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, a := range Arches {
		h := sampleHeader(a)
		b, _ := h.EncodeBlock(4096)
		f.Add(b)
		h.Signature = KdumpSignature
		b, _ = h.EncodeBlock(4096)
		f.Add(b[:600])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b, HeaderCheck{DeviceBlocks: 1 << 20, BaseBlk: 1})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FormatError: %v", err)
			}
			return
		}
		out := make([]byte, max(len(b), h.Size()))
		if err := h.Encode(out); err != nil {
			t.Fatal(err)
		}
		h2, err := DecodeHeader(out, h.Layout)
		if err != nil {
			t.Fatal(err)
		}
		assert.Equal(t, h, h2)
	})
}
