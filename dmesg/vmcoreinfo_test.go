package dmesg

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseVMCOREINFO(t *testing.T) {
	text := "OSRELEASE=6.1.0-57-amd64\nBUILD-ID=0123abcd\nPAGESIZE=4096\n" +
		"SYMBOL(prb)=ffffffff82a5e9c8\nSIZE(printk_ringbuffer)=88\nOFFSET(printk_info.text_len)=16\n" +
		"LENGTH(printk_info_device)=48\nNUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129\nNUMBER(phys_base)=0x2c00000\n" +
		"KERNELOFFSET=1000000\nSYMBOL(prb)=1\nCRASHTIME=1700000000"
	info, err := ParseVMCOREINFO([]byte(text + "\x00\x00garbage"))
	require.NoError(t, err)
	assert.Equal(t, "6.1.0-57-amd64", info.OSRelease)
	assert.Equal(t, 4096, info.PageSize)
	assert.Equal(t, text, string(info.Bytes()), "the text ends at the first NUL")
	for _, c := range []struct {
		name string
		got  func() (int64, bool)
		want int64
	}{
		{"size", func() (int64, bool) { return info.Size("printk_ringbuffer") }, 88},
		{"offset", func() (int64, bool) { return info.Offset("printk_info.text_len") }, 16},
		{"length", func() (int64, bool) { return info.Length("printk_info_device") }, 48},
		{"negative", func() (int64, bool) { return info.Number("PAGE_BUDDY_MAPCOUNT_VALUE") }, -129},
		{"hex", func() (int64, bool) { return info.Number("phys_base") }, 0x2c00000},
		{"crashtime without newline", info.CrashTime, 1700000000},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, ok := c.got()
			require.True(t, ok)
			assert.Equal(t, c.want, v)
		})
	}
	a, ok := info.Symbol("prb")
	require.True(t, ok)
	assert.Equal(t, uint64(0xffffffff82a5e9c8), a, "the first of a repeated key wins")
	off, ok := info.KernelOffset()
	require.True(t, ok)
	assert.Equal(t, uint64(0x1000000), off)
	v, ok := info.Value("BUILD-ID")
	require.True(t, ok)
	assert.Equal(t, "0123abcd", v)
	_, ok = info.Symbol("log_buf")
	assert.False(t, ok)
}

func TestParseVMCOREINFOErrors(t *testing.T) {
	tests := []struct {
		name, text string
		line       int
	}{
		{"empty", "", 1},
		{"no equals", "OSRELEASE=6.1\nPAGESIZE 4096\n", 2},
		{"empty key", "=x\n", 1},
		{"bad symbol", "SYMBOL(prb)=zz\n", 1},
		{"bad size", "OSRELEASE=1\nSIZE(x)=0x\n", 2},
		{"bad number", "NUMBER(x)=--1\n", 1},
		{"symbol with 0x", "SYMBOL(prb)=0xffff\n", 1},
		{"too long", strings.Repeat("A=B\n", MaxVMCOREINFO/4+1), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseVMCOREINFO([]byte(tc.text))
			var se *SyntaxError
			require.ErrorAs(t, err, &se)
			assert.ErrorIs(t, err, ErrSyntax)
			assert.Equal(t, tc.line, se.Line)
			assert.Contains(t, err.Error(), "dmesg: VMCOREINFO line")
		})
	}
}

func TestChooseLayout(t *testing.T) {
	tests := []struct {
		text string
		want Layout
	}{
		{"SYMBOL(prb)=1\nSYMBOL(log_first_idx)=2\nSYMBOL(log_end)=3\n", Lockless},
		{"SYMBOL(log_first_idx)=2\nSYMBOL(log_end)=3\n", Structured},
		{"SYMBOL(log_end)=3\n", Legacy},
		{"SYMBOL(log_buf)=3\n", 0},
	}
	for _, tc := range tests {
		t.Run(tc.want.String(), func(t *testing.T) {
			info, err := ParseVMCOREINFO([]byte("OSRELEASE=x\n" + tc.text))
			require.NoError(t, err)
			l, err := ChooseLayout(info)
			if tc.want == 0 {
				require.ErrorIs(t, err, ErrNoLogSymbols)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, l)
		})
	}
}

func TestParseRelease(t *testing.T) {
	tests := []struct {
		in   string
		want release
		ok   bool
	}{
		{"2.6.9-89.ELsmp", release{2, 6, 9}, true},
		{"2.6.25", release{2, 6, 25}, true},
		{"6.1.0-57-amd64", release{6, 1, 0}, true},
		{"3.10", release{3, 10, 0}, true},
		{"5", release{5}, false},
		{"", release{}, false},
		{"linux", release{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			r, ok := parseRelease(tc.in)
			assert.Equal(t, tc.ok, ok)
			if ok {
				assert.Equal(t, tc.want, r)
			}
		})
	}
	assert.True(t, release{2, 6, 9}.less(2, 6, 25))
	assert.False(t, release{2, 6, 25}.less(2, 6, 25))
	assert.True(t, release{3, 4, 99}.less(3, 5, 0))
}

func TestParseArch(t *testing.T) {
	for _, m := range []string{"x86_64", "i686", "i386"} {
		_, err := ParseArch(m)
		assert.NoError(t, err, m)
	}
	for _, m := range []string{"ppc64", "ia64", "s390x", ""} {
		_, err := ParseArch(m)
		require.ErrorIs(t, err, ErrUnsupportedArch, m)
		if m == "ppc64" {
			assert.EqualError(t, err, "dmesg: ppc64: reading the kernel log is not supported")
		}
	}
}

// TestParseVMCOREINFOPrefixes parses every prefix of a real-looking text:
// each parses or gives a *SyntaxError.
func TestParseVMCOREINFOPrefixes(t *testing.T) {
	img := newImage(t, X86_64, "6.1.0-57-amd64", 64<<10, 0)
	buildLockless(t, img, testMessages, locklessOpts{countBits: 4, sizeBits: 10})
	text := img.info.String()
	for n := range len(text) + 1 {
		info, err := ParseVMCOREINFO([]byte(text[:n]))
		if err != nil {
			require.ErrorIs(t, err, ErrSyntax, "prefix %d", n)
			continue
		}
		assert.Equal(t, strings.TrimSuffix(text[:n], "\n"), strings.TrimSuffix(string(info.Bytes()), "\n"))
	}
}

// badMemory reports a page size or returns pages that are not usable.
type badMemory struct {
	size, got int
}

func (m badMemory) PageSize() int { return m.size }

func (m badMemory) ReadPage(pfn uint64, dst []byte) ([]byte, error) { return make([]byte, m.got), nil }

func TestBadMemory(t *testing.T) {
	img := newImage(t, X86_64, "6.1.0", 64<<10, 0)
	buildLockless(t, img, testMessages, locklessOpts{countBits: 4, sizeBits: 10})
	info := img.vmcoreinfo(t)
	for _, m := range []badMemory{{0, 0}, {3000, 3000}, {4096, 100}, {4096, 8192}} {
		_, err := Read(m, X86_64, info)
		assert.Error(t, err, "%+v", m)
	}
}
