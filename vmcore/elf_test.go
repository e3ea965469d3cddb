package vmcore

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/zero"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestELFRawSizes(t *testing.T) {
	assert.Equal(t, elf32EhdrSize, binary.Size(rawElf32Ehdr{}))
	assert.Equal(t, elf64EhdrSize, binary.Size(rawElf64Ehdr{}))
	assert.Equal(t, elf32PhdrSize, binary.Size(rawElf32Phdr{}))
	assert.Equal(t, elf64PhdrSize, binary.Size(rawElf64Phdr{}))
	assert.Equal(t, noteHdrSize, binary.Size(rawNoteHdr{}))
}

func TestPrstatusGeometry(t *testing.T) {
	tests := []struct {
		arch                     diskdump.Arch
		size, regOff             int
		psinfoSize, fnameOffset  int
		taskDesc, headerPageSize int
	}{
		{diskdump.ArchI386, 144, 72, 124, 28, 8, 4096},
		{diskdump.ArchX86_64, 336, 112, 136, 40, 16, 4096},
		{diskdump.ArchPPC64, 504, 112, 136, 40, 16, 4096},
		{diskdump.ArchIA64, 1144, 112, 136, 40, 16, 16384},
	}
	for _, tc := range tests {
		t.Run(tc.arch.String(), func(t *testing.T) {
			size, off := prstatusGeometry(tc.arch)
			assert.Equal(t, tc.size, size)
			assert.Equal(t, tc.regOff, off)
			ps, fo := prpsinfoGeometry(tc.arch)
			assert.Equal(t, tc.psinfoSize, ps)
			assert.Equal(t, tc.fnameOffset, fo)
			assert.Equal(t, int64(tc.headerPageSize), elfHeaderSize(tc.arch, tc.arch.PageSize()))
		})
	}
}

// parseNotes splits a PT_NOTE segment, independently of the reader.
func parseNotes(t *testing.T, b []byte, o binary.ByteOrder) []ELFNote {
	t.Helper()
	var notes []ELFNote
	for len(b) > 0 {
		require.GreaterOrEqual(t, len(b), 12)
		namesz, descsz, typ := o.Uint32(b), o.Uint32(b[4:]), o.Uint32(b[8:])
		name := string(b[12 : 12+namesz])
		d := 12 + pad4(int(namesz))
		notes = append(notes, ELFNote{Name: name, Type: typ, Desc: b[d : d+int(descsz)]})
		b = b[d+pad4(int(descsz)):]
	}
	return notes
}

// TestELFStructure checks the ELF vmcore of every architecture with the
// standard library's ELF parser and a note parser of its own (doc/FORMAT.md §10.1).
func TestELFStructure(t *testing.T) {
	for _, tc := range []struct {
		arch    diskdump.Arch
		class   elf.Class
		data    elf.Data
		machine elf.Machine
		partial bool
	}{
		{diskdump.ArchI386, elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_386, false},
		{diskdump.ArchX86_64, elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_X86_64, true},
		{diskdump.ArchPPC64, elf.ELFCLASS64, elf.ELFDATA2MSB, elf.EM_PPC64, false},
		{diskdump.ArchIA64, elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_IA_64, true},
	} {
		t.Run(tc.arch.String(), func(t *testing.T) {
			cfg := synthConfig{arch: tc.arch, maxPFN: 300, holes: [][2]uint64{{10, 20}}, seed: 11}
			if tc.partial {
				cfg.excluded = func(p uint64) bool { return p%4 == 1 }
			}
			d := newSynthDump(t, cfg)
			mf := memfile.New(nil)
			res, err := writeSource(mf, d.source(), FormatELF, Options{})
			require.NoError(t, err)
			img := mf.Bytes()
			b := int64(tc.arch.PageSize())
			h := elfHeaderSize(tc.arch, int(b))
			assert.Equal(t, h+300*b, int64(len(img)))
			assert.Equal(t, tc.partial, res.Incomplete)

			ef, err := elf.NewFile(bytes.NewReader(img))
			require.NoError(t, err)
			assert.Equal(t, tc.class, ef.Class)
			assert.Equal(t, tc.data, ef.Data)
			assert.Equal(t, tc.machine, ef.Machine)
			assert.Equal(t, elf.ET_CORE, ef.Type)
			assert.Equal(t, elf.ELFOSABI_NONE, ef.OSABI)
			assert.Empty(t, ef.Sections)
			require.Len(t, ef.Progs, 2)
			note, load := ef.Progs[0], ef.Progs[1]
			assert.Equal(t, elf.PT_NOTE, note.Type)
			ehsize := map[elf.Class]uint64{elf.ELFCLASS32: 52 + 2*32, elf.ELFCLASS64: 64 + 2*56}[tc.class]
			assert.Equal(t, ehsize, note.Off)
			assert.Zero(t, note.Align)
			assert.Equal(t, elf.PT_LOAD, load.Type)
			assert.Equal(t, uint64(h), load.Off)
			assert.Zero(t, load.Off%uint64(b))
			assert.Zero(t, load.Paddr)
			assert.Zero(t, load.Vaddr)
			assert.Equal(t, uint64(b), load.Align)
			assert.Equal(t, uint64(300*b), load.Filesz)
			assert.Equal(t, uint64(300*b), load.Memsz)
			assert.Equal(t, elf.PF_R|elf.PF_W|elf.PF_X, load.Flags)

			o := tc.arch.ByteOrder()
			nb := make([]byte, note.Filesz)
			_, err = note.ReadAt(nb, 0)
			require.NoError(t, err)
			notes := parseNotes(t, nb, o)
			require.Len(t, notes, 4)
			for _, n := range notes {
				assert.Equal(t, "CORE", n.Name, "n_namesz 4, no NUL")
			}
			assert.Equal(t, []uint32{1, 3, 4, NTDiskdump}, []uint32{notes[0].Type, notes[1].Type, notes[2].Type, notes[3].Type})
			size, regOff := prstatusGeometry(tc.arch)
			require.Len(t, notes[0].Desc, size)
			assert.Equal(t, d.sub.GRegs(), notes[0].Desc[regOff:regOff+tc.arch.GRegsSize()])
			assert.NotEqual(t, make([]byte, tc.arch.GRegsSize()), d.sub.GRegs())
			_, fname := prpsinfoGeometry(tc.arch)
			assert.Equal(t, "vmlinux\x00", string(notes[1].Desc[fname:fname+8]))
			task := notes[2].Desc
			if tc.arch.Is64() {
				require.Len(t, task, 16)
				assert.Equal(t, d.hdr.Tasks[1], o.Uint64(task))
				if tc.arch == diskdump.ArchIA64 {
					assert.Equal(t, d.sub.SwitchStacks[1], o.Uint64(task[8:]))
				} else {
					assert.Zero(t, o.Uint64(task[8:]))
				}
			} else {
				require.Len(t, task, 8)
				assert.Equal(t, uint32(d.hdr.Tasks[1]), o.Uint32(task))
				assert.Zero(t, o.Uint32(task[4:]))
			}
			require.Len(t, notes[3].Desc, 4)
			assert.Equal(t, map[bool]uint32{true: 1, false: 0}[tc.partial], o.Uint32(notes[3].Desc))

			// Pages are at H + pfn*B; the PT_LOAD reader of debug/elf
			// agrees.
			for pfn, want := range d.want {
				got := make([]byte, b)
				_, err := load.ReadAt(got, int64(pfn)*b)
				require.NoError(t, err)
				require.Equal(t, want, got, "PFN %d", pfn)
			}

			v, err := Open(bytes.NewReader(img), int64(len(img)))
			require.NoError(t, err)
			assert.Equal(t, tc.partial, v.Partial())
			assert.Len(t, v.Notes(), 4)
			assert.Nil(t, v.Header())
			assert.Equal(t, uint64(300), v.NumPages())
		})
	}
}

// TestELFPAE checks the i386 PAE case: a machine with more than 4 GiB has
// p_filesz/p_memsz saturated at 0xFFFFF000 in its ELF32 header (doc/FORMAT.md §13
// item 11), and pages above 4 GiB are still at H + pfn*B.
func TestELFPAE(t *testing.T) {
	ci := elfCoreInfo{arch: diskdump.ArchI386, pageSize: 4096, maxPFN: 0x180000} // 6 GiB
	hdr, err := encodeELFHeader(ci)
	require.NoError(t, err)
	ef, err := elf.NewFile(bytes.NewReader(hdr))
	require.NoError(t, err)
	require.Len(t, ef.Progs, 2)
	assert.Equal(t, uint64(elf32MaxFilesz), ef.Progs[1].Filesz)
	assert.Equal(t, uint64(elf32MaxFilesz), ef.Progs[1].Memsz)

	// A sparse 6 GiB file: header, one page below and one above 4 GiB.
	h := int64(len(hdr))
	img := &sparseFile{size: h + 0x180000*4096, data: map[int64][]byte{}}
	img.WriteAt(hdr, 0)
	low := bytes.Repeat([]byte{0xAA}, 4096)
	high := bytes.Repeat([]byte{0x55}, 4096)
	img.WriteAt(low, h+0x1000*4096)
	img.WriteAt(high, h+0x17ffff*4096)
	v, err := Open(img, img.size)
	require.NoError(t, err)
	assert.Equal(t, uint64(0x180000), v.MaxPFN())
	got, err := v.ReadPage(0x17ffff, nil)
	require.NoError(t, err)
	assert.Equal(t, high, got)
	got, err = v.ReadPage(0x1000, nil)
	require.NoError(t, err)
	assert.Equal(t, low, got)
	_, err = v.ReadPage(0x180000, nil)
	assert.ErrorIs(t, err, ErrNotInDump)
}

// sparseFile is a ReaderAt/WriterAt of page-aligned chunks with holes.
type sparseFile struct {
	size int64
	data map[int64][]byte // offset -> bytes (writes never overlap)
}

func (s *sparseFile) WriteAt(p []byte, off int64) (int, error) {
	s.data[off] = bytes.Clone(p)
	return len(p), nil
}

func (s *sparseFile) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	for o, d := range s.data {
		lo, hi := max(o, off), min(o+int64(len(d)), off+int64(len(p)))
		if lo < hi {
			copy(p[lo-off:hi-off], d[lo-o:hi-o])
		}
	}
	return len(p), nil
}

// TestELFExtend checks both ways of giving an ELF vmcore its length when
// its last page is a hole: Truncate (memfile) and a last byte (plain
// io.WriterAt).
func TestELFExtend(t *testing.T) {
	d := newSynthDump(t, synthConfig{arch: diskdump.ArchX86_64, maxPFN: 200, holes: [][2]uint64{{150, 200}}, seed: 12})
	full := elfHeaderSize(diskdump.ArchX86_64, 4096) + 200*4096
	mf := memfile.New(nil)
	_, err := writeSource(mf, d.source(), FormatELF, Options{})
	require.NoError(t, err)
	assert.Equal(t, full, int64(len(mf.Bytes())))
	var wb writerAtBuffer
	_, err = writeSource(&wb, d.source(), FormatELF, Options{})
	require.NoError(t, err)
	assert.Equal(t, full, int64(len(wb.b)))
	assert.Equal(t, mf.Bytes(), wb.b)

	// A Truncater's previous content is discarded: holes read as zeros.
	for _, f := range allFormats {
		want := memfile.New(nil)
		_, err = writeSource(want, d.source(), f, Options{})
		require.NoError(t, err)
		old := memfile.New(bytes.Repeat([]byte{1}, int(full)+12345))
		_, err = writeSource(old, d.source(), f, Options{})
		require.NoError(t, err)
		assert.Equal(t, want.Bytes(), old.Bytes(), f.String())
	}
}

// rangeRecorder records the ranges written through it.
type rangeRecorder struct {
	w      io.WriterAt
	ranges [][2]int64
}

func (r *rangeRecorder) WriteAt(p []byte, off int64) (int, error) {
	r.ranges = append(r.ranges, [2]int64{off, off + int64(len(p))})
	return r.w.WriteAt(p, off)
}

// TestELFZeroPagesAreHoles: stretches of zero pages (free memory) are not
// written: they stay holes of the sparse file; isolated zero pages and
// short stretches are written (a hole per page fragments the file); every
// page is written at most once, and the vmcore reads back right.
func TestELFZeroPagesAreHoles(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		t.Run(fmt.Sprintf("compressed=%v", compressed), func(t *testing.T) {
			// Every fifth page is zero (isolated), plus a long zero
			// stretch (free memory) and one shorter than elfHolePages.
			long, short := [2]uint64{300, 421}, [2]uint64{500, 511}
			d := newSynthDump(t, synthConfig{arch: diskdump.ArchX86_64, maxPFN: 1200, holes: [][2]uint64{{159, 256}}, compressed: compressed,
				zeros: [][2]uint64{long, short}, seed: 5})
			mf := memfile.New(nil)
			rec := &rangeRecorder{w: mf}
			res, err := writeSource(rec, d.source(), FormatELF, Options{Format: FormatELF})
			require.NoError(t, err)
			assert.Equal(t, uint64(len(d.want)), res.Pages)
			h := elfHeaderSize(d.arch, d.b)
			written := map[uint64]int{}
			for _, r := range rec.ranges {
				if r[0] < h {
					continue // headers
				}
				for off := r[0]; off < r[1]; off += int64(d.b) {
					written[uint64((off-h)/int64(d.b))]++
				}
			}
			var holes, inLong uint64
			for pfn, data := range d.want {
				in := func(z [2]uint64) bool { return pfn >= z[0] && pfn < z[1] }
				switch {
				case !zero.Is(data):
					assert.Equal(t, 1, written[pfn], "page %d has data", pfn)
				case in(long):
					inLong += uint64(written[pfn])
				case in(short):
					assert.Equal(t, 1, written[pfn], "zero page %d of a stretch of %d", pfn, short[1]-short[0])
				default:
					assert.Equal(t, 1, written[pfn], "isolated zero page %d", pfn)
				}
				assert.LessOrEqual(t, written[pfn], 1, "page %d", pfn)
				if written[pfn] == 0 {
					holes++
				}
			}
			// The writer works in runs of elfRunPages: the ends of the
			// stretch in a run may be shorter than elfHolePages.
			assert.LessOrEqual(t, inLong, uint64(2*(elfHolePages-1)), "zero pages of the long stretch written")
			assert.Equal(t, holes, res.ZeroPages)
			checkReadBack(t, mf.Bytes(), d, FormatELF)
		})
	}
}
