package dmesg

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rhel4Symbols is a small RHEL4-like symbol list.
func rhel4Symbols(text, data uint64) []Symbol {
	return []Symbol{
		{text, 'T', "_stext"}, {text + 0x20, 'T', "startup_64"},
		{data, 'd', "log_buf"}, {data + 8, 'd', "log_buf_len"},
		{data + 0x100, 'b', "log_end"}, {data + 0x108, 'b', "logged_chars"},
		{data + 0x200, 'D', "system_utsname"}, {data + 0x400, 'D', "linux_banner"},
		{data + 0x1000, 'b', "__log_buf"}, {data + 0x8000, 'b', "boot_vmalloc_pgt"},
	}
}

// mapOf is the System.map of an image: every SYMBOL of its VMCOREINFO
// plus a banner pointer, as dumpformat -R --system-map would write.
func mapOf(t testing.TB, img *image, banner bool) *SystemMap {
	var syms []Symbol
	info := img.vmcoreinfo(t)
	for k := range info.keys {
		if name, ok := strings.CutPrefix(k, "SYMBOL("); ok {
			name = strings.TrimSuffix(name, ")")
			a, _ := info.Symbol(name)
			syms = append(syms, Symbol{a, 'd', name})
		}
	}
	if banner {
		text := "Linux version " + img.uts.Release + " (bhcompile@example) (gcc version 3.4.6) " + img.uts.Version + "\n\x00"
		str := img.alloc(len(text), 8)
		img.put(str, []byte(text))
		ptr := img.alloc(8, 8)
		img.putWord(ptr, str)
		syms = append(syms, Symbol{ptr, 'D', "linux_banner"})
	}
	var b bytes.Buffer
	require.NoError(t, WriteSystemMap(&b, syms, 8*img.arch.WordSize()))
	m, err := ParseSystemMap(&b)
	require.NoError(t, err)
	return m
}

func TestParseSystemMap(t *testing.T) {
	tests := []struct {
		name, text string
		err        error
	}{
		{"ok", "ffffffff80100000 T _stext\nffffffff80400000 d log_buf\n", nil},
		{"crlf and blanks", "c0100000 T _stext\r\n", nil},
		{"two fields", "c0100000 _stext\n", ErrSyntax},
		{"bad address", "c01000g0 T _stext\n", ErrSyntax},
		{"long type", "c0100000 TT _stext\n", ErrSyntax},
		{"long line", "c0100000 T " + strings.Repeat("x", 5000) + "\n", ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSystemMap(strings.NewReader(tc.text))
			if tc.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.err)
			var se *SyntaxError
			require.True(t, errors.As(err, &se))
			assert.Equal(t, 1, se.Line)
		})
	}
}

func TestSystemMapLookup(t *testing.T) {
	m, err := ParseSystemMap(strings.NewReader(
		"c0100000 T _stext\nc0200000 b count\nc0300000 b count\nc0400000 t dup\nc0400000 T dup\n"))
	require.NoError(t, err)
	a, err := m.Lookup("_stext")
	require.NoError(t, err)
	assert.Equal(t, uint64(0xc0100000), a)
	_, err = m.Lookup("count")
	assert.ErrorIs(t, err, ErrAmbiguousSymbol)
	a, err = m.Lookup("dup")
	require.NoError(t, err, "one address listed twice is not ambiguous")
	assert.Equal(t, uint64(0xc0400000), a)
	_, err = m.Lookup("log_buf")
	assert.ErrorIs(t, err, ErrNoSymbol)
}

func TestWriteSystemMap(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteSystemMap(&b, []Symbol{{0xc0400000, 'b', "log_end"}, {0xc0100000, 'T', "_stext"}}, 32))
	assert.Equal(t, "c0100000 T _stext\nc0400000 b log_end\n", b.String())
	b.Reset()
	require.NoError(t, WriteSystemMap(&b, rhel4Symbols(0xffffffff80100000, 0xffffffff80400000)[:1], 64))
	assert.Equal(t, "ffffffff80100000 T _stext\n", b.String())
	assert.Error(t, WriteSystemMap(&b, []Symbol{{1 << 32, 'T', "x"}}, 32))
	assert.Error(t, WriteSystemMap(&b, []Symbol{{1, 'T', "two words"}}, 64))
	assert.Error(t, WriteSystemMap(&b, nil, 16))
}

func TestSystemMapVMCOREINFO(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteSystemMap(&b, rhel4Symbols(0xffffffff80100000, 0xffffffff80400000), 64))
	m, err := ParseSystemMap(&b)
	require.NoError(t, err)
	info, err := m.VMCOREINFO("2.6.9-89.ELsmp", 4096)
	require.NoError(t, err)
	assert.Equal(t, "OSRELEASE=2.6.9-89.ELsmp\nPAGESIZE=4096\n"+
		"SYMBOL(log_buf)=ffffffff80400000\nSYMBOL(log_end)=ffffffff80400100\n"+
		"SYMBOL(log_buf_len)=ffffffff80400008\nSYMBOL(logged_chars)=ffffffff80400108\n"+
		"SYMBOL(_stext)=ffffffff80100000\nSYMBOL(system_utsname)=ffffffff80400200\n"+
		"SYMBOL(boot_vmalloc_pgt)=ffffffff80408000\n", string(info.Bytes()))
	l, err := ChooseLayout(info)
	require.NoError(t, err)
	assert.Equal(t, Legacy, l)

	stub, err := ParseSystemMap(strings.NewReader("ffffffffffffffff B The real System.map is in the linux-image-6.1.0-57-amd64-dbg package\n"))
	require.NoError(t, err)
	_, err = stub.VMCOREINFO("6.1.0-57-amd64", 4096)
	var ke *KeyError
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, []string{"log_buf", "log_end", "log_buf_len", "logged_chars"}, ke.Keys)
}
