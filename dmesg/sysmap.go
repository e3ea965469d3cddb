package dmesg

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Bounds on a System.map: real ones have a few hundred thousand lines.
const (
	maxMapLines = 4 << 20
	maxMapLine  = 4096
)

// Symbol is one System.map line: "ADDR TYPE NAME".
type Symbol struct {
	Addr uint64
	Type byte // nm's type letter, e.g. 'T', 'd', 'b'
	Name string
}

// SystemMap is a parsed System.map (doc/DMESG.md §7).
type SystemMap struct {
	Symbols []Symbol // in file order
	byName  map[string][]int
}

// ParseSystemMap reads a System.map. Each line must be a hexadecimal
// address, a one-letter type and a name; further words are ignored (Debian's
// one-line stub map has them). A malformed line is a *SyntaxError.
// At most 4 Mi lines of at most 4 KiB are read.
func ParseSystemMap(r io.Reader) (*SystemMap, error) {
	m := &SystemMap{byName: map[string][]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxMapLine)
	line := 0
	for sc.Scan() {
		line++
		if line > maxMapLines {
			return nil, &SyntaxError{Source: "System.map", Line: line, Msg: "too many lines"}
		}
		s, err := parseMapLine(sc.Text())
		if err != nil {
			return nil, &SyntaxError{Source: "System.map", Line: line, Msg: err.Error()}
		}
		m.byName[s.Name] = append(m.byName[s.Name], len(m.Symbols))
		m.Symbols = append(m.Symbols, s)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &SyntaxError{Source: "System.map", Line: line + 1, Msg: "line too long"}
		}
		return nil, fmt.Errorf("dmesg: reading System.map: %w", err)
	}
	return m, nil
}

func parseMapLine(s string) (Symbol, error) {
	f := strings.Fields(s)
	if len(f) < 3 || len(f[1]) != 1 {
		return Symbol{}, fmt.Errorf("%q is not ADDR TYPE NAME", clip(s))
	}
	a, err := strconv.ParseUint(f[0], 16, 64)
	if err != nil {
		return Symbol{}, fmt.Errorf("bad address %q", clip(f[0]))
	}
	return Symbol{Addr: a, Type: f[1][0], Name: f[2]}, nil
}

// Lookup returns the address of name. A name listed at several different
// addresses (static symbols of several files) is refused with
// ErrAmbiguousSymbol rather than guessed; an absent one gives ErrNoSymbol.
func (m *SystemMap) Lookup(name string) (uint64, error) {
	idx := m.byName[name]
	if len(idx) == 0 {
		return 0, fmt.Errorf("%w: %s", ErrNoSymbol, name)
	}
	a := m.Symbols[idx[0]].Addr
	for _, i := range idx[1:] {
		if m.Symbols[i].Addr != a {
			return 0, fmt.Errorf("%w: %s is listed %d times", ErrAmbiguousSymbol, name, len(idx))
		}
	}
	return a, nil
}

// legacyMapSymbols are the System.map symbols a legacy log needs
// (doc/DMESG.md §7); crash --log also wants logged_chars.
var legacyMapSymbols = []string{"log_buf", "log_end", "log_buf_len", "logged_chars"}

// VMCOREINFO makes a VMCOREINFO from the map for a kernel without one
// (RHEL4's 2.6.9): OSRELEASE, PAGESIZE, the four legacy log symbols and,
// when the map has them, _stext (i386 address base), system_utsname and
// boot_vmalloc_pgt (x86_64 pre-2.6.11 layout), as doc/DMESG.md §9 describes.
// Check the map against the dump first with CheckSystemMap. A map without
// the log symbols, such as Debian's one-line stub, gives a *KeyError.
func (m *SystemMap) VMCOREINFO(release string, pageSize int) (*VMCOREINFO, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "OSRELEASE=%s\nPAGESIZE=%d\n", release, pageSize)
	var missing []string
	for _, n := range legacyMapSymbols {
		a, err := m.Lookup(n)
		if err != nil {
			missing = append(missing, n)
			continue
		}
		fmt.Fprintf(&b, "SYMBOL(%s)=%x\n", n, a)
	}
	if len(missing) > 0 {
		return nil, &KeyError{Layout: Legacy, Keys: missing}
	}
	for _, n := range []string{"_stext", "system_utsname", "boot_vmalloc_pgt"} {
		if a, err := m.Lookup(n); err == nil {
			fmt.Fprintf(&b, "SYMBOL(%s)=%x\n", n, a)
		}
	}
	return ParseVMCOREINFO([]byte(b.String()))
}

// WriteSystemMap writes syms as a System.map sorted by address, as nm -n
// prints it, with addresses of 16 hex digits (bits 64) or 8 (bits 32).
func WriteSystemMap(w io.Writer, syms []Symbol, bits int) error {
	if bits != 32 && bits != 64 {
		return fmt.Errorf("dmesg: System.map address width %d is not 32 or 64", bits)
	}
	s := slices.Clone(syms)
	slices.SortStableFunc(s, compareSymbols)
	bw := bufio.NewWriter(w)
	for _, sym := range s {
		if bits == 32 && sym.Addr >= 1<<32 || sym.Name == "" || sym.Type <= ' ' || sym.Type > '~' || strings.ContainsAny(sym.Name, " \t\n") {
			return fmt.Errorf("dmesg: System.map symbol %q at 0x%x cannot be written", sym.Name, sym.Addr)
		}
		fmt.Fprintf(bw, "%0*x %c %s\n", bits/4, sym.Addr, sym.Type, sym.Name)
	}
	return bw.Flush()
}

// compareSymbols orders symbols by address, then name.
func compareSymbols(a, b Symbol) int {
	if a.Addr != b.Addr {
		if a.Addr < b.Addr {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}
