package dmesg

import (
	"encoding/binary"
	"fmt"
)

// Memory is the physical memory of the dumped machine, page by page.
// (*diskdump.Vmcore).ReadPage has this shape.
type Memory interface {
	// PageSize returns the page size in bytes, a power of two.
	PageSize() int
	// ReadPage returns page pfn, using dst when it is large enough. It
	// fails for a page that the dump does not hold.
	ReadPage(pfn uint64, dst []byte) ([]byte, error)
}

// MaxRead bounds a single structure read from the dumped memory (a log
// buffer, a descriptor array), so that a corrupt size cannot make this
// package allocate without limit.
const MaxRead = 64 << 20

// kmem reads kernel virtual memory through a translation and a Memory. It
// grows its result page by page, so a huge size in a corrupt dump costs
// memory only for pages that really exist.
type kmem struct {
	mem      Memory
	pageSize uint64
	tr       translator
	word     int    // size of the dumped machine's unsigned long: 4 or 8
	page     []byte // dst for ReadPage; never replaced by its result
	pagePFN  uint64 // the frame page holds, valid when pageOK
	pageOK   bool   // page-table walks read the same few pages again and again
}

func newKmem(mem Memory, tr translator, word int) (*kmem, error) {
	ps := mem.PageSize()
	if ps < 512 || ps > 1<<20 || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("dmesg: page size %d is not a power of two in [512, 1 MiB]", ps)
	}
	return &kmem{mem: mem, pageSize: uint64(ps), tr: tr, word: word, page: make([]byte, ps)}, nil
}

// phys reads n bytes at physical address paddr.
func (k *kmem) phys(field string, paddr uint64, n int) ([]byte, error) {
	if n < 0 || n > MaxRead {
		return nil, &AddrError{Field: field, Addr: paddr, Phys: true,
			Err: fmt.Errorf("%w: read of %d bytes exceeds %d", ErrCorrupt, n, MaxRead)}
	}
	out := make([]byte, 0, min(n, int(k.pageSize)))
	for len(out) < n {
		a := paddr + uint64(len(out))
		if a < paddr {
			return nil, &AddrError{Field: field, Addr: paddr, Phys: true, Err: ErrBadAddress}
		}
		p, err := k.readPage(a / k.pageSize)
		if err != nil {
			return nil, &AddrError{Field: field, Addr: a, Phys: true, Err: err}
		}
		off := a % k.pageSize
		take := min(uint64(n-len(out)), k.pageSize-off)
		out = append(out, p[off:off+take]...)
	}
	return out, nil
}

// readPage returns page pfn, from the one-page cache when it holds it.
func (k *kmem) readPage(pfn uint64) ([]byte, error) {
	if k.pageOK && k.pagePFN == pfn {
		return k.page, nil
	}
	k.pageOK = false
	p, err := k.mem.ReadPage(pfn, k.page)
	if err != nil {
		return nil, err
	}
	if uint64(len(p)) != k.pageSize {
		return nil, fmt.Errorf("page of %d bytes, want %d", len(p), k.pageSize)
	}
	copy(k.page, p) // when the Memory returned its own buffer
	k.pagePFN, k.pageOK = pfn, true
	return k.page, nil
}

// virt reads n bytes at kernel virtual address vaddr, translating each page.
func (k *kmem) virt(field string, vaddr uint64, n int) ([]byte, error) {
	if n < 0 || n > MaxRead {
		return nil, &AddrError{Field: field, Addr: vaddr,
			Err: fmt.Errorf("%w: read of %d bytes exceeds %d", ErrCorrupt, n, MaxRead)}
	}
	out := make([]byte, 0, min(n, int(k.pageSize)))
	for len(out) < n {
		v := vaddr + uint64(len(out))
		if v < vaddr {
			return nil, &AddrError{Field: field, Addr: vaddr, Err: ErrBadAddress}
		}
		pa, err := k.tr.phys(k, v)
		if err != nil {
			return nil, &AddrError{Field: field, Addr: v, Err: err}
		}
		take := min(n-len(out), int(k.pageSize-v%k.pageSize))
		b, err := k.phys(field, pa, take)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

// ulong reads an unsigned long of the dumped machine at vaddr.
func (k *kmem) ulong(field string, vaddr uint64) (uint64, error) {
	return k.uint(field, vaddr, k.word)
}

// uint reads an unsigned little-endian integer of size bytes (1, 2, 4 or 8).
func (k *kmem) uint(field string, vaddr uint64, size int) (uint64, error) {
	b, err := k.virt(field, vaddr, size)
	if err != nil {
		return 0, err
	}
	return leUint(b, 0, size), nil
}

// leUint decodes a little-endian integer of size bytes at b[off:]; the
// caller guarantees the bounds. x86 is little-endian (doc/DMESG.md §7).
func leUint(b []byte, off, size int) uint64 {
	switch size {
	case 1:
		return uint64(b[off])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b[off:]))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b[off:]))
	default:
		return binary.LittleEndian.Uint64(b[off:])
	}
}
