package diskdump

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Arch is a machine architecture that diskdump supported.
type Arch int

// The architectures of RHEL3/RHEL4 diskdump.
const (
	ArchUnknown Arch = iota
	ArchI386
	ArchX86_64
	ArchIA64
	ArchPPC64
)

var archNames = [...]string{ArchUnknown: "unknown", ArchI386: "i386", ArchX86_64: "x86_64", ArchIA64: "ia64", ArchPPC64: "ppc64"}

func (a Arch) String() string {
	if a >= 0 && int(a) < len(archNames) {
		return archNames[a]
	}
	return fmt.Sprintf("Arch(%d)", int(a))
}

// Arches lists the supported architectures.
var Arches = []Arch{ArchI386, ArchX86_64, ArchIA64, ArchPPC64}

// ParseArch maps a name as given on a command line or found in
// utsname.machine to an Arch. i?86 and athlon are i386; ia32e (RHEL3 EM64T
// builds) is x86_64 ([REC] doc/FORMAT.md §4.3).
func ParseArch(s string) (Arch, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "x86_64" || s == "amd64" || s == "ia32e":
		return ArchX86_64, nil
	case s == "ia64":
		return ArchIA64, nil
	case s == "ppc64":
		return ArchPPC64, nil
	case s == "athlon" || (len(s) == 4 && s[0] == 'i' && s[1] >= '3' && s[1] <= '6' && s[2:] == "86"):
		return ArchI386, nil
	}
	return ArchUnknown, fmt.Errorf("diskdump: unknown architecture %q: %w", s, ErrUnsupportedVersion)
}

// ByteOrder is the native byte order of the architecture.
func (a Arch) ByteOrder() binary.ByteOrder {
	if a == ArchPPC64 {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// Is64 reports whether a C long is 8 bytes on the architecture.
func (a Arch) Is64() bool { return a != ArchI386 }

// PageSize is the RHEL default kernel page size (16 KiB on ia64, else 4 KiB).
func (a Arch) PageSize() int {
	if a == ArchIA64 {
		return 16384
	}
	return 4096
}

// Machine is the utsname.machine string the kernel reports.
func (a Arch) Machine() string {
	if a == ArchI386 {
		return "i686"
	}
	return a.String()
}

// ELFMachine is the ELF e_machine value (EM_386 3, EM_X86_64 62, EM_IA_64 50, EM_PPC64 21).
func (a Arch) ELFMachine() uint16 {
	switch a {
	case ArchI386:
		return 3
	case ArchX86_64:
		return 62
	case ArchIA64:
		return 50
	case ArchPPC64:
		return 21
	}
	return 0
}

// GRegsSize is the size in bytes of the elf_gregset_t stored at the start of
// the sub-header (doc/FORMAT.md §5).
func (a Arch) GRegsSize() int {
	switch a {
	case ArchI386:
		return 17 * 4
	case ArchX86_64:
		return 27 * 8
	case ArchIA64:
		return 128 * 8
	case ArchPPC64:
		return 48 * 8
	}
	return 0
}

// Layout says how the integers of a header are laid out: the byte order and
// the C word size. It is chosen once per dump and kept.
type Layout struct {
	Order binary.ByteOrder
	Is64  bool
}

// LayoutOf returns the header layout of an architecture.
func LayoutOf(a Arch) Layout { return Layout{Order: a.ByteOrder(), Is64: a.Is64()} }

func (l Layout) String() string {
	bits := "32"
	if l.Is64 {
		bits = "64"
	}
	o := "LE"
	if l.Order == binary.BigEndian {
		o = "BE"
	}
	return bits + "-bit " + o
}

// WordSize is the size of a C long in layout l: 4 or 8 bytes.
func (l Layout) WordSize() int {
	if l.Is64 {
		return 8
	}
	return 4
}
