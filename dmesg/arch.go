package dmesg

import "fmt"

// Arch is the architecture of the dumped machine.
type Arch int

// Architectures whose kernel addresses this package translates.
const (
	X86_64 Arch = iota + 1
	I386
)

// String returns the utsname.machine spelling.
func (a Arch) String() string {
	switch a {
	case X86_64:
		return "x86_64"
	case I386:
		return "i386"
	}
	return fmt.Sprintf("Arch(%d)", int(a))
}

// WordSize returns the size of the architecture's unsigned long.
func (a Arch) WordSize() int {
	if a == I386 {
		return 4
	}
	return 8
}

// ParseArch maps a utsname.machine string to an Arch. Any other machine,
// ppc64 or ia64 included, gives an *ArchError wrapping ErrUnsupportedArch.
func ParseArch(machine string) (Arch, error) {
	switch machine {
	case "x86_64", "amd64":
		return X86_64, nil
	case "i386", "i486", "i586", "i686":
		return I386, nil
	}
	if machine == "" {
		machine = "unknown machine"
	}
	return 0, &ArchError{Machine: machine}
}

func checkArch(a Arch) error {
	if a != X86_64 && a != I386 {
		return &ArchError{Machine: a.String()}
	}
	return nil
}
