package savecore

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/vmcore"
)

// TestSaveDumpLevel saves level-0 rehearsal dumps with --dump-level 19 (and
// 2): the pages kept pass the rules (no zero page, no cache page unless
// private; a raw dump only loses its zero pages, and savecore says which
// bits it could not apply), kept + left out = the pages on the partition,
// in one pass, judged page by page against the machine.
func TestSaveDumpLevel(t *testing.T) {
	tests := []struct {
		name      string
		r         rehearsal
		format    string
		compress  string
		level     int
		unapplied string
	}{
		{name: "compressed diskdump 19", r: rehearsal{arch: diskdump.ArchX86_64, compress: true}, level: 19},
		{name: "compressed kdump zstd 19", r: rehearsal{arch: diskdump.ArchX86_64, compress: true}, format: "kdump", compress: "zstd", level: 19},
		{name: "compressed elf 31", r: rehearsal{arch: diskdump.ArchX86_64, compress: true}, format: "elf", level: 31, unapplied: "bits 4 not applied: free pages"},
		{name: "raw elf 19", r: rehearsal{arch: diskdump.ArchX86_64}, level: 19, unapplied: "bits 17 not applied: this dump carries no page flags"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dev, m, wr := tc.r.memImage(t)
			opt, logs := testOptions(t)
			opt.Format, opt.Compress, opt.DumpLevel = tc.format, tc.compress, tc.level
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			require.Len(t, rep.Results, 1)
			res := rep.Results[0]
			require.NoError(t, res.Err)
			require.Equal(t, OutcomeSaved, res.Outcome)
			assert.Equal(t, tc.format != "kdump", res.Incomplete, "a filtered vmcore is marked partial, but a KDUMP file is not INCOMPLETE")
			assert.Contains(t, logs.String(), "dump level {level} left out {excluded} pages")
			if tc.unapplied != "" {
				assert.Contains(t, logs.String(), "not applied")
			} else {
				assert.NotContains(t, logs.String(), "not applied")
			}
			b, err := os.ReadFile(res.Path)
			require.NoError(t, err)
			v, err := vmcore.Open(bytes.NewReader(b), int64(len(b)))
			require.NoError(t, err)
			// ELF: NT_DISKDUMP 1, crash's "[PARTIAL DUMP]"; KDUMP: not
			// INCOMPLETE (no page is missing), as makedumpfile -d.
			assert.Equal(t, v.Format() != vmcore.FormatKdump, v.Partial(), "partial mark")
			bs := tc.r.blockSize()
			buf := make([]byte, bs)
			var kept, zeroKept uint64
			for pfn := range wr.Recoverable.All() {
				page, err := v.ReadPage(pfn, buf)
				if v.Format() != vmcore.FormatELF && err != nil {
					continue // left out
				}
				require.NoError(t, err)
				zero := bytes.Count(page, []byte{0}) == bs
				if v.Format() == vmcore.FormatELF && zero {
					continue // a hole in ELF: left out or zero
				}
				kept++
				at := m.Attrs(pfn)
				if tc.r.compress && tc.level&1 != 0 && !at.Anon && (at.LRU || at.SwapCache) && !(tc.level&16 != 0 && at.Private) {
					t.Errorf("PFN %d: a cache page kept at level %d", pfn, tc.level)
				}
				// The kernel's order keeps a private page at levels with 1 and
				// 16 before it looks at its content.
				if zero && !(tc.r.compress && tc.level&17 == 17 && at.Private) {
					zeroKept++
				}
			}
			assert.Zero(t, zeroKept, "zero pages left out (bit 2)")
			if v.Format() != vmcore.FormatELF { // ELF: a kept zero page reads as a hole
				assert.Equal(t, res.Pages, kept, "pages kept")
			}
			assert.Less(t, res.Pages, wr.Recoverable.Count(), "some pages left out")
		})
	}
}

// TestSaveInterruptedSays: the pages of an interrupted dump recovered past
// its header's written_blocks are counted in one warning.
func TestSaveInterruptedSays(t *testing.T) {
	dev, _, wr := rehearsal{arch: diskdump.ArchX86_64, cut: 600}.memImage(t)
	opt, logs := testOptions(t)
	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	require.Len(t, rep.Results, 1)
	res := rep.Results[0]
	require.NoError(t, res.Err)
	assert.Equal(t, wr.Recoverable.Count(), res.Pages, "every page on the disk and locatable")
	assert.Contains(t, logs.String(), "pages recovered past the header's written_blocks")
}
