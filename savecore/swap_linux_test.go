package savecore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

// TestSaveActiveSwap: swap was turned on before savecore ran on a swap
// dump device: savecore -D saves the dump, warns, and leaves the erase
// (exit 0); -X says why it cannot erase.
func TestSaveActiveSwap(t *testing.T) {
	blockdevtest.RequireLoop(t)
	r := rehearsal{arch: diskdump.ArchX86_64}
	m := r.machine()
	blocks := r.fullBlocks(m) + 64
	img := blockdevtest.Image(t, int64(blocks)*4096)
	loop := blockdevtest.AttachLoop(t, img)
	blockdevtest.Mkfs(t, "mkswap", loop)
	d, err := blockdev.Open(loop, blockdev.ReadWrite)
	require.NoError(t, err)
	wr, err := kernel.WriteDump(d, blocks, m, r.config())
	require.NoError(t, err)
	require.NoError(t, d.Flush())
	require.NoError(t, d.Close())
	blockdevtest.Swapon(t, loop)

	opt, logs := testOptions(t)
	opt.Delete = true
	rep := SaveDevices(context.Background(), []string{loop}, opt)
	res := rep.Results[0]
	require.NoError(t, res.Err)
	assert.Equal(t, OutcomeSaved, res.Outcome)
	assert.False(t, res.Erased)
	assert.Contains(t, logs.String(), "active swap")
	assert.Contains(t, logs.String(), "may have been overwritten")
	checkVmcore(t, res.Path, m, wr, false)
	assert.Equal(t, diskdump.CheckSwapDump, openCheck(t, loop, r.formatParams()).Status)

	opt.Delete, opt.DeleteOnly = false, true
	rep = SaveDevices(context.Background(), []string{loop}, opt)
	require.Error(t, rep.Results[0].Err)
	assert.Contains(t, rep.Results[0].Err.Error(), "active swap")
}
