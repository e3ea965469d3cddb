package diskdump

import "fmt"

// SubHeader is the architecture sub-header (doc/FORMAT.md §5): the raw blocks as
// stored plus the register set decoded from them.
type SubHeader struct {
	Arch Arch
	Raw  []byte // sub_hdr_size blocks, as on disk
	// Regs are the elf_gregset_t words in their ABI order (RegNames), or nil
	// when the register area is all zero (ppc64 and ia64 RHEL4 leave it so;
	// doc/FORMAT.md §13 item 16: "no registers").
	Regs []uint64
	// SwitchStacks is ia64's sw[NR_CPUS] (switch_stack addresses), as far as
	// the block holds entries; nil elsewhere.
	SwitchStacks []uint64
}

// RegNames lists the elf_gregset_t register names of an architecture in
// their order in the sub-header (nil for ia64, whose 128 words have no
// single naming).
func RegNames(a Arch) []string {
	switch a {
	case ArchI386:
		return []string{"ebx", "ecx", "edx", "esi", "edi", "ebp", "eax", "ds", "es", "fs", "gs", "orig_eax", "eip", "cs", "eflags", "esp", "ss"}
	case ArchX86_64:
		return []string{"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs"}
	case ArchPPC64:
		n := make([]string, 0, 48)
		for i := range 32 {
			n = append(n, fmt.Sprintf("gpr%d", i))
		}
		return append(n, "nip", "msr", "orig_gpr3", "ctr", "link", "xer", "ccr", "softe", "trap", "dar", "dsisr", "result", "unused0", "unused1", "unused2", "unused3")
	}
	return nil
}

// Reg returns a register by name (see RegNames) and whether it exists.
func (s *SubHeader) Reg(name string) (uint64, bool) {
	for i, n := range RegNames(s.Arch) {
		if n == name && i < len(s.Regs) {
			return s.Regs[i], true
		}
	}
	return 0, false
}

// GRegs returns the raw elf_gregset_t bytes (the pr_reg of an NT_PRSTATUS
// note), GRegsSize bytes in the machine's byte order.
func (s *SubHeader) GRegs() []byte {
	n := s.Arch.GRegsSize()
	if n > len(s.Raw) {
		n = len(s.Raw)
	}
	return s.Raw[:n]
}

// DecodeSubHeader decodes the sub-header blocks of architecture a. raw is
// kept (not copied). Unknown architectures keep only Raw.
func DecodeSubHeader(a Arch, raw []byte) (*SubHeader, error) {
	s := &SubHeader{Arch: a, Raw: raw}
	n := a.GRegsSize()
	if n == 0 {
		return s, nil
	}
	if len(raw) < n {
		return nil, fieldErr(int64(len(raw)), -1, "sub_header", ErrTruncated, "%s register set needs %d bytes, have %d", a, n, len(raw))
	}
	o := a.ByteOrder()
	ws := 8
	if !a.Is64() {
		ws = 4
	}
	allZero := true
	for _, c := range raw[:n] {
		if c != 0 {
			allZero = false
			break
		}
	}
	if !allZero {
		s.Regs = make([]uint64, n/ws)
		for i := range s.Regs {
			if ws == 8 {
				s.Regs[i] = o.Uint64(raw[i*8:])
			} else {
				s.Regs[i] = uint64(o.Uint32(raw[i*4:]))
			}
		}
	}
	if a == ArchIA64 {
		cnt := (len(raw) - n) / 8
		if cnt > maxCPUs {
			cnt = maxCPUs
		}
		s.SwitchStacks = make([]uint64, cnt)
		for i := range s.SwitchStacks {
			s.SwitchStacks[i] = o.Uint64(raw[n+8*i:])
		}
	}
	return s, nil
}

// EncodeSubHeader builds a zeroed sub-header of blocks*blockSize bytes with
// regs (register words in RegNames order; fewer is allowed) and, for ia64,
// the switch_stack addresses.
func EncodeSubHeader(a Arch, blockSize int, regs []uint64, switchStacks []uint64) ([]byte, error) {
	n := a.GRegsSize()
	ws := 8
	if !a.Is64() {
		ws = 4
	}
	need := n + 8*len(switchStacks)
	if n == 0 || len(regs)*ws > n || need > blockSize {
		return nil, fmt.Errorf("diskdump: %s sub-header: %d registers and %d switch stacks do not fit: %w", a, len(regs), len(switchStacks), ErrCorrupt)
	}
	b := make([]byte, blockSize)
	o := a.ByteOrder()
	for i, r := range regs {
		if ws == 8 {
			o.PutUint64(b[i*8:], r)
		} else {
			o.PutUint32(b[i*4:], uint32(r))
		}
	}
	for i, sw := range switchStacks {
		o.PutUint64(b[n+8*i:], sw)
	}
	return b, nil
}
