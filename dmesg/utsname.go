package dmesg

import (
	"bytes"
	"fmt"
	"strings"
)

// Utsname is the identity of a kernel as struct new_utsname holds it: six
// NUL-padded fields of 65 bytes (doc/DMESG.md §7). A diskdump header carries
// a copy.
type Utsname struct {
	Sysname, Nodename, Release, Version, Machine, Domainname string
}

// utsnameSize is sizeof(struct new_utsname); utsField the size of a field.
const (
	utsField    = 65
	utsnameSize = 6 * utsField
)

// parseUtsname decodes a struct new_utsname.
func parseUtsname(b []byte) Utsname {
	f := func(i int) string {
		s := b[i*utsField : (i+1)*utsField]
		if j := bytes.IndexByte(s, 0); j >= 0 {
			s = s[:j]
		}
		return string(s)
	}
	return Utsname{f(0), f(1), f(2), f(3), f(4), f(5)}
}

// Bytes encodes u as a struct new_utsname, truncating each field to 64 bytes.
func (u Utsname) Bytes() []byte {
	b := make([]byte, utsnameSize)
	for i, s := range []string{u.Sysname, u.Nodename, u.Release, u.Version, u.Machine, u.Domainname} {
		copy(b[i*utsField:i*utsField+utsField-1], s)
	}
	return b
}

// compare reports the first field that want sets and got differs in.
func (u Utsname) compare(got Utsname, symbol string) error {
	for _, f := range []struct{ name, want, got string }{
		{"release", u.Release, got.Release},
		{"version", u.Version, got.Version},
		{"machine", u.Machine, got.Machine},
		{"nodename", u.Nodename, got.Nodename},
	} {
		if f.want != "" && f.want != f.got {
			return &MismatchError{Symbol: symbol, Field: f.name, Want: f.want, Got: f.got}
		}
	}
	return nil
}

// utsnameSymbol finds the kernel's utsname: system_utsname before 2.6.19,
// else the name field of init_uts_ns (after its 4-byte kref).
func utsnameSymbol(lookup func(string) (uint64, bool), nameOff int64) (addr uint64, sym string, ok bool) {
	if a, ok := lookup("system_utsname"); ok {
		return a, "system_utsname", true
	}
	if a, ok := lookup("init_uts_ns"); ok {
		return a + uint64(nameOff), "init_uts_ns", true
	}
	return 0, "", false
}

// CheckSystemMap checks that the System.map m belongs to the kernel whose
// physical memory is mem and whose header says want (doc/DMESG.md §7): the
// utsname at system_utsname or init_uts_ns must match want's release,
// version, machine and nodename (those that are set); without either
// symbol, the banner at linux_banner must begin "Linux version <release> "
// and end with "<version>\n". The error says why the map does not fit: a
// *MismatchError naming the first differing field, a *KeyError when the map
// has none of the symbols (a stub), an *AddrError when the symbol's address
// is not in the dump.
func CheckSystemMap(mem Memory, arch Arch, m *SystemMap, want Utsname) error {
	if err := checkArch(arch); err != nil {
		return err
	}
	if m == nil || mem == nil {
		return &KeyError{Keys: []string{"System.map"}}
	}
	lookup := func(n string) (uint64, bool) { a, err := m.Lookup(n); return a, err == nil }
	text := "OSRELEASE=" + want.Release + "\n"
	for _, n := range []string{"_stext", "boot_vmalloc_pgt"} {
		if a, ok := lookup(n); ok {
			text += fmt.Sprintf("SYMBOL(%s)=%x\n", n, a)
		}
	}
	info, err := ParseVMCOREINFO([]byte(text))
	if err != nil {
		return err
	}
	tr, err := newTranslator(arch, info)
	if err != nil {
		return err
	}
	k, err := newKmem(mem, tr, arch.WordSize())
	if err != nil {
		return err
	}
	if addr, sym, ok := utsnameSymbol(lookup, 4); ok {
		b, err := k.virt(sym, addr, utsnameSize)
		if err != nil {
			return err
		}
		return want.compare(parseUtsname(b), sym)
	}
	if addr, ok := lookup("linux_banner"); ok {
		return checkBanner(k, addr, want)
	}
	return &KeyError{Keys: []string{"system_utsname, init_uts_ns or linux_banner in System.map"}}
}

// checkBanner compares the banner text: linux_banner is a pointer in 2.6.9
// and an array in later kernels, so a text not starting "Linux version" is
// followed as a pointer.
func checkBanner(k *kmem, addr uint64, want Utsname) error {
	const prefix = "Linux version "
	b, err := k.virt("linux_banner", addr, len(prefix))
	if err != nil {
		return err
	}
	if string(b) != prefix {
		if addr, err = k.ulong("linux_banner", addr); err != nil {
			return err
		}
	}
	b, err = k.virt("linux_banner", addr, 1024)
	if err != nil {
		// The banner may end near the end of the dumped memory.
		if b, err = k.virt("linux_banner", addr, 256); err != nil {
			return err
		}
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	banner := string(b)
	if !strings.HasPrefix(banner, prefix+want.Release+" ") ||
		want.Version != "" && !strings.HasSuffix(banner, want.Version+"\n") {
		return &MismatchError{Symbol: "linux_banner", Field: "banner",
			Want: prefix + want.Release + " ... " + want.Version, Got: clip(banner)}
	}
	return nil
}
