package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

// TestCheckStrictTooSmall: with the module loaded in strict mode
// (dump_level 0, compress 0) and total_blocks beyond the device, the
// kernel samples past the device's end and refuses it: -c says 4, not
// ready. A compressing module clamps the sampling and dumps partially: 0.
func TestCheckStrictTooSmall(t *testing.T) {
	path := imageFile(t, 2100, 0)
	formatFile(t, path)
	for _, tc := range []struct {
		compress string
		want     diskdump.CheckStatus
	}{{"0", diskdump.CheckUnsuitable}, {"1", diskdump.CheckReady}} {
		t.Run("compress="+tc.compress, func(t *testing.T) {
			proc := filepath.Join(t.TempDir(), "diskdump")
			body := "# sample_rate: 8\n# block_order: 2\n# dump_level: 0\n# compress: " + tc.compress + "\n# total_blocks: 5000\n#\n"
			require.NoError(t, os.WriteFile(proc, []byte(body), 0o644))
			old := procDiskdumpPath
			procDiskdumpPath = proc
			defer func() { procDiskdumpPath = old }()
			code, out := checkJSONOf(t, path)
			assert.Equal(t, int(tc.want), code, out.Reason)
			if tc.want == diskdump.CheckUnsuitable {
				assert.Contains(t, out.Reason, "use compress or dump_level")
			}
			assert.Equal(t, []sizeJSON{{2100, diskdump.SizeFromDevice}}, out.Sizes, "total_blocks clamped to the device")
		})
	}
}
