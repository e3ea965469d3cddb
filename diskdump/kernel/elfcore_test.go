package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/dumpkit/dumpkit/diskdump"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testSeg is a PT_LOAD segment for the test ELF writer: data is the file
// part, memsz >= len(data).
type testSeg struct {
	paddr uint64
	data  []byte
	memsz uint64
}

type testNote struct {
	name string
	typ  uint32
	desc []byte
}

// writeELFCore is a tiny ELF core writer: Ehdr, Phdrs (notes first), note
// data, then the segments' data in order. xnum stores e_phnum as PN_XNUM
// with the count in section header 0.
func writeELFCore(class64 bool, o binary.ByteOrder, machine uint16, segs []testSeg, notes []testNote, xnum bool) []byte {
	ehsize, phentsize, shentsize := 52, 32, 40
	if class64 {
		ehsize, phentsize, shentsize = 64, 56, 64
	}
	var nb []byte
	for _, n := range notes {
		var h [12]byte
		o.PutUint32(h[0:], uint32(len(n.name)+1))
		o.PutUint32(h[4:], uint32(len(n.desc)))
		o.PutUint32(h[8:], n.typ)
		nb = append(nb, h[:]...)
		nb = append(nb, n.name...)
		nb = append(nb, 0)
		for len(nb)%4 != 0 {
			nb = append(nb, 0)
		}
		nb = append(nb, n.desc...)
		for len(nb)%4 != 0 {
			nb = append(nb, 0)
		}
	}
	phnum := len(segs)
	if len(notes) > 0 {
		phnum++
	}
	shoff := 0
	phoff := ehsize
	if xnum {
		shoff = ehsize
		phoff = ehsize + shentsize
	}
	off := phoff + phnum*phentsize
	out := make([]byte, off)
	copy(out, "\x7fELF")
	out[4] = 1
	if class64 {
		out[4] = 2
	}
	out[5] = 1
	if o == binary.BigEndian {
		out[5] = 2
	}
	out[6] = 1
	o.PutUint16(out[16:], 4) // ET_CORE
	o.PutUint16(out[18:], machine)
	o.PutUint32(out[20:], 1)
	n16 := uint16(phnum)
	if xnum {
		n16 = 0xffff
	}
	if class64 {
		o.PutUint64(out[32:], uint64(phoff))
		o.PutUint64(out[40:], uint64(shoff))
		o.PutUint16(out[52:], uint16(ehsize))
		o.PutUint16(out[54:], uint16(phentsize))
		o.PutUint16(out[56:], n16)
		o.PutUint16(out[58:], uint16(shentsize))
		if xnum {
			o.PutUint16(out[60:], 1)
			o.PutUint32(out[shoff+44:], uint32(phnum))
		}
	} else {
		o.PutUint32(out[28:], uint32(phoff))
		o.PutUint32(out[32:], uint32(shoff))
		o.PutUint16(out[40:], uint16(ehsize))
		o.PutUint16(out[42:], uint16(phentsize))
		o.PutUint16(out[44:], n16)
		o.PutUint16(out[46:], uint16(shentsize))
		if xnum {
			o.PutUint16(out[48:], 1)
			o.PutUint32(out[shoff+28:], uint32(phnum))
		}
	}
	phdr := func(i int, typ uint32, foff, paddr, filesz, memsz uint64) {
		p := out[phoff+i*phentsize:]
		o.PutUint32(p, typ)
		if class64 {
			o.PutUint32(p[4:], 7)
			o.PutUint64(p[8:], foff)
			o.PutUint64(p[16:], 0xffff810000000000+paddr)
			o.PutUint64(p[24:], paddr)
			o.PutUint64(p[32:], filesz)
			o.PutUint64(p[40:], memsz)
		} else {
			o.PutUint32(p[4:], uint32(foff))
			o.PutUint32(p[8:], uint32(0xc0000000+paddr))
			o.PutUint32(p[12:], uint32(paddr))
			o.PutUint32(p[16:], uint32(filesz))
			o.PutUint32(p[20:], uint32(memsz))
			o.PutUint32(p[24:], 7)
		}
	}
	i := 0
	if len(notes) > 0 {
		phdr(0, 4, uint64(off), 0, uint64(len(nb)), 0)
		out = append(out, nb...)
		i++
	}
	for _, s := range segs {
		phdr(i, 1, uint64(len(out)), s.paddr, uint64(len(s.data)), s.memsz)
		out = append(out, s.data...)
		i++
	}
	return out
}

// testCoreFile is a generated ELF core and the memory it describes.
type testCoreFile struct {
	file []byte
	segs []testSeg
}

// page is the expected content of page pfn (4 KiB pages).
func (c *testCoreFile) page(pfn uint64) []byte {
	p := make([]byte, 4096)
	start := pfn * 4096
	for _, s := range c.segs {
		for i := range uint64(4096) {
			a := start + i
			if a >= s.paddr && a < s.paddr+uint64(len(s.data)) {
				p[i] = s.data[a-s.paddr]
			}
		}
	}
	return p
}

func (c *testCoreFile) isRAM(pfn uint64) bool {
	start, end := pfn*4096, (pfn+1)*4096
	for _, s := range c.segs {
		if s.paddr < end && s.paddr+s.memsz > start {
			return true
		}
	}
	return false
}

// testCore builds a small core: 640 KiB at 0, 2 MiB at 1 MiB whose last 64
// KiB are only in memory (p_memsz > p_filesz), an unaligned 8 KiB segment,
// and 20 KiB at 5 MiB; a zero page in five; an NT_PRSTATUS note and a
// VMCOREINFO note.
func testCore(class64 bool, o binary.ByteOrder, a diskdump.Arch, seed uint64) *testCoreFile {
	mk := func(paddr, n uint64) []byte {
		b := make([]byte, n)
		for i := uint64(0); i < n; i += 8 {
			if ((paddr+i)/4096)%5 == 0 {
				continue
			}
			binary.LittleEndian.PutUint64(b[i:], mix64(seed^(paddr+i)))
		}
		return b
	}
	segs := []testSeg{
		{paddr: 0, data: mk(0, 640<<10), memsz: 640 << 10},
		{paddr: 1 << 20, data: mk(1<<20, 2<<20-64<<10), memsz: 2 << 20},
		{paddr: 3<<20 + 2048, data: mk(3<<20+2048, 8192), memsz: 8192},
		{paddr: 5 << 20, data: mk(5<<20, 20<<10), memsz: 20 << 10},
	}
	notes := []testNote{
		{name: "CORE", typ: 1, desc: make([]byte, 336)},
		{name: "VMCOREINFO", typ: 0, desc: []byte("OSRELEASE=2.6.9-test.EL\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff80101000\n")},
	}
	return &testCoreFile{file: writeELFCore(class64, o, a.ELFMachine(), segs, notes, false), segs: segs}
}

func TestELFCoreSource(t *testing.T) {
	for _, tc := range []struct {
		class64 bool
		order   binary.ByteOrder
		arch    diskdump.Arch
	}{{true, binary.LittleEndian, diskdump.ArchX86_64}, {false, binary.LittleEndian, diskdump.ArchI386},
		{true, binary.BigEndian, diskdump.ArchPPC64}, {false, binary.BigEndian, diskdump.ArchPPC64}} {
		t.Run(fmt.Sprintf("%v-%v-%v", tc.class64, tc.order, tc.arch), func(t *testing.T) {
			core := testCore(tc.class64, tc.order, tc.arch, 3)
			s, err := NewELFCoreSource(bytes.NewReader(core.file), int64(len(core.file)), 0)
			require.NoError(t, err)
			assert.Equal(t, tc.arch, s.Arch())
			assert.Equal(t, tc.class64, s.class64)
			assert.Equal(t, tc.order, s.order)
			assert.Equal(t, 4096, s.PageSize())
			assert.Equal(t, "2.6.9-test.EL", s.osRelease())
			assert.Equal(t, "ffffffff80101000", s.vmcoreinfo["SYMBOL(swapper_pg_dir)"])
			u := s.Utsname()
			assert.Equal(t, "2.6.9-test.EL", u.Release)
			assert.Equal(t, tc.arch.Machine(), u.Machine)
			assert.Equal(t, "Linux", u.Sysname)
			assert.Equal(t, uint64(5<<20+20<<10)/4096, s.MaxPFN())
			assert.Len(t, s.segs, 4)
			assert.Equal(t, PageAttrs{}, s.Attrs(1))
			buf := make([]byte, 4096)
			var ram int
			for pfn := range s.MaxPFN() + 2 {
				require.Equal(t, core.isRAM(pfn), s.IsRAM(pfn), "PFN %d", pfn)
				if !core.isRAM(pfn) {
					err := s.ReadPage(pfn, buf)
					var pe *diskdump.PageError
					require.ErrorAs(t, err, &pe)
					assert.Equal(t, pfn, pe.PFN)
					continue
				}
				ram++
				require.NoError(t, s.ReadPage(pfn, buf))
				require.Equal(t, core.page(pfn), buf, "PFN %d", pfn)
			}
			// 160 + 512 + 3 (unaligned 8 KiB spans three pages) + 5.
			assert.Equal(t, 160+512+3+5, ram)
		})
	}
	t.Run("page-size-override-and-xnum", func(t *testing.T) {
		c := testCore(true, binary.LittleEndian, diskdump.ArchX86_64, 1)
		f := writeELFCore(true, binary.LittleEndian, 62, c.segs, nil, true)
		s, err := NewELFCoreSource(bytes.NewReader(f), int64(len(f)), 8192)
		require.NoError(t, err)
		assert.Equal(t, 8192, s.PageSize())
		assert.Equal(t, "", s.osRelease())
		assert.Equal(t, "2.6.9-89.ELsmp", s.Utsname().Release)
		assert.Len(t, s.segs, 4)
	})
	t.Run("unknown-machine", func(t *testing.T) {
		c := testCore(true, binary.LittleEndian, diskdump.ArchX86_64, 1)
		f := writeELFCore(true, binary.LittleEndian, 183, c.segs, nil, false) // EM_AARCH64
		s, err := NewELFCoreSource(bytes.NewReader(f), int64(len(f)), 0)
		require.NoError(t, err)
		assert.Equal(t, diskdump.ArchUnknown, s.Arch())
		assert.Equal(t, 4096, s.PageSize())
		assert.Equal(t, "", s.Utsname().Machine)
	})
}

func TestELFCoreSourceErrors(t *testing.T) {
	le := binary.LittleEndian
	good := testCore(true, le, diskdump.ArchX86_64, 1)
	seg := []testSeg{{paddr: 0, data: make([]byte, 4096), memsz: 4096}}
	cases := []struct {
		name  string
		file  func() []byte
		want  error
		field string
	}{
		{"empty", func() []byte { return nil }, diskdump.ErrTruncated, "e_ident"},
		{"magic", func() []byte { b := bytes.Clone(good.file); b[1] = 'X'; return b }, diskdump.ErrCorrupt, "e_ident"},
		{"class", func() []byte { b := bytes.Clone(good.file); b[4] = 3; return b }, diskdump.ErrCorrupt, "e_ident[EI_CLASS]"},
		{"data", func() []byte { b := bytes.Clone(good.file); b[5] = 0; return b }, diskdump.ErrCorrupt, "e_ident[EI_DATA]"},
		{"short-ehdr", func() []byte { return good.file[:40] }, diskdump.ErrTruncated, "Ehdr"},
		{"not-core", func() []byte { b := bytes.Clone(good.file); le.PutUint16(b[16:], 2); return b }, diskdump.ErrUnsupportedVersion, "e_type"},
		{"phentsize", func() []byte { b := bytes.Clone(good.file); le.PutUint16(b[54:], 20); return b }, diskdump.ErrCorrupt, "e_phentsize"},
		{"no-phdrs", func() []byte { b := bytes.Clone(good.file); le.PutUint16(b[56:], 0); return b }, diskdump.ErrCorrupt, "e_phnum"},
		{"phdrs-past-end", func() []byte { b := bytes.Clone(good.file); le.PutUint64(b[32:], uint64(len(b)-10)); return b }, diskdump.ErrTruncated, "e_phoff"},
		{"load-past-end", func() []byte { return good.file[:len(good.file)-1] }, diskdump.ErrTruncated, "p_offset"},
		{"filesz-gt-memsz", func() []byte {
			return writeELFCore(true, le, 62, []testSeg{{paddr: 0, data: make([]byte, 8192), memsz: 4096}}, nil, false)
		}, diskdump.ErrCorrupt, "p_filesz"},
		{"overlap", func() []byte {
			return writeELFCore(true, le, 62, []testSeg{seg[0], {paddr: 2048, data: make([]byte, 4096), memsz: 4096}}, nil, false)
		}, diskdump.ErrCorrupt, "p_paddr"},
		{"overflow", func() []byte {
			return writeELFCore(true, le, 62, []testSeg{{paddr: 1 << 63, data: nil, memsz: 1 << 63}}, nil, false)
		}, diskdump.ErrCorrupt, "p_paddr"},
		{"no-load", func() []byte {
			return writeELFCore(true, le, 62, nil, []testNote{{name: "CORE", typ: 1, desc: []byte{1}}}, false)
		}, diskdump.ErrCorrupt, "Phdr"},
		{"bad-pagesize", func() []byte {
			return writeELFCore(true, le, 62, seg, []testNote{{name: "VMCOREINFO", desc: []byte("PAGESIZE=1000\n")}}, false)
		}, diskdump.ErrCorrupt, "PAGESIZE"},
		{"xnum-without-shdr", func() []byte {
			b := writeELFCore(true, le, 62, seg, nil, false)
			le.PutUint16(b[56:], 0xffff)
			return b
		}, diskdump.ErrTruncated, "sh_info"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.file()
			s, err := NewELFCoreSource(bytes.NewReader(f), int64(len(f)), 0)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.ErrorIs(t, err, tc.want)
			var fe *diskdump.FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.field, fe.Field)
			assert.Equal(t, int64(-1), fe.Blk)
			assert.Contains(t, err.Error(), "diskdump: ")
		})
	}
	// A truncated last note is ignored, like readers do.
	f := writeELFCore(true, le, 62, seg, []testNote{{name: "VMCOREINFO", desc: []byte("OSRELEASE=x\n")}}, false)
	le.PutUint32(f[64+8:], 0) // PT_NOTE p_offset -> 0: garbage notes
	s, err := NewELFCoreSource(bytes.NewReader(f), int64(len(f)), 0)
	require.NoError(t, err)
	assert.Equal(t, "", s.osRelease())
}

// errAfter reads like bytes.Reader until off >= limit, then fails.
type errAfter struct {
	r     *bytes.Reader
	limit int64
}

func (e *errAfter) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > e.limit {
		return 0, errors.New("EIO")
	}
	return e.r.ReadAt(p, off)
}

func TestELFCoreSourceReadError(t *testing.T) {
	core := testCore(true, binary.LittleEndian, diskdump.ArchX86_64, 1)
	s, err := NewELFCoreSource(&errAfter{r: bytes.NewReader(core.file), limit: 1 << 20}, int64(len(core.file)), 0)
	require.NoError(t, err)
	buf := make([]byte, 4096)
	require.NoError(t, s.ReadPage(1, buf))
	err = s.ReadPage(500, buf)
	var pe *diskdump.PageError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, uint64(500), pe.PFN)
	assert.Positive(t, pe.Off)
	require.Error(t, s.ReadPage(1, buf[:100]))
}

// FuzzNewELFCoreSource: no input panics the decoder or the page reader, and
// a decoded core re-encoded with the segments' bytes decodes to the same
// segments, release and pages.
func FuzzNewELFCoreSource(f *testing.F) {
	for _, c64 := range []bool{false, true} {
		for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			c := testCore(c64, o, diskdump.ArchPPC64, 5)
			f.Add(c.file)
			// A small one, so the fuzzer can mutate everything.
			f.Add(writeELFCore(c64, o, 62, []testSeg{{paddr: 4096, data: []byte("hello"), memsz: 8192}},
				[]testNote{{name: "VMCOREINFO", desc: []byte("OSRELEASE=r\nPAGESIZE=4096\n")}}, !c64))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := NewELFCoreSource(bytes.NewReader(data), int64(len(data)), 0)
		if err != nil {
			var fe *diskdump.FormatError
			require.ErrorAs(t, err, &fe)
			return
		}
		require.Positive(t, s.MaxPFN())
		ps := uint64(s.PageSize())
		// Re-encode: the file parts of the segments, the VMCOREINFO note.
		var segs []testSeg
		for _, g := range s.segs {
			if g.fileSize > 1<<20 || len(segs) > 64 {
				return // keep the fuzzer's memory small
			}
			d := data[g.off : g.off+g.fileSize]
			segs = append(segs, testSeg{paddr: g.paddr, data: d, memsz: g.memSize})
		}
		var notes []testNote
		if s.vmcoreinfo != nil {
			var b bytes.Buffer
			for _, k := range []string{"OSRELEASE", "PAGESIZE"} {
				if v, ok := s.vmcoreinfo[k]; ok && !bytes.ContainsAny([]byte(v), "\n\x00") {
					fmt.Fprintf(&b, "%s=%s\n", k, v)
				}
			}
			notes = append(notes, testNote{name: "VMCOREINFO", desc: b.Bytes()})
		}
		re := writeELFCore(s.class64, s.order, s.machine, segs, notes, false)
		s2, err := NewELFCoreSource(bytes.NewReader(re), int64(len(re)), int(ps))
		require.NoError(t, err)
		require.Equal(t, len(s.segs), len(s2.segs))
		for i, g := range s.segs {
			g2 := s2.segs[i]
			require.Equal(t, [3]uint64{g.paddr, g.fileSize, g.memSize}, [3]uint64{g2.paddr, g2.fileSize, g2.memSize})
		}
		require.Equal(t, s.MaxPFN(), s2.MaxPFN())
		require.Equal(t, s.Arch(), s2.Arch())
		if !bytes.ContainsAny([]byte(s.osRelease()), "\n\x00") {
			require.Equal(t, s.osRelease(), s2.osRelease())
		}
		// Read a few pages of each segment from both.
		a, b := make([]byte, ps), make([]byte, ps)
		for _, g := range s.segs {
			for _, pfn := range []uint64{g.paddr / ps, (g.paddr + g.memSize - 1) / ps} {
				require.True(t, s.IsRAM(pfn))
				require.NoError(t, s.ReadPage(pfn, a))
				require.NoError(t, s2.ReadPage(pfn, b))
				require.Equal(t, a, b, "PFN %d", pfn)
			}
		}
	})
}
