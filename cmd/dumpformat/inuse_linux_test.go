package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
	"github.com/dumpkit/dumpkit/savecore"
)

// TestMountedLoopBackedImage: an image file attached to a loop device
// whose filesystem is mounted is in use like the device: dumpformat (every
// writing mode) exits 7 naming the loop device and the mount, -c says 7,
// savecore -D and -X refuse it; e2fsck finds the filesystem clean after.
func TestMountedLoopBackedImage(t *testing.T) {
	blockdevtest.RequireLoop(t)
	e2fsck := blockdevtest.RequireTool(t, "e2fsck")
	img := blockdevtest.Image(t, 16<<20)
	blockdevtest.MakeExt4(t, img)
	t.Run("mounted", func(t *testing.T) {
		loop := blockdevtest.AttachLoop(t, img)
		mnt := blockdevtest.Mount(t, loop, "ext4")
		require.NoError(t, os.WriteFile(filepath.Join(mnt, "data"), []byte("precious"), 0o600))
		for _, args := range [][]string{{"-f"}, {}, {"-a"}, {"-R", "--ram", "1M"}} {
			code, _, stderr := dumpformat(t, append(args, img)...)
			assert.Equal(t, 7, code, "%v: %s", args, stderr)
			assert.Contains(t, stderr, "loop device "+loop, "%v", args)
			assert.Contains(t, stderr, "mounted on "+mnt, "%v", args)
		}
		code, _, _ := dumpformat(t, "-c", img)
		assert.Equal(t, int(diskdump.CheckMounted), code)
		mp := diskdump.DefaultModuleParams
		for _, opt := range []savecore.Options{{Delete: true}, {DeleteOnly: true}} {
			opt.Dir, opt.Module = t.TempDir(), &mp
			rep := savecore.SaveDevices(context.Background(), []string{img}, opt)
			require.ErrorIs(t, rep.Results[0].Err, blockdev.ErrInUse)
			assert.Contains(t, rep.Results[0].Err.Error(), "loop device "+loop)
		}
	})
	out, err := blockdevtest.TryRun(t, e2fsck, "-fn", img)
	assert.NoError(t, err, "e2fsck -fn after the refusals:\n%s", out)
}
