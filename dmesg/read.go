package dmesg

import "fmt"

// Read returns the kernel log held in mem, the physical memory of a
// machine of architecture arch, using the symbols, sizes and offsets of
// info: a VMCOREINFO from the dump, found in its memory (FindVMCOREINFO) or
// made from a System.map (SystemMap.VMCOREINFO). The layout is chosen by
// ChooseLayout.
//
// Errors: *ArchError for an unsupported arch, ErrNoLogSymbols, *KeyError for
// missing keys, *AddrError for a pointer that cannot be translated or read,
// *CorruptError for an impossible value. When a lockless or structured ring
// turns out corrupt part way, Read returns the records read so far with the
// *CorruptError.
func Read(mem Memory, arch Arch, info *VMCOREINFO) (*Log, error) {
	if err := checkArch(arch); err != nil {
		return nil, err
	}
	if mem == nil {
		return nil, fmt.Errorf("dmesg: no memory to read")
	}
	layout, err := ChooseLayout(info)
	if err != nil {
		return nil, err
	}
	tr, err := newTranslator(arch, info)
	if err != nil {
		return nil, err
	}
	k, err := newKmem(mem, tr, arch.WordSize())
	if err != nil {
		return nil, err
	}
	switch layout {
	case Lockless:
		return readLockless(k, info)
	case Structured:
		return readStructured(k, info)
	default:
		return readLegacy(k, info)
	}
}
