package kernel

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

// TestContentPages: ContentPages yields exactly the RAM pages that are not
// all zero, in PFN order, each as ReadPage gives it and in its own buffer.
func TestContentPages(t *testing.T) {
	m := NewSyntheticMachine(SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: 2 << 20, Seed: 3})
	zero := make([]byte, 4096)
	var want []uint64
	for pfn := range m.MaxPFN() {
		p := make([]byte, 4096)
		if m.IsRAM(pfn) && m.ReadPage(pfn, p) == nil && !bytes.Equal(p, zero) {
			want = append(want, pfn)
		}
	}
	var got []uint64
	var pages [][]byte
	for pfn, p := range m.ContentPages() {
		exp := make([]byte, 4096)
		require.NoError(t, m.ReadPage(pfn, exp))
		require.Equal(t, exp, p, "PFN %d", pfn)
		got, pages = append(got, pfn), append(pages, p)
	}
	assert.Equal(t, want, got)
	assert.Less(t, len(got), int(m.RAMPages()), "zero pages left out")
	assert.NotEqual(t, pages[0], pages[1], "each page in a buffer of its own")
}
