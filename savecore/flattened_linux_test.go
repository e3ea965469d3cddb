// Loop-device tests of kdump raw-target partitions (root): what the image
// files cannot cover is a real block device under the stream — makedumpfile
// -R reading it as stdin, the size from BLKGETSIZE64 rather than a file
// length, the O_EXCL open for -D and the flush after the wipe, read back
// through the device after BLKFLSBUF.

package savecore

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/internal/blockdevtest"
	"github.com/dumpkit/dumpkit/vmcore"
)

func TestSaveFlattenedLoopDevice(t *testing.T) {
	blockdevtest.RequireLoop(t)
	requireTool(t, "makedumpfile")
	requireTool(t, "timeout")
	_, ours := flattenedVmcore(t)
	streams := makedumpfileStreams(t)
	streams["ours kdump"] = ours
	for name, stream := range streams {
		t.Run(name, func(t *testing.T) {
			img := rawTargetImage(t, stream, 21)
			before, err := os.ReadFile(img)
			require.NoError(t, err)
			loop := blockdevtest.AttachLoop(t, img)
			want, msg, err := makedumpfileR(t, loop)
			require.NoError(t, err, msg)
			opt, _ := testOptions(t)
			opt.Delete = true
			res := SaveDevices(context.Background(), []string{loop}, opt).Results[0]
			require.NoError(t, res.Err)
			require.True(t, res.Erased)
			got, err := os.ReadFile(res.Path)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got), "saved %d bytes, makedumpfile -R %d", len(got), len(want))

			after, err := os.ReadFile(loop)
			require.NoError(t, err)
			assert.Equal(t, make([]byte, vmcore.FlattenedStartSize), after[:vmcore.FlattenedStartSize])
			require.Equal(t, len(before), len(after), "device size")
			assert.True(t, bytes.Equal(before[vmcore.FlattenedStartSize:], after[vmcore.FlattenedStartSize:]), "the rest of the device left alone")
			start := time.Now()
			_, msg, err = makedumpfileR(t, loop)
			assert.Error(t, err)
			assert.Contains(t, msg, "signature")
			assert.Less(t, time.Since(start), 10*time.Second)
		})
	}
}

// TestSaveFlattenedTornLoopDevice: a torn stream over old data on a loop
// device is saved within seconds, incomplete, with only right pages.
func TestSaveFlattenedTornLoopDevice(t *testing.T) {
	blockdevtest.RequireLoop(t)
	file, stream := flattenedVmcore(t)
	img := rawTargetImage(t, stream[:len(stream)/2], 22)
	loop := blockdevtest.AttachLoop(t, img)
	opt, logs := testOptions(t)
	start := time.Now()
	res := SaveDevices(context.Background(), []string{loop}, opt).Results[0]
	assert.Less(t, time.Since(start), 10*time.Second)
	require.NoError(t, res.Err)
	assert.True(t, res.Incomplete)
	assert.Positive(t, res.Lost)
	assert.Contains(t, logs.String(), "torn")
	got, err := os.ReadFile(res.Path)
	require.NoError(t, err)
	assert.Equal(t, res.Pages, checkSameOrAbsent(t, "loop", got, file))
}
