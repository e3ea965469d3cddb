package dmesg

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTranslate(t *testing.T) {
	img := newImage(t, X86_64, "6.1.0", 64<<10, 0x2000000)
	withPGD := img.vmcoreinfo(t)
	parse := func(text string) *VMCOREINFO {
		info, err := ParseVMCOREINFO([]byte(text))
		require.NoError(t, err)
		return info
	}
	tests := []struct {
		name string
		arch Arch
		info *VMCOREINFO
		virt uint64
		phys uint64 // 0: must fail
	}{
		{"image with phys_base", X86_64, withPGD, 0xffffffff81000123, 0x3000123},
		{"negative phys_base", X86_64, parse("OSRELEASE=6.1.0\nNUMBER(phys_base)=-272629760\n"), 0xffffffff92e10000, 0x2a10000},
		{"direct map by page tables", X86_64, withPGD, 0xffff888003000010, 0x3000010},
		{"module area by page tables", X86_64, withPGD, 0xffffffffc0001000, 0},
		{"vmalloc by page tables", X86_64, withPGD, 0xffffc90000000000, 0},
		{"direct map 4.20", X86_64, parse("OSRELEASE=5.10.0\nKERNELOFFSET=0\n"), 0xffff888000100000, 0x100000},
		{"direct map with KASLR unknown", X86_64, parse("OSRELEASE=5.10.0\nKERNELOFFSET=1c800000\n"), 0xffff888000100000, 0},
		{"direct map 3.10", X86_64, parse("OSRELEASE=3.10.0-1160.el7.x86_64\n"), 0xffff880000100000, 0x100000},
		{"direct map 2.6.18", X86_64, parse("OSRELEASE=2.6.18-419.el5\n"), 0xffff810000100000, 0x100000},
		{"direct map 2.6.9", X86_64, parse("OSRELEASE=2.6.9-89.ELsmp\n"), 0x10000100000, 0x100000},
		{"direct map old layout by symbol", X86_64, parse("OSRELEASE=x\nSYMBOL(boot_vmalloc_pgt)=ffffffff80500000\n"), 0x10000100000, 0x100000},
		{"user address", X86_64, parse("OSRELEASE=2.6.9\n"), 0x400000, 0},
		{"i386 lowmem", I386, parse("OSRELEASE=2.6.9\n"), 0xc0100000, 0x100000},
		{"i386 below the base", I386, parse("OSRELEASE=2.6.9\n"), 0x08048000, 0},
		{"i386 4G/4G split by _stext", I386, parse("OSRELEASE=2.6.9\nSYMBOL(_stext)=2100000\n"), 0x2100000, 0x100000},
		{"i386 base from _stext", I386, parse("OSRELEASE=2.6.9\nSYMBOL(_stext)=42100000\n"), 0x42100000, 0x100000},
		{"i386 below the _stext base", I386, parse("OSRELEASE=2.6.9\nSYMBOL(_stext)=2100000\n"), 0x1000000, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := newTranslator(tc.arch, tc.info)
			require.NoError(t, err)
			k, err := newKmem(img.memory(), tr, tc.arch.WordSize())
			require.NoError(t, err)
			p, err := tr.phys(k, tc.virt)
			if tc.phys == 0 {
				require.ErrorIs(t, err, ErrBadAddress)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.phys, p)
		})
	}
}
