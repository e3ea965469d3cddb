// minfree on a real filesystem: a small ext4 on a loop device, whose free
// space (blocks reserved for root, metadata) only the kernel knows. A
// tmpfs or the build machine's /tmp would not show what statfs reports on
// the filesystems dump roots live on.

package savecore

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/vmcore"
)

func TestMinFreeExt4(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64}
	dev, _, _ := r.memImage(t)
	p, err := diskdump.OpenPartition(dev, dev.Size())
	require.NoError(t, err)
	need := vmcore.EstimateSize(p, vmcore.Options{})
	const ballast = 8 << 20
	tests := []struct {
		name    string
		file    bool   // minfree in DIR/minfree rather than Options.MinFree
		over    int64  // minfree = free - need + over: over > 0 does not fit
		script  string // diskdump-nospace body; "" absent
		saved   bool
		scripts int // runs of the script
	}{
		{name: "fits with MINFREE", over: -(1 << 20), saved: true},
		{name: "fits with DIR/minfree", file: true, over: -(1 << 20), saved: true},
		{name: "MINFREE leaves too little, no script", over: 1 << 20},
		{name: "DIR/minfree leaves too little, script declines", file: true, over: 1 << 20, script: "exit 0", scripts: 1},
		{name: "script frees the ballast", file: true, over: 1 << 20, script: `rm -f "$(dirname "$2")/ballast"; exit 1`, saved: true, scripts: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := smallExt4(t, 32<<20) // faults_linux_test.go
			require.NoError(t, os.WriteFile(filepath.Join(root, "ballast"), make([]byte, ballast), 0o600))
			log := filepath.Join(t.TempDir(), "runs")
			t.Setenv("RUNS", log)
			if tc.script != "" {
				writeScript(t, root, NospaceScript, `echo run >> "$RUNS"; `+tc.script, 0o755)
			}
			free, err := blockdev.FreeSpace(root)
			require.NoError(t, err)
			minfree := (int64(free) - need + tc.over + 1023) / 1024 * 1024
			require.Positive(t, minfree)
			opt, logs := testOptions(t)
			opt.Dir = root
			if tc.file {
				require.NoError(t, os.WriteFile(filepath.Join(root, MinFreeFile), []byte(strconv.FormatInt(minfree/1024, 10)+"\n"), 0o644))
			} else {
				opt.MinFree = minfree
			}
			rep := Save(context.Background(), []Input{{Name: "/dev/loopX", Dev: dev}}, opt)
			res := rep.Results[0]
			b, _ := os.ReadFile(log)
			assert.Equal(t, tc.scripts, len(b)/len("run\n"), "nospace runs")
			assert.Contains(t, logs.String(), "keeping {minfree} free on the dump filesystem")
			if !tc.saved {
				require.ErrorIs(t, res.Err, ErrNoSpace)
				assert.NoDirExists(t, filepath.Join(root, crashDir))
				return
			}
			require.NoError(t, res.Err)
			assert.FileExists(t, res.Path)
			after, err := blockdev.FreeSpace(root)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, int64(after), minfree, "minfree is still free")
		})
	}
}
