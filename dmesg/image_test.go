package dmesg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Synthetic kernel memory for the tests: a block of physical memory seen
// through the kernel image mapping, with x86_64 page tables, a utsname and
// the FLATMEM keys that makedumpfile needs (doc/DMESG.md §9 recipe 2), and
// the VMCOREINFO text that describes it.

const (
	pageSize     = 4096
	imageVaddr   = 0xffffffff81000000 // kernel image start
	directVaddr  = 0xffff888000000000 // 4.20+ direct map
	i386Kvbase   = 0xc0000000
	i386ImageOff = 0x100000 // i386 kernel image at 1 MiB
)

var errNotInDump = errors.New("page not in the dump")

// physMem is physical memory holding data at base.
type physMem struct {
	base uint64
	data []byte
}

func (m *physMem) PageSize() int { return pageSize }

func (m *physMem) ReadPage(pfn uint64, dst []byte) ([]byte, error) {
	a := pfn * pageSize
	if a < m.base || a-m.base+pageSize > uint64(len(m.data)) || a/pageSize != pfn {
		return nil, fmt.Errorf("pfn 0x%x: %w", pfn, errNotInDump)
	}
	if cap(dst) < pageSize {
		dst = make([]byte, pageSize)
	}
	dst = dst[:pageSize]
	copy(dst, m.data[a-m.base:])
	return dst, nil
}

// image is the memory of a synthetic machine under construction.
type image struct {
	arch     Arch
	release  string
	physBase uint64 // x86_64 phys_base: physical address of imageVaddr minus 16 MiB
	paddr    uint64 // physical address of data[0]
	vaddr    uint64 // virtual address of data[0]
	data     []byte
	next     int // allocation cursor
	info     strings.Builder
	uts      Utsname
}

// newImage lays out size bytes of kernel image memory for release.
func newImage(t testing.TB, arch Arch, release string, size int, physBase uint64) *image {
	img := &image{arch: arch, release: release, physBase: physBase, data: make([]byte, size)}
	img.uts = Utsname{Sysname: "Linux", Nodename: "rehearsal", Release: release,
		Version: "#1 SMP Thu Dec 3 09:00:00 UTC 2026", Machine: arch.String(), Domainname: "(none)"}
	fmt.Fprintf(&img.info, "OSRELEASE=%s\nPAGESIZE=%d\n", release, pageSize)
	if arch == I386 {
		img.paddr, img.vaddr = i386ImageOff, i386Kvbase+i386ImageOff
		img.key("SYMBOL(_stext)=%x", img.vaddr)
	} else {
		img.paddr, img.vaddr = 0x1000000+physBase, imageVaddr
		img.pageTables(t)
	}
	img.utsname()
	img.memMap()
	return img
}

// key appends a VMCOREINFO line.
func (img *image) key(format string, args ...any) {
	fmt.Fprintf(&img.info, format+"\n", args...)
}

// alloc reserves n bytes aligned to align and returns their virtual address.
func (img *image) alloc(n, align int) uint64 {
	img.next = (img.next + align - 1) &^ (align - 1)
	a := img.vaddr + uint64(img.next)
	img.next += n
	if img.next > len(img.data) {
		panic(fmt.Sprintf("image of %d bytes is full", len(img.data)))
	}
	return a
}

func (img *image) put(va uint64, b []byte) { copy(img.data[va-img.vaddr:], b) }

func (img *image) putUint(va uint64, v uint64, size int) {
	b := img.data[va-img.vaddr:]
	switch size {
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
}

// putWord writes an unsigned long of the image's arch.
func (img *image) putWord(va, v uint64) { img.putUint(va, v, img.arch.WordSize()) }

// direct returns the direct-map alias of an image address (x86_64).
func (img *image) direct(va uint64) uint64 { return directVaddr + img.paddr + (va - img.vaddr) }

// pageTables maps the kernel image (PGD[511] -> PUD[510] -> 2 MiB pages,
// offset by phys_base) and the direct map (PGD[273] -> PUD[0] -> 2 MiB
// pages) of the first 1 GiB.
func (img *image) pageTables(t testing.TB) {
	pgd := img.alloc(pageSize, pageSize)
	kpud, kpmd := img.alloc(pageSize, pageSize), img.alloc(pageSize, pageSize)
	dpud, dpmd := img.alloc(pageSize, pageSize), img.alloc(pageSize, pageSize)
	pa := func(va uint64) uint64 { return va - img.vaddr + img.paddr }
	const flags = 0x63 // present, writable, accessed, dirty
	img.putUint(pgd+511*8, pa(kpud)|flags, 8)
	img.putUint(kpud+510*8, pa(kpmd)|flags, 8)
	img.putUint(pgd+273*8, pa(dpud)|flags, 8)
	img.putUint(dpud+0*8, pa(dpmd)|flags, 8)
	for i := range uint64(512) {
		img.putUint(kpmd+i*8, (i<<21+img.physBase)|flags|0x80, 8)
		img.putUint(dpmd+i*8, i<<21|flags|0x80, 8)
	}
	require.Equal(t, uint64(0x1000000+img.physBase), pa(pgd))
	img.key("SYMBOL(init_top_pgt)=%x", pgd)
	img.key("NUMBER(phys_base)=%d", img.physBase)
}

// utsname writes the kernel's utsname: system_utsname before 2.6.19, else
// init_uts_ns with its 4-byte kref.
func (img *image) utsname() {
	rel, _ := parseRelease(img.release)
	if rel.less(2, 6, 19) {
		a := img.alloc(utsnameSize, 32)
		img.put(a, img.uts.Bytes())
		img.key("SYMBOL(system_utsname)=%x", a)
		return
	}
	a := img.alloc(4+utsnameSize+64, 32)
	img.put(a+4, img.uts.Bytes())
	img.key("SYMBOL(init_uts_ns)=%x", a)
	img.key("OFFSET(uts_namespace.name)=4")
}

// memMap gives makedumpfile a FLATMEM memory model: a mem_map pointer that
// is not zero, and the page struct layout.
func (img *image) memMap() {
	a := img.alloc(8, 8)
	img.putWord(a, img.vaddr+0x100000)
	img.key("SYMBOL(mem_map)=%x", a)
	img.key("SIZE(page)=64")
	img.key("OFFSET(page.flags)=0")
	img.key("OFFSET(page._refcount)=52")
	img.key("OFFSET(page._count)=52")
	img.key("OFFSET(page.mapping)=24")
}

// memory returns the image as physical memory.
func (img *image) memory() *physMem { return &physMem{base: img.paddr, data: img.data} }

// vmcoreinfo parses the image's VMCOREINFO text.
func (img *image) vmcoreinfo(t testing.TB) *VMCOREINFO {
	info, err := ParseVMCOREINFO([]byte(img.info.String()))
	require.NoError(t, err)
	return info
}
