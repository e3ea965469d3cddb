package dmesg

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
)

// maxFoundText bounds a VMCOREINFO text found without a note header
// (doc/DMESG.md §6: one or two pages).
const maxFoundText = 8192

// noteHeader is the ELF note header and name that precede the text in the
// kernel's vmcoreinfo_note: namesz 11, descsz, type 0, "VMCOREINFO\0\0".
const noteHeaderSize = 24

// FindVMCOREINFO searches the dumped memory for the VMCOREINFO text that a
// kernel since 2.6.24 keeps in its own memory (doc/DMESG.md §6). release is
// the dump header's utsname.release; pfns yields the page frames the dump
// holds, in increasing order. Each page is read once: a text at the start of
// a page (kernels since about 4.13) is returned at once; a text inside a
// page, or across two consecutive pages, is kept as a fallback. A candidate
// must parse, carry PAGESIZE and a log layout's symbol, and, when it names
// the utsname, the release there must be release. ErrNotFound (wrapped)
// when nothing fits; the first rejection is named.
func FindVMCOREINFO(mem Memory, arch Arch, release string, pfns iter.Seq[uint64]) (*VMCOREINFO, error) {
	if release == "" {
		return nil, fmt.Errorf("%w: the dump header has no release", ErrNotFound)
	}
	if mem == nil || pfns == nil {
		return nil, fmt.Errorf("%w: no memory to search", ErrNotFound)
	}
	f, err := newFinder(mem, arch, release)
	if err != nil {
		return nil, err
	}
	var prev []byte
	prevPFN := ^uint64(0)
	for pfn := range pfns {
		page, err := mem.ReadPage(pfn, f.buf)
		if err != nil || len(page) != f.pageSize {
			prevPFN = ^uint64(0)
			continue
		}
		base := pfn * uint64(f.pageSize)
		if bytes.HasPrefix(page, f.needle) {
			if info := f.try(base); info != nil {
				return info, nil
			}
		}
		if f.fallback == nil {
			f.scan(page, base, prev, prevPFN+1 == pfn)
		}
		prev = append(prev[:0], page[len(page)-len(f.needle)+1:]...)
		prevPFN = pfn
	}
	if f.fallback != nil {
		return f.fallback, nil
	}
	if f.reject != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, f.reject)
	}
	return nil, fmt.Errorf("%w for release %q", ErrNotFound, release)
}

type finder struct {
	k        *kmem
	arch     Arch
	pageSize int
	needle   []byte
	buf      []byte
	fallback *VMCOREINFO
	reject   error
}

func newFinder(mem Memory, arch Arch, release string) (*finder, error) {
	if err := checkArch(arch); err != nil {
		return nil, err
	}
	k, err := newKmem(mem, nil, arch.WordSize())
	if err != nil {
		return nil, err
	}
	needle := []byte("OSRELEASE=" + release + "\n")
	if len(needle) >= k.mem.PageSize() {
		return nil, fmt.Errorf("%w: release of %d bytes", ErrNotFound, len(release))
	}
	ps := mem.PageSize()
	return &finder{k: k, arch: arch, pageSize: ps, needle: needle, buf: make([]byte, ps)}, nil
}

// scan looks for the needle inside a page, and across the boundary with the
// previous page when it is the one just before.
func (f *finder) scan(page []byte, base uint64, prev []byte, adjacent bool) {
	if adjacent {
		joined := append(append([]byte(nil), prev...), page[:len(f.needle)-1]...)
		if i := bytes.Index(joined, f.needle); i >= 0 {
			if info := f.try(base - uint64(len(prev)) + uint64(i)); info != nil {
				f.fallback = info
				return
			}
		}
	}
	for off := 1; off < len(page); {
		i := bytes.Index(page[off:], f.needle)
		if i < 0 {
			return
		}
		if info := f.try(base + uint64(off+i)); info != nil {
			f.fallback = info
			return
		}
		off += i + 1
	}
}

// try reads and checks the text at physical address pa.
func (f *finder) try(pa uint64) *VMCOREINFO {
	text, err := f.text(pa)
	if err == nil {
		var info *VMCOREINFO
		if info, err = ParseVMCOREINFO(text); err == nil {
			if err = f.check(info); err == nil {
				return info
			}
		}
	}
	if f.reject == nil {
		f.reject = fmt.Errorf("candidate at physical address 0x%x: %w", pa, err)
	}
	return nil
}

// text returns the candidate's bytes: descsz bytes when a note header
// precedes it in the same page, else up to the first NUL within 8 KiB.
func (f *finder) text(pa uint64) ([]byte, error) {
	n := maxFoundText
	if pa%uint64(f.pageSize) >= noteHeaderSize {
		if h, err := f.k.phys("VMCOREINFO note", pa-noteHeaderSize, noteHeaderSize); err == nil &&
			leUint(h, 0, 4) == 11 && leUint(h, 8, 4) == 0 && string(h[12:24]) == "VMCOREINFO\x00\x00" {
			n = min(int(leUint(h, 4, 4)), MaxVMCOREINFO)
		}
	}
	b, err := f.k.phys("VMCOREINFO", pa, n)
	var ae *AddrError
	if errors.As(err, &ae) && ae.Addr > pa {
		// The text may end in the last page the dump holds.
		b, err = f.k.phys("VMCOREINFO", pa, int(ae.Addr-pa))
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return b, err
}

// check requires PAGESIZE, a log layout and, when the utsname can be read,
// the same release there.
func (f *finder) check(info *VMCOREINFO) error {
	if info.PageSize <= 0 {
		return &KeyError{Keys: []string{"PAGESIZE"}}
	}
	if _, err := ChooseLayout(info); err != nil {
		return err
	}
	nameOff, ok := info.Offset("uts_namespace.name")
	if !ok || nameOff < 0 {
		nameOff = 4 // after the kref, as makedumpfile assumes
	}
	addr, sym, ok := utsnameSymbol(info.Symbol, nameOff)
	if !ok {
		return nil
	}
	tr, err := newTranslator(f.arch, info)
	if err != nil {
		return err
	}
	k, err := newKmem(f.k.mem, tr, f.k.word)
	if err != nil {
		return err
	}
	b, err := k.virt(sym, addr, utsnameSize)
	if err != nil {
		return err
	}
	return Utsname{Release: info.OSRelease}.compare(parseUtsname(b), sym)
}
