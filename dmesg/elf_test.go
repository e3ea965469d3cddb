package dmesg

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeCore writes img as an ELF vmcore: a PT_NOTE with an empty
// NT_PRSTATUS and the VMCOREINFO note, and one PT_LOAD for the memory. An
// x86_64 image is an ELF64 file, an i386 image an ELF32 file.
func writeCore(t testing.TB, path string, img *image) {
	var notes bytes.Buffer
	prstatus := 336
	if img.arch == I386 {
		prstatus = 144
	}
	writeNote(&notes, "CORE", uint32(elf.NT_PRSTATUS), make([]byte, prstatus))
	writeNote(&notes, "VMCOREINFO", 0, []byte(img.info.String()))
	var f bytes.Buffer
	le := binary.LittleEndian
	if img.arch == I386 {
		noteOff := uint32(52 + 2*32)
		loadOff := (noteOff + uint32(notes.Len()) + pageSize - 1) &^ (pageSize - 1)
		h := elf.Header32{Type: uint16(elf.ET_CORE), Machine: uint16(elf.EM_386), Version: 1,
			Phoff: 52, Ehsize: 52, Phentsize: 32, Phnum: 2}
		copy(h.Ident[:], elf.ELFMAG)
		h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS32), byte(elf.ELFDATA2LSB), 1
		require.NoError(t, binary.Write(&f, le, h))
		require.NoError(t, binary.Write(&f, le, elf.Prog32{Type: uint32(elf.PT_NOTE), Off: noteOff, Filesz: uint32(notes.Len())}))
		require.NoError(t, binary.Write(&f, le, elf.Prog32{Type: uint32(elf.PT_LOAD), Flags: 7, Off: loadOff,
			Vaddr: uint32(img.vaddr), Paddr: uint32(img.paddr), Filesz: uint32(len(img.data)), Memsz: uint32(len(img.data)), Align: pageSize}))
		f.Write(notes.Bytes())
		f.Write(make([]byte, int(loadOff)-f.Len()))
	} else {
		noteOff := uint64(64 + 2*56)
		loadOff := (noteOff + uint64(notes.Len()) + pageSize - 1) &^ (pageSize - 1)
		h := elf.Header64{Type: uint16(elf.ET_CORE), Machine: uint16(elf.EM_X86_64), Version: 1,
			Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: 2}
		copy(h.Ident[:], elf.ELFMAG)
		h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
		require.NoError(t, binary.Write(&f, le, h))
		require.NoError(t, binary.Write(&f, le, elf.Prog64{Type: uint32(elf.PT_NOTE), Off: noteOff, Filesz: uint64(notes.Len())}))
		require.NoError(t, binary.Write(&f, le, elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: 7, Off: loadOff,
			Vaddr: img.vaddr, Paddr: img.paddr, Filesz: uint64(len(img.data)), Memsz: uint64(len(img.data)), Align: pageSize}))
		f.Write(notes.Bytes())
		f.Write(make([]byte, int(loadOff)-f.Len()))
	}
	f.Write(img.data)
	require.NoError(t, os.WriteFile(path, f.Bytes(), 0o600))
}

// writeNote appends an ELF note: namesz, descsz, type, name and desc, each
// padded to 4 bytes.
func writeNote(b *bytes.Buffer, name string, typ uint32, desc []byte) {
	le := binary.LittleEndian
	b.Write(le.AppendUint32(nil, uint32(len(name)+1)))
	b.Write(le.AppendUint32(nil, uint32(len(desc))))
	b.Write(le.AppendUint32(nil, typ))
	b.WriteString(name)
	b.Write(make([]byte, 4-len(name)%4))
	b.Write(desc)
	b.Write(make([]byte, (4-len(desc)%4)%4))
}
