package vmcore

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

// readVMCOREINFO returns the VMCOREINFO a vmcore carries: the KDUMP
// sub-header's or the ELF note's.
func readVMCOREINFO(t *testing.T, img []byte) string {
	t.Helper()
	v, err := Open(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	if ks := v.KdumpSubHeader(); ks != nil {
		require.LessOrEqual(t, ks.OffsetVmcoreinfo+ks.SizeVmcoreinfo, uint64(len(img)))
		return string(img[ks.OffsetVmcoreinfo : ks.OffsetVmcoreinfo+ks.SizeVmcoreinfo])
	}
	for _, n := range v.Notes() {
		if n.Name == "VMCOREINFO" && n.Type == 0 {
			return string(n.Desc)
		}
	}
	return ""
}

// TestOptionsVMCOREINFO: the VMCOREINFO given is stored in KDUMP and ELF
// vmcores, which still read back page for page; a text too large for the
// header's room is left out (KDUMP keeps the one made from the header);
// without one, KDUMP keeps its header-made text and ELF has no note.
func TestOptionsVMCOREINFO(t *testing.T) {
	info := "OSRELEASE=2.6.9-89.ELsmp\nPAGESIZE=4096\nSYMBOL(log_buf)=ffffffff80300200\n"
	huge := "OSRELEASE=x\n" + strings.Repeat("SYMBOL(filler)=ffffffff80300200\n", 200)
	for _, tc := range []struct {
		name   string
		format Format
		info   string
		want   string
	}{
		{"kdump", FormatKdump, info, info},
		{"elf", FormatELF, info, info},
		{"kdump without", FormatKdump, "", "OSRELEASE=2.6.9"},
		{"elf without", FormatELF, "", ""},
		{"kdump too large", FormatKdump, huge, "OSRELEASE=2.6.9"},
		{"elf too large", FormatELF, huge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newSynthDump(t, synthConfig{arch: diskdump.ArchX86_64, maxPFN: 300, compressed: true, seed: 5})
			d.hdr.Utsname.Release = "2.6.9-89.ELsmp"
			mf := memfile.New(nil)
			_, err := writeSource(mf, d.source(), tc.format, Options{VMCOREINFO: []byte(tc.info)})
			require.NoError(t, err)
			got := readVMCOREINFO(t, mf.Bytes())
			if tc.want == "" {
				assert.Empty(t, got)
			} else {
				assert.True(t, strings.HasPrefix(got, tc.want), "%q", got)
			}
			v, err := Open(bytes.NewReader(mf.Bytes()), int64(len(mf.Bytes())))
			require.NoError(t, err)
			for pfn, want := range d.want {
				page, err := v.ReadPage(pfn, nil)
				require.NoError(t, err)
				require.Equal(t, want, page, "pfn %d", pfn)
			}
		})
	}
}

func TestPhysBase(t *testing.T) {
	for _, tc := range []struct {
		name string
		info string
		want uint64
	}{
		{"kaslr", "OSRELEASE=6.1.0\nNUMBER(phys_base)=-33554432\nKERNELOFFSET=2000000\n", 0xfffffffffe000000},
		{"positive, last line", "OSRELEASE=6.1.0\nNUMBER(phys_base)=16777216", 16 << 20},
		{"absent", "OSRELEASE=2.6.9\n", 0},
		{"malformed", "NUMBER(phys_base)=x\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, physBase(tc.info)) })
	}
}
