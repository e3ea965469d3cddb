package vmcore

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump/kernel"
)

// expectedPage is what the kernel dumps for pfn.
func expectedPage(t testing.TB, src kernel.MemorySource, pfn uint64, bs int, is64 bool) []byte {
	t.Helper()
	at := src.Attrs(pfn)
	p := make([]byte, bs)
	switch {
	case at.BadPage:
		f := at.Flags
		if !is64 {
			f &= 0xffffffff
		}
		copy(p, fmt.Sprintf("Bad page. PFN %d flags %x\n", pfn, f))
	case at.Unmapped:
		copy(p, fmt.Sprintf("Unmapped page. PFN %d\n", pfn))
	default:
		require.NoError(t, src.ReadPage(pfn, p))
	}
	return p
}
