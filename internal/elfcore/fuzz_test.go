package elfcore_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"testing"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/internal/elfcore"
	"github.com/dumpkit/dumpkit/vmcore"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// elfVmcore is an ELF vmcore as savecore writes it: a 2 MiB synthetic
// machine dumped by the kernel writer, converted by vmcore.Write.
func elfVmcore(t testing.TB, a diskdump.Arch) []byte {
	t.Helper()
	m := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: a, MemBytes: 2 << 20, Seed: 3, NoHoles: true})
	bs := m.PageSize()
	g := diskdump.NewGeometry(bs, m.MaxPFN(), m.RAMPages(), false)
	dev := g.TotalBlocks()
	part := memfile.New(make([]byte, int(dev)*bs))
	cfg := kernel.DefaultConfig(a)
	cfg.SampleRate = -1
	_, err := kernel.WriteDump(part, dev, m, cfg)
	require.NoError(t, err)
	p, err := diskdump.OpenPartition(bytes.NewReader(part.Bytes()), int64(len(part.Bytes())))
	require.NoError(t, err)
	out := memfile.New(nil)
	_, err = vmcore.Write(out, p, vmcore.Options{Format: vmcore.FormatELF})
	require.NoError(t, err)
	return out.Bytes()
}

var vmcoreArches = []diskdump.Arch{diskdump.ArchX86_64, diskdump.ArchI386, diskdump.ArchPPC64, diskdump.ArchIA64}

// TestVmcoreOutput reads the ELF vmcores of our writer (doc/FORMAT.md
// §10.1) and compares the program headers with debug/elf's reading.
func TestVmcoreOutput(t *testing.T) {
	for _, a := range vmcoreArches {
		t.Run(a.String(), func(t *testing.T) {
			b := elfVmcore(t, a)
			f, err := elfcore.Open(bytes.NewReader(b), int64(len(b)))
			require.NoError(t, err)
			assert.Equal(t, a.Is64(), f.Is64())
			assert.Equal(t, a.ByteOrder(), f.Order)
			assert.Equal(t, a.ELFMachine(), uint16(f.Machine))
			require.Len(t, f.Progs, 2)
			assert.Equal(t, elf.PT_NOTE, f.Progs[0].Type)
			assert.Equal(t, elf.PT_LOAD, f.Progs[1].Type)
			notes, damage, err := f.Notes()
			require.NoError(t, err)
			require.NoError(t, damage)
			var types []uint32
			for _, n := range notes {
				assert.Equal(t, "CORE", n.Name)
				types = append(types, n.Type)
			}
			assert.Equal(t, []uint32{1, 3, 4, 0x70000001}, types)
			requireSameAsDebugELF(t, b, f)
		})
	}
}

// FuzzELFCore: no input panics Open or Notes or allocates beyond the
// bounds; every error is a *diskdump.FormatError; program headers agree
// with debug/elf when it reads the input too; and a decoded file
// re-encoded (headers and notes) decodes to the same program headers and
// notes.
func FuzzELFCore(f *testing.F) {
	for _, a := range vmcoreArches {
		b := elfVmcore(f, a)
		ef, err := elfcore.Open(bytes.NewReader(b), int64(len(b)))
		require.NoError(f, err)
		// Headers and notes only: the padding and memory image add nothing
		// but minimisation time.
		n := ef.Progs[0]
		f.Add(b[:n.Off+n.Filesz])
	}
	for _, c := range []elf.Class{elf.ELFCLASS32, elf.ELFCLASS64} {
		for _, o := range []order{binary.LittleEndian, binary.BigEndian} {
			for _, xnum := range []bool{false, true} {
				f.Add(encode(testSpec(c, o, xnum)))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ef, err := elfcore.Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			var fe *diskdump.FormatError
			require.ErrorAs(t, err, &fe)
			return
		}
		require.LessOrEqual(t, len(ef.Progs), elfcore.MaxProgs)
		for _, p := range ef.Progs {
			require.Less(t, p.At, int64(len(data)))
		}
		notes, damage, err := ef.Notes()
		if err != nil {
			var fe *diskdump.FormatError
			require.ErrorAs(t, err, &fe)
			return
		}
		if damage != nil {
			var fe *diskdump.FormatError
			require.ErrorAs(t, damage, &fe)
		}
		compareDebugELF(t, data, ef)
		if damage != nil || len(ef.Progs) > 1<<12 {
			return
		}
		roundTrip(t, ef, notes)
	})
}

// compareDebugELF checks the program headers against debug/elf's when it
// reads the (small) input as well and counts the same headers.
func compareDebugELF(t *testing.T, data []byte, ef *elfcore.File) {
	de, err := elf.NewFile(bytes.NewReader(data))
	if err != nil || len(de.Progs) != len(ef.Progs) {
		return
	}
	for i, p := range de.Progs {
		require.Equal(t, p.ProgHeader, ef.Progs[i].ProgHeader, "prog %d", i)
	}
}

// roundTrip re-encodes the file with its notes in one PT_NOTE segment
// (the first; the others become empty) and decodes it again.
func roundTrip(t *testing.T, ef *elfcore.File, notes []elfcore.Note) {
	o := ef.Order.(order)
	s := spec{class: ef.Class, order: o, machine: ef.Machine, notes: noteBytes(o, notes...), xnum: len(ef.Progs) >= 0xffff}
	first := true
	for _, p := range ef.Progs {
		h := p.ProgHeader
		if h.Type == elf.PT_NOTE {
			h.Off, h.Filesz = 0, 0
			if first {
				h.Off, first = noteOff, false
			}
		}
		s.progs = append(s.progs, h)
	}
	b := encode(s)
	ef2, err := elfcore.Open(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	require.Equal(t, ef.Class, ef2.Class)
	require.Equal(t, ef.Machine, ef2.Machine)
	require.Len(t, ef2.Progs, len(ef.Progs))
	for i, p := range ef.Progs {
		if p.Type != elf.PT_NOTE {
			require.Equal(t, p.ProgHeader, ef2.Progs[i].ProgHeader, "prog %d", i)
		}
	}
	notes2, damage, err := ef2.Notes()
	require.NoError(t, err)
	require.NoError(t, damage)
	require.Equal(t, len(notes), len(notes2))
	for i, n := range notes {
		require.Equal(t, n.Name, notes2[i].Name)
		require.Equal(t, n.Type, notes2[i].Type)
		require.Equal(t, n.Desc, notes2[i].Desc)
	}
}
