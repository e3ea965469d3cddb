package savecore

import (
	"bytes"
	"context"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
)

// TestLifecycleMachineChanges: the machine gets a different RAM size, and
// the module different parameters, between two crashes. At the boot after
// the first crash the module is loaded with the new values (the unit and
// the rc script load it before savecore), so savecore -D prepares the
// partition for them: the second crash is dumped.
func TestLifecycleMachineChanges(t *testing.T) {
	first := rehearsal{arch: diskdump.ArchX86_64, mem: 24 << 20}
	tests := []struct {
		name       string
		mem        uint64
		blockOrder uint
		sampleRate int
		compress   bool
	}{
		{name: "less RAM", mem: 13 << 20, blockOrder: 2, sampleRate: 8},
		{name: "less RAM, compressed", mem: 11 << 20, blockOrder: 2, sampleRate: 8, compress: true},
		{name: "block_order 3 sample_rate 5", mem: 24 << 20, blockOrder: 3, sampleRate: 5},
		{name: "sample_rate 0", mem: 20 << 20, blockOrder: 1, sampleRate: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, _, _ := first.memImage(t)
			// Room for the second machine too.
			blocks := uint64(dev.Size()) / 4096
			next := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: tc.mem, Seed: 9, NoRandomBad: true})
			cfg := first.config()
			cfg.BlockOrder, cfg.SampleRate, cfg.Compress = tc.blockOrder, tc.sampleRate, tc.compress
			g := diskdump.NewGeometry(4096, next.MaxPFN(), next.RAMPages(), tc.compress)
			mp := diskdump.ModuleParams{BlockOrder: cfg.BlockOrder, SampleRate: cfg.SampleRate, TotalBlocks: g.TotalBlocks(), HasTotalBlocks: true}

			opt, _ := testOptions(t)
			opt.Delete, opt.Module = true, &mp
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			require.NoError(t, rep.Results[0].Err)
			require.True(t, rep.Results[0].Erased)

			fp := diskdump.FormatParams{BlockSize: 4096, Order: diskdump.ArchX86_64.ByteOrder(), BlockOrder: mp.BlockOrder, SampleRate: mp.SampleRate, TotalBlocks: mp.TotalBlocks}
			res, err := diskdump.CheckPartition(dev, dev.Size(), fp)
			require.NoError(t, err)
			assert.Equal(t, diskdump.CheckReady, res.Status, res.Reason)
			cp := memfile.New(bytes.Clone(dev.Bytes()))
			_, err = kernel.WriteDump(cp, blocks, next, cfg)
			assert.NoError(t, err, "the kernel dumps the second crash")
		})
	}
}
