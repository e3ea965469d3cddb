package diskdump

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProcDiskdumpRHEL4(t *testing.T) {
	text := `# sample_rate: 4294967295
# block_order: 3
# fallback_on_err: 1
# allow_risky_dumps: 0
# dump_level: 19
# compress: 1
# total_blocks: 262042
#
sde1 514080 1012095
sda 0 2097152
`
	p, err := ParseProcDiskdump(strings.NewReader(text))
	require.NoError(t, err)
	assert.Equal(t, -1, p.Params.SampleRate, "printed unsigned: 2^32-1 is -1")
	assert.Equal(t, uint(3), p.Params.BlockOrder)
	assert.True(t, p.Params.FallbackOnErr)
	assert.False(t, p.Params.AllowRiskyDumps)
	assert.Equal(t, 19, p.Params.DumpLevel)
	assert.Equal(t, 1, p.Params.Compress)
	assert.Equal(t, uint64(262042), p.Params.TotalBlocks)
	assert.True(t, p.Params.HasCompress)
	assert.Equal(t, []ProcPartition{{"sde1", 514080, 1012095}, {"sda", 0, 2097152}}, p.Partitions)
}

func TestParseProcDiskdumpRHEL3(t *testing.T) {
	text := "# sample_rate: 8\n# block_order: 2\n# fallback_on_err: 1\n# allow_risky_dumps: 1\n# total_blocks: 100\n#\n/dev/sde1 514080 1012095\n"
	p, err := ParseProcDiskdump(strings.NewReader(text))
	require.NoError(t, err)
	assert.False(t, p.Params.HasDumpLevel)
	assert.False(t, p.Params.HasCompress)
	assert.Equal(t, "/dev/sde1", p.Partitions[0].Name)
}

func TestParseProcDiskdumpErrors(t *testing.T) {
	for _, text := range []string{"# block_order: x\n", "sda 1\n", "sda x 2\n", "# block_order: 99\n"} {
		_, err := ParseProcDiskdump(strings.NewReader(text))
		assert.ErrorIs(t, err, ErrCorrupt, text)
		assert.Contains(t, err.Error(), "line 1")
	}
}

func TestSetParamSysfs(t *testing.T) {
	m := DefaultModuleParams
	require.NoError(t, m.SetParam("sample_rate", "-1\n"))
	require.NoError(t, m.SetParam("fallback_on_err", "N"))
	require.NoError(t, m.SetParam("unknown", "whatever"))
	assert.Equal(t, -1, m.SampleRate)
	assert.False(t, m.FallbackOnErr)
}

func FuzzParseProcDiskdump(f *testing.F) {
	f.Add("# sample_rate: 8\n# block_order: 2\n#\nsda 0 100\n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProcDiskdump(strings.NewReader(s))
		if err == nil {
			require.NotNil(t, p)
		}
	})
}
