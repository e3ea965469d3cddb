package dmesg

import "fmt"

// translator turns a kernel virtual address into a physical one.
type translator interface {
	phys(k *kmem, vaddr uint64) (uint64, error)
}

// Virtual address layout constants of x86_64 (doc/DMESG.md §7).
const (
	startKernelMap   = 0xffffffff80000000 // __START_KERNEL_map
	pageOffset2_6_9  = 0x0000010000000000 // direct map before 2.6.11
	pageOffset2_6_11 = 0xffff810000000000 // 2.6.11 to 2.6.26
	pageOffset2_6_27 = 0xffff880000000000 // 2.6.27 to 4.19
	pageOffset4_20   = 0xffff888000000000 // 4.20 and later, 4-level paging
	directMapSpan    = 1 << 46            // largest direct map we accept
	kernelImageSpan  = 1 << 30            // the image mapping; modules follow it
)

// x86_64 translates the kernel image mapping by arithmetic, and any other
// address by walking the kernel page tables when their root is known, else
// through the direct map of the release (doc/DMESG.md §7).
type x86_64 struct {
	physBase   uint64
	pgd        uint64 // virtual address of init_top_pgt, 0 when unknown
	level5     bool
	pageOffset uint64 // direct-map base when no page tables; 0 if unknown
}

func newX86_64(info *VMCOREINFO) *x86_64 {
	t := &x86_64{}
	if pb, ok := info.Number("phys_base"); ok {
		t.physBase = uint64(pb)
	}
	if a, ok := info.Symbol("init_top_pgt"); ok {
		t.pgd = a
	} else if a, ok := info.Symbol("init_level4_pgt"); ok {
		t.pgd = a
	}
	if n, ok := info.Number("pgtable_l5_enabled"); ok && n == 1 {
		t.level5 = true
	}
	rel, ok := parseRelease(info.OSRelease)
	_, oldLayout := info.Symbol("boot_vmalloc_pgt")
	switch {
	case oldLayout || ok && rel.less(2, 6, 11):
		t.pageOffset = pageOffset2_6_9
	case !ok:
	case rel.less(2, 6, 27):
		t.pageOffset = pageOffset2_6_11
	case rel.less(4, 20, 0):
		t.pageOffset = pageOffset2_6_27
	case !t.level5:
		if off, _ := info.KernelOffset(); off == 0 {
			t.pageOffset = pageOffset4_20
		}
	}
	return t
}

func (t *x86_64) phys(k *kmem, v uint64) (uint64, error) {
	if v >= startKernelMap && v < startKernelMap+kernelImageSpan {
		return v - startKernelMap + t.physBase, nil
	}
	if t.pgd != 0 {
		return t.walk(k, v)
	}
	if t.pageOffset != 0 && v >= t.pageOffset && v-t.pageOffset < directMapSpan {
		return v - t.pageOffset, nil
	}
	return 0, fmt.Errorf("%w: not in the kernel image or a known direct map", ErrBadAddress)
}

// Page-table entry bits of x86_64.
const (
	ptePresent  = 1 << 0
	ptePageSize = 1 << 7
	pteAddrMask = 0x000ffffffffff000
)

// walk follows the 4- or 5-level page tables rooted at init_top_pgt.
func (t *x86_64) walk(k *kmem, v uint64) (uint64, error) {
	if t.pgd < startKernelMap || t.pgd >= startKernelMap+kernelImageSpan {
		return 0, fmt.Errorf("%w: page-table root 0x%x is outside the kernel image", ErrBadAddress, t.pgd)
	}
	table := t.pgd - startKernelMap + t.physBase
	shifts := []uint{39, 30, 21, 12}
	if t.level5 {
		shifts = []uint{48, 39, 30, 21, 12}
	}
	for i, sh := range shifts {
		idx := (v >> sh) & 511
		b, err := k.phys("page table", table+idx*8, 8)
		if err != nil {
			return 0, fmt.Errorf("%w: page-table entry: %s", ErrBadAddress, trimPkg(err))
		}
		e := leUint(b, 0, 8)
		if e&ptePresent == 0 {
			return 0, fmt.Errorf("%w: not mapped (level %d entry 0x%x)", ErrBadAddress, len(shifts)-i, e)
		}
		leaf := sh == 12 || (sh == 21 || sh == 30) && e&ptePageSize != 0
		if leaf {
			mask := uint64(1)<<sh - 1
			return (e&pteAddrMask)&^mask | v&mask, nil
		}
		table = e & pteAddrMask
	}
	return 0, fmt.Errorf("%w: page-table walk did not end", ErrBadAddress)
}

// i386 translates lowmem: kernel image, .bss and boot-time allocations
// (doc/DMESG.md §7). The base comes from _stext when known.
type i386 struct {
	kvbase uint64
}

func newI386(info *VMCOREINFO) *i386 {
	t := &i386{kvbase: 0xc0000000}
	// RHEL4's hugemem (4G/4G) kernels put the kernel far below 0xc0000000.
	if s, ok := info.Symbol("_stext"); ok && s > 0 && s < 1<<32 {
		t.kvbase = s &^ 0x1ffffff
	}
	return t
}

func (t *i386) phys(_ *kmem, v uint64) (uint64, error) {
	if v < t.kvbase || v >= 1<<32 {
		return 0, fmt.Errorf("%w: not a lowmem kernel address (base 0x%x)", ErrBadAddress, t.kvbase)
	}
	return v - t.kvbase, nil
}

func newTranslator(a Arch, info *VMCOREINFO) (translator, error) {
	switch a {
	case X86_64:
		return newX86_64(info), nil
	case I386:
		return newI386(info), nil
	}
	return nil, &ArchError{Machine: a.String()}
}
