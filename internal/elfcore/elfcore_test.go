package elfcore_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/elfcore"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// spec describes a core file for encode: the program headers are written
// after the ELF header (and section header 0 when xnum), then the note
// segment, then extra. A PT_NOTE prog whose Off is noteOff gets the note
// segment's offset and size.
type spec struct {
	class   elf.Class
	order   order
	machine elf.Machine
	progs   []elf.ProgHeader
	notes   []byte
	xnum    bool // e_phnum = PN_XNUM, count in sh_info
	extra   []byte
}

const noteOff = ^uint64(0)

// order is a byte order that can also append.
type order interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// encode writes a core file with encoding/binary and debug/elf's structs:
// an independent writer for the parser under test.
func encode(s spec) []byte {
	ehsize, phentsize, shentsize := 52, 32, 40
	if s.class == elf.ELFCLASS64 {
		ehsize, phentsize, shentsize = 64, 56, 64
	}
	phoff := ehsize
	shoff := 0
	if s.xnum {
		shoff, phoff = ehsize, ehsize+shentsize
	}
	notesAt := uint64(phoff + len(s.progs)*phentsize)
	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS], ident[elf.EI_VERSION] = byte(s.class), byte(elf.EV_CURRENT)
	ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	if s.order == order(binary.BigEndian) {
		ident[elf.EI_DATA] = byte(elf.ELFDATA2MSB)
	}
	phnum := uint16(len(s.progs))
	if s.xnum {
		phnum = 0xffff
	}
	var b bytes.Buffer
	put := func(v any) { _ = binary.Write(&b, s.order, v) }
	if s.class == elf.ELFCLASS64 {
		put(elf.Header64{Ident: ident, Type: uint16(elf.ET_CORE), Machine: uint16(s.machine), Version: 1, Phoff: uint64(phoff),
			Shoff: uint64(shoff), Ehsize: uint16(ehsize), Phentsize: uint16(phentsize), Phnum: phnum, Shentsize: uint16(shentsize)})
		if s.xnum {
			put(elf.Section64{Info: uint32(len(s.progs))})
		}
	} else {
		put(elf.Header32{Ident: ident, Type: uint16(elf.ET_CORE), Machine: uint16(s.machine), Version: 1, Phoff: uint32(phoff),
			Shoff: uint32(shoff), Ehsize: uint16(ehsize), Phentsize: uint16(phentsize), Phnum: phnum, Shentsize: uint16(shentsize)})
		if s.xnum {
			put(elf.Section32{Info: uint32(len(s.progs))})
		}
	}
	for _, p := range s.progs {
		if p.Type == elf.PT_NOTE && p.Off == noteOff {
			p.Off, p.Filesz = notesAt, uint64(len(s.notes))
		}
		if s.class == elf.ELFCLASS64 {
			put(elf.Prog64{Type: uint32(p.Type), Flags: uint32(p.Flags), Off: p.Off, Vaddr: p.Vaddr, Paddr: p.Paddr,
				Filesz: p.Filesz, Memsz: p.Memsz, Align: p.Align})
		} else {
			put(elf.Prog32{Type: uint32(p.Type), Off: uint32(p.Off), Vaddr: uint32(p.Vaddr), Paddr: uint32(p.Paddr),
				Filesz: uint32(p.Filesz), Memsz: uint32(p.Memsz), Flags: uint32(p.Flags), Align: uint32(p.Align)})
		}
	}
	b.Write(s.notes)
	b.Write(s.extra)
	return b.Bytes()
}

// noteBytes encodes notes: namesz counts a terminating NUL, name and
// descriptor are padded to 4 bytes.
func noteBytes(o binary.AppendByteOrder, notes ...elfcore.Note) []byte {
	var b []byte
	for _, n := range notes {
		b = o.AppendUint32(b, uint32(len(n.Name)+1))
		b = o.AppendUint32(b, uint32(len(n.Desc)))
		b = o.AppendUint32(b, n.Type)
		b = append(b, n.Name...)
		b = append(b, 0)
		b = append(b, make([]byte, (4-len(b)%4)%4)...)
		b = append(b, n.Desc...)
		b = append(b, make([]byte, (4-len(b)%4)%4)...)
	}
	return b
}

var testNotes = []elfcore.Note{
	{Name: "CORE", Type: uint32(elf.NT_PRSTATUS), Desc: bytes.Repeat([]byte{7}, 336)},
	{Name: "VMCOREINFO", Type: 0, Desc: []byte("OSRELEASE=2.6.9-89.ELsmp\nPAGESIZE=4096\nPAGESIZE=8192\n=x\nnoequals\n\x00\x00")},
	{Name: "odd", Type: 3, Desc: []byte{1, 2, 3}},
}

// testSpec is a core with a note segment, three PT_LOADs (one with
// p_memsz > p_filesz, one empty) and a PT_NULL.
func testSpec(class elf.Class, o order, xnum bool) spec {
	return spec{class: class, order: o, machine: elf.EM_X86_64, xnum: xnum, notes: noteBytes(o, testNotes...),
		progs: []elf.ProgHeader{
			{Type: elf.PT_NOTE, Off: noteOff},
			{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W | elf.PF_X, Off: 0x1000, Paddr: 0, Filesz: 0xa0000, Memsz: 0xa0000, Align: 4096},
			{Type: elf.PT_LOAD, Off: 0xa1000, Paddr: 0x100000, Vaddr: 0xffff810000100000, Filesz: 0x1000, Memsz: 0x3000},
			{Type: elf.PT_NULL},
			{Type: elf.PT_LOAD, Off: 0, Paddr: 0x800000},
		}}
}

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		class elf.Class
		order order
		xnum  bool
	}{
		{"64-LSB", elf.ELFCLASS64, binary.LittleEndian, false},
		{"64-MSB", elf.ELFCLASS64, binary.BigEndian, false},
		{"32-LSB", elf.ELFCLASS32, binary.LittleEndian, false},
		{"32-MSB", elf.ELFCLASS32, binary.BigEndian, false},
		{"64-LSB-xnum", elf.ELFCLASS64, binary.LittleEndian, true},
		{"32-MSB-xnum", elf.ELFCLASS32, binary.BigEndian, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec(tc.class, tc.order, tc.xnum)
			b := encode(s)
			f, err := elfcore.Open(bytes.NewReader(b), int64(len(b)))
			require.NoError(t, err)
			assert.Equal(t, tc.class, f.Class)
			assert.Equal(t, binary.ByteOrder(tc.order), f.Order)
			assert.Equal(t, tc.class == elf.ELFCLASS64, f.Is64())
			assert.Equal(t, elf.EM_X86_64, f.Machine)
			require.Len(t, f.Progs, len(s.progs))
			for i, p := range f.Progs {
				want := s.progs[i]
				if want.Type == elf.PT_NOTE {
					assert.Equal(t, uint64(len(s.notes)), p.Filesz)
					continue
				}
				if tc.class == elf.ELFCLASS32 {
					want.Vaddr &= 0xffffffff
				}
				assert.Equal(t, want, p.ProgHeader, "prog %d", i)
				assert.Equal(t, int64(f.Phoff)+int64(i)*int64(map[elf.Class]int{elf.ELFCLASS32: 32, elf.ELFCLASS64: 56}[tc.class]), p.At)
			}
			assert.Len(t, f.Loads(), 3)
			notes, damage, err := f.Notes()
			require.NoError(t, err)
			require.NoError(t, damage)
			assert.Equal(t, testNotes, notes)
			vi := elfcore.VMCOREINFO(notes)
			assert.Equal(t, map[string]string{"OSRELEASE": "2.6.9-89.ELsmp", "PAGESIZE": "4096"}, vi)
			if !tc.xnum {
				requireSameAsDebugELF(t, b, f)
			}
		})
	}
	t.Run("large-phentsize", func(t *testing.T) {
		// Entries larger than Elf64_Phdr are allowed; the tail is ignored.
		b := encode(spec{class: elf.ELFCLASS64, order: binary.LittleEndian, progs: []elf.ProgHeader{{Type: elf.PT_LOAD, Memsz: 4096}}})
		wide := append(bytes.Clone(b[:64]), b[64:64+56]...)
		wide = append(wide, make([]byte, 8)...)
		binary.LittleEndian.PutUint16(wide[54:], 64)
		f, err := elfcore.Open(bytes.NewReader(wide), int64(len(wide)))
		require.NoError(t, err)
		require.Len(t, f.Progs, 1)
		assert.Equal(t, uint64(4096), f.Progs[0].Memsz)
	})
}

// requireSameAsDebugELF compares the program headers with what debug/elf
// (trusted input only) reads.
func requireSameAsDebugELF(t *testing.T, b []byte, f *elfcore.File) {
	t.Helper()
	ef, err := elf.NewFile(bytes.NewReader(b))
	require.NoError(t, err)
	require.Len(t, ef.Progs, len(f.Progs))
	for i, p := range ef.Progs {
		assert.Equal(t, p.ProgHeader, f.Progs[i].ProgHeader)
	}
	assert.Equal(t, ef.Machine, f.Machine)
	assert.Equal(t, ef.Class, f.Class)
}

func TestOpenErrors(t *testing.T) {
	le := binary.LittleEndian
	good := encode(testSpec(elf.ELFCLASS64, le, false))
	good32 := encode(testSpec(elf.ELFCLASS32, le, false))
	mod := func(b []byte, off int, v ...byte) []byte { c := bytes.Clone(b); copy(c[off:], v); return c }
	u16 := func(v uint16) []byte { return le.AppendUint16(nil, v) }
	u64 := func(v uint64) []byte { return le.AppendUint64(nil, v) }
	load := func(p elf.ProgHeader) []byte {
		p.Type = elf.PT_LOAD
		return encode(spec{class: elf.ELFCLASS64, order: le, progs: []elf.ProgHeader{p}})
	}
	for _, tc := range []struct {
		name     string
		file     []byte
		sentinel error
		field    string
		off      int64
	}{
		{"empty", nil, diskdump.ErrTruncated, "e_ident", 0},
		{"ident-only", good[:15], diskdump.ErrTruncated, "e_ident", 0},
		{"magic", mod(good, 1, 'X'), diskdump.ErrCorrupt, "e_ident", 0},
		{"class", mod(good, 4, 3), diskdump.ErrCorrupt, "e_ident[EI_CLASS]", 4},
		{"data", mod(good, 5, 0), diskdump.ErrCorrupt, "e_ident[EI_DATA]", 5},
		{"short-ehdr64", good[:60], diskdump.ErrTruncated, "Ehdr", 60},
		{"short-ehdr32", good32[:50], diskdump.ErrTruncated, "Ehdr", 50},
		{"not-core", mod(good, 16, u16(uint16(elf.ET_EXEC))...), diskdump.ErrUnsupportedVersion, "e_type", 16},
		{"phentsize", mod(good, 54, u16(40)...), diskdump.ErrCorrupt, "e_phentsize", 54},
		{"phentsize32", mod(good32, 42, u16(20)...), diskdump.ErrCorrupt, "e_phentsize", 42},
		{"no-phdrs", mod(good, 56, 0, 0), diskdump.ErrCorrupt, "e_phnum", 56},
		{"phdrs-past-end", mod(good, 32, u64(uint64(len(good)-10))...), diskdump.ErrTruncated, "e_phoff", int64(len(good) - 10)},
		{"phoff-huge", mod(good, 32, u64(1<<63)...), diskdump.ErrTruncated, "e_phoff", int64(len(good))},
		{"xnum-no-shdr", mod(good, 56, 0xff, 0xff), diskdump.ErrTruncated, "sh_info", 0},
		{"xnum-too-many", mod(encode(spec{class: elf.ELFCLASS64, order: le, xnum: true, progs: []elf.ProgHeader{{}}}), 64+44,
			le.AppendUint32(nil, elfcore.MaxProgs+1)...), diskdump.ErrCorrupt, "e_phnum", 56},
		{"filesz-gt-memsz", load(elf.ProgHeader{Filesz: 2, Memsz: 1}), diskdump.ErrCorrupt, "p_filesz", 64},
		{"offset-overflow", load(elf.ProgHeader{Off: 1 << 63, Filesz: 1, Memsz: 1}), diskdump.ErrCorrupt, "p_offset", 64},
		{"paddr-overflow", load(elf.ProgHeader{Paddr: 1 << 63, Memsz: 1 << 63}), diskdump.ErrCorrupt, "p_paddr", 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := elfcore.Open(bytes.NewReader(tc.file), int64(len(tc.file)))
			require.Error(t, err)
			assert.Nil(t, f)
			assert.ErrorIs(t, err, tc.sentinel)
			var fe *diskdump.FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.field, fe.Field)
			assert.Equal(t, tc.off, fe.Off)
			assert.Equal(t, int64(-1), fe.Blk)
			assert.Regexp(t, "^diskdump: ", err.Error())
		})
	}
}

// failingReader fails every read at or past limit.
type failingReader struct {
	r     io.ReaderAt
	limit int64
}

var errEIO = errors.New("EIO")

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.limit {
		return 0, errEIO
	}
	return f.r.ReadAt(p, off)
}

func TestReadErrors(t *testing.T) {
	b := encode(testSpec(elf.ELFCLASS64, binary.BigEndian, false))
	for _, tc := range []struct {
		name  string
		limit int64
		field string
	}{{"header", 10, "e_ident"}, {"phdrs", 100, "Phdr"}, {"notes", 64 + 5*56 + 4, "PT_NOTE"}} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := elfcore.Open(failingReader{bytes.NewReader(b), tc.limit}, int64(len(b)))
			if err == nil {
				_, _, err = f.Notes()
			}
			require.ErrorIs(t, err, errEIO)
			var fe *diskdump.FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.field, fe.Field)
		})
	}
}

func TestNotes(t *testing.T) {
	o := binary.LittleEndian
	seg := noteBytes(o, testNotes...)
	withNotes := func(notes []byte, progs ...elf.ProgHeader) []byte {
		if progs == nil {
			progs = []elf.ProgHeader{{Type: elf.PT_NOTE, Off: noteOff}}
		}
		return encode(spec{class: elf.ELFCLASS64, order: o, notes: notes, progs: progs})
	}
	at := int64(64 + 56) // the note segment of a one-prog file
	for _, tc := range []struct {
		name      string
		file      []byte
		notes     int   // notes kept
		damage    error // sentinel of the damage, nil if none
		damageOff int64
		err       error // sentinel of a failure, nil if none
		errField  string
	}{
		{"good", withNotes(seg), 3, nil, 0, nil, ""},
		{"empty-segment", withNotes(nil), 0, nil, 0, nil, ""},
		{"no-desc-padding", withNotes(seg[:len(seg)-1]), 3, nil, 0, nil, ""},
		{"header-cut", withNotes(append(bytes.Clone(seg), 1, 2, 3)), 3, diskdump.ErrTruncated, at + int64(len(seg)), nil, ""},
		{"desc-too-big", withNotes(seg[:len(seg)-8]), 2, diskdump.ErrCorrupt, at + int64(len(noteBytes(o, testNotes[:2]...))), nil, ""},
		{"name-too-big", withNotes(o.AppendUint32(o.AppendUint32(o.AppendUint32(nil, 1<<31), 0), 1)), 0, diskdump.ErrCorrupt, at, nil, ""},
		{"segment-past-end", withNotes(nil, elf.ProgHeader{Type: elf.PT_NOTE, Off: 100, Filesz: 1000}), 0, nil, 0, diskdump.ErrTruncated, "p_offset"},
		{"segments-too-big", withNotes(nil, elf.ProgHeader{Type: elf.PT_NOTE, Off: 0, Filesz: elfcore.MaxNoteBytes / 2},
			elf.ProgHeader{Type: elf.PT_NOTE, Off: 0, Filesz: elfcore.MaxNoteBytes/2 + 1}), 0, nil, 0, diskdump.ErrCorrupt, "PT_NOTE"},
		{"two-segments-damage-first", encode(spec{class: elf.ELFCLASS64, order: o, notes: seg[:20], extra: noteBytes(o, testNotes[0]),
			progs: []elf.ProgHeader{{Type: elf.PT_NOTE, Off: noteOff}, {Type: elf.PT_LOAD},
				{Type: elf.PT_NOTE, Off: 64 + 3*56 + 20, Filesz: uint64(len(noteBytes(o, testNotes[0])))}}}),
			1, diskdump.ErrCorrupt, 64 + 3*56, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := elfcore.Open(bytes.NewReader(tc.file), int64(len(tc.file)))
			require.NoError(t, err)
			notes, damage, err := f.Notes()
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				var fe *diskdump.FormatError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, tc.errField, fe.Field)
				assert.Nil(t, notes)
				return
			}
			require.NoError(t, err)
			assert.Len(t, notes, tc.notes)
			if tc.damage == nil {
				require.NoError(t, damage)
				return
			}
			require.ErrorIs(t, damage, tc.damage)
			var fe *diskdump.FormatError
			require.ErrorAs(t, damage, &fe)
			assert.Equal(t, "Elf_Nhdr", fe.Field)
			assert.Equal(t, tc.damageOff, fe.Off)
		})
	}
}

func TestParseNotesNames(t *testing.T) {
	o := binary.BigEndian
	for _, tc := range []struct {
		name    string
		namesz  uint32
		raw     string
		want    string
		descOff int
	}{
		{"nul-terminated", 5, "CORE\x00\x00\x00\x00", "CORE", 20},
		{"no-nul", 4, "CORE", "CORE", 16}, // netdump style, doc/FORMAT.md §10.1
		{"empty", 0, "", "", 12},
		{"two-nuls", 3, "A\x00\x00\x00", "A\x00", 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := o.AppendUint32(nil, tc.namesz)
			b = o.AppendUint32(b, 4)
			b = o.AppendUint32(b, 9)
			b = append(b, tc.raw...)
			b = append(b, 1, 2, 3, 4)
			notes, err := elfcore.ParseNotes(b, o, 0)
			require.NoError(t, err)
			require.Len(t, notes, 1)
			assert.Equal(t, tc.want, notes[0].Name)
			assert.Equal(t, uint32(9), notes[0].Type)
			assert.Equal(t, []byte{1, 2, 3, 4}, notes[0].Desc)
			assert.Equal(t, tc.descOff, len(b)-4)
		})
	}
}

func TestVMCOREINFO(t *testing.T) {
	assert.Nil(t, elfcore.VMCOREINFO([]elfcore.Note{{Name: "CORE"}}))
	for _, tc := range []struct {
		name string
		desc string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"lines", "A=1\nB=x=y\n", map[string]string{"A": "1", "B": "x=y"}},
		{"first-wins", "A=1\nA=2", map[string]string{"A": "1"}},
		{"junk", "=v\nnoequals\n\nC=\x00\x00", map[string]string{"C": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, elfcore.ParseVMCOREINFO([]byte(tc.desc)))
		})
	}
}

func ExampleOpen() {
	o := binary.LittleEndian
	b := encode(spec{class: elf.ELFCLASS64, order: o, machine: elf.EM_X86_64,
		notes: noteBytes(o, elfcore.Note{Name: "VMCOREINFO", Desc: []byte("PAGESIZE=4096\n")}),
		progs: []elf.ProgHeader{{Type: elf.PT_NOTE, Off: noteOff}, {Type: elf.PT_LOAD, Paddr: 1 << 20, Memsz: 1 << 20}}})
	f, err := elfcore.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		panic(err)
	}
	notes, _, err := f.Notes()
	if err != nil {
		panic(err)
	}
	for _, l := range f.Loads() {
		fmt.Printf("%v [%#x, %#x)\n", f.Machine, l.Paddr, l.Paddr+l.Memsz)
	}
	fmt.Println(elfcore.VMCOREINFO(notes)["PAGESIZE"])
	// Output:
	// EM_X86_64 [0x100000, 0x200000)
	// 4096
}
