package vmcore

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dumpkit/dumpkit/diskdump"

	"github.com/stretchr/testify/require"
)

// synthDump is an in-memory dump description that feeds the vmcore
// encoders directly, without a partition: the same page sequence a
// partition reader yields (raw or zlib records, lost pages as
// *PageError), with the expected content of every page.
type synthDump struct {
	arch       diskdump.Arch
	b          int
	hdr        *diskdump.Header
	sub        *diskdump.SubHeader
	ram        *diskdump.Bitmap
	dumpable   *diskdump.Bitmap
	incomplete bool
	recs       []synthRec
	want       map[uint64][]byte // content of every recoverable page
}

type synthRec struct {
	pg  diskdump.Page
	err error
}

type synthConfig struct {
	arch       diskdump.Arch
	maxPFN     uint64
	holes      [][2]uint64 // [start, end) PFN ranges that are not RAM
	zeros      [][2]uint64 // [start, end) PFN ranges of zero pages
	compressed bool        // records are zlib where that shrinks the page
	excluded   func(pfn uint64) bool
	lost       func(pfn uint64) bool // dumpable but reported as a *PageError
	stopAt     uint64                // pages from this PFN on are missing (interrupted), 0 = none
	seed       uint64
}

// synthPage is deterministic content: zero pages, compressible text and
// random bytes.
func synthPage(b int, pfn, seed uint64) []byte {
	p := make([]byte, b)
	switch pfn % 5 {
	case 0:
		// zero page
	case 1, 2:
		s := fmt.Sprintf("page %d of the synthetic machine, seed %d. ", pfn, seed)
		for i := 0; i < b; i += len(s) {
			copy(p[i:], s)
		}
	default:
		r := rand.New(rand.NewPCG(seed, pfn))
		for i := 0; i+8 <= b; i += 8 {
			binary.LittleEndian.PutUint64(p[i:], r.Uint64())
		}
	}
	return p
}

// testZlib compresses test pages at BestSpeed with one reused writer.
type testZlib struct {
	buf bytes.Buffer
	zw  *zlib.Writer
}

func (z *testZlib) page(t testing.TB, p []byte) []byte {
	z.buf.Reset()
	if z.zw == nil {
		var err error
		z.zw, err = zlib.NewWriterLevel(&z.buf, zlib.BestSpeed)
		require.NoError(t, err)
	} else {
		z.zw.Reset(&z.buf)
	}
	_, err := z.zw.Write(p)
	require.NoError(t, err)
	require.NoError(t, z.zw.Close())
	return bytes.Clone(z.buf.Bytes())
}

func newSynthDump(t testing.TB, cfg synthConfig) *synthDump {
	a := cfg.arch
	b := a.PageSize()
	d := &synthDump{arch: a, b: b, want: map[uint64][]byte{}}
	rb := diskdump.BitmapBlocksFor(cfg.maxPFN, b)
	d.ram = diskdump.NewBitmap(make([]byte, rb*uint64(b)))
	d.dumpable = diskdump.NewBitmap(make([]byte, rb*uint64(b)))
	isHole := func(p uint64) bool {
		for _, h := range cfg.holes {
			if p >= h[0] && p < h[1] {
				return true
			}
		}
		return false
	}
	var off int64 = 64 << 10
	var zl testZlib
	for pfn := range cfg.maxPFN {
		if isHole(pfn) {
			continue
		}
		d.ram.Set(pfn)
		if cfg.excluded != nil && cfg.excluded(pfn) {
			d.incomplete = true
			continue
		}
		d.dumpable.Set(pfn)
		if cfg.stopAt != 0 && pfn >= cfg.stopAt {
			d.incomplete = true
			continue
		}
		data := synthPage(b, pfn, cfg.seed)
		for _, z := range cfg.zeros {
			if pfn >= z[0] && pfn < z[1] {
				clear(data)
			}
		}
		pg := diskdump.Page{PFN: pfn, Off: off, Data: data}
		if cfg.compressed {
			pg.PageFlags = pfn<<4 | 0x40000
			if pfn%3 == 0 {
				pg.Flags = PageDescMappingAnon
			}
			if z := zl.page(t, data); len(z) < b {
				pg.Data, pg.Compressed = z, true
				pg.Flags |= PageDescCompressed
			}
		}
		off += int64(len(pg.Data)) + 16
		if cfg.lost != nil && cfg.lost(pfn) {
			d.recs = append(d.recs, synthRec{err: &diskdump.PageError{PFN: pfn, Off: pg.Off, Err: fmt.Errorf("diskdump: synthetic loss: %w", diskdump.ErrCorrupt)}})
			continue
		}
		d.recs = append(d.recs, synthRec{pg: pg})
		d.want[pfn] = data
	}
	status := diskdump.StatusCompleted
	if cfg.compressed {
		status |= diskdump.StatusCompressed
	}
	if cfg.stopAt != 0 {
		status |= diskdump.StatusInProgress
	}
	nr := 4
	tasks := []uint64{0xc1000000, 0xc2000000, 0xc3000000, 0xc4000000}
	if a.Is64() {
		for i := range tasks {
			tasks[i] |= 0xffff810000000000
		}
	}
	d.hdr = &diskdump.Header{
		Layout: diskdump.LayoutOf(a), Signature: diskdump.DumpSignature, Version: 0,
		Utsname: diskdump.Utsname{Sysname: "Linux", Nodename: "synth.example.com", Release: "2.6.9-89.ELsmp", Version: "#1 SMP Mon Jun 22 12:19:40 EDT 2009", Machine: a.Machine(), Domainname: "(none)"},
		Sec:     1246291200, Frac: 123456789, Status: status, BlockSize: int32(b), SubHdrSize: 1,
		BitmapBlocks: uint32(2 * rb), MaxMapnr: uint32(cfg.maxPFN), TotalRAMBlocks: uint32(d.ram.Count()),
		DeviceBlocks: uint32(cfg.maxPFN + 100), WrittenBlocks: uint32(cfg.maxPFN), CurrentCPU: 1, NrCPUs: int32(nr), Tasks: tasks,
	}
	regs := make([]uint64, a.GRegsSize()/map[bool]int{true: 8, false: 4}[a.Is64()])
	for i := range regs {
		regs[i] = uint64(0x1000 + i)
	}
	var sw []uint64
	if a == diskdump.ArchIA64 {
		sw = []uint64{0xe000000001000000, 0xe000000002000000, 0xe000000003000000, 0xe000000004000000}
	}
	raw, err := diskdump.EncodeSubHeader(a, b, regs, sw)
	require.NoError(t, err)
	d.sub, err = diskdump.DecodeSubHeader(a, raw)
	require.NoError(t, err)
	return d
}

func (d *synthDump) source() *source {
	return &source{
		hdr: d.hdr, sub: d.sub, ram: d.ram, dumpable: d.dumpable, incomplete: func() bool { return d.incomplete },
		records: d.hdr.Status.Compressed(),
		total:   int64(d.hdr.WrittenBlocks) * int64(d.b),
		pages: func(yield func(*diskdump.Page, error) bool) {
			var pg diskdump.Page
			for _, r := range d.recs {
				if r.err != nil {
					if !yield(nil, r.err) {
						return
					}
					continue
				}
				pg = r.pg
				if !yield(&pg, nil) {
					return
				}
			}
		},
	}
}

func (d *synthDump) lostCount() uint64 {
	var n uint64
	for _, r := range d.recs {
		var pe *diskdump.PageError
		if errors.As(r.err, &pe) {
			n++
		}
	}
	return n + d.dumpable.Count() - uint64(len(d.recs))
}
