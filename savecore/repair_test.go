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

// writerAccepts reports whether the kernel-exact writer would dump the
// rehearsal's machine on a copy of dev.
func writerAccepts(t *testing.T, dev memDev, r rehearsal) bool {
	t.Helper()
	cp := memfile.New(bytes.Clone(dev.Bytes()))
	blocks := uint64(len(dev.Bytes())) / uint64(r.blockSize())
	_, err := kernel.WriteDump(cp, blocks, r.machine(), r.config())
	return err == nil
}

// TestRepairEraseCutShort: an erase cut after block 1 was invalidated and
// before the sampled blocks were rewritten leaves no dump and a partition
// the kernel refuses; the next savecore -D repairs it in one line.
func TestRepairEraseCutShort(t *testing.T) {
	for _, r := range []rehearsal{{arch: diskdump.ArchX86_64}, {arch: diskdump.ArchPPC64, compress: true}, {arch: diskdump.ArchIA64}} {
		t.Run(r.arch.String(), func(t *testing.T) {
			dev, _, _ := r.memImage(t)
			require.NoError(t, diskdump.InvalidateDump(dev, r.blockSize(), r.arch.ByteOrder(), false))
			res, err := diskdump.CheckPartition(dev, dev.Size(), r.formatParams())
			require.NoError(t, err)
			require.Equal(t, diskdump.CheckNeedsFormat, res.Status, res.Reason)
			require.False(t, writerAccepts(t, dev, r), "the kernel refuses the partition")

			opt, logs := testOptions(t)
			opt.Delete = true
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			require.NoError(t, rep.Results[0].Err)
			assert.Equal(t, OutcomeNoDump, rep.Results[0].Outcome)
			assert.Contains(t, logs.String(), "repaired an erase cut short")
			res, err = diskdump.CheckPartition(dev, dev.Size(), r.formatParams())
			require.NoError(t, err)
			assert.Equal(t, diskdump.CheckReady, res.Status, res.Reason)
			assert.True(t, writerAccepts(t, dev, r), "the kernel accepts it again")
		})
	}
	t.Run("not formatted: says why", func(t *testing.T) {
		dev := memDev{memfile.New(make([]byte, 1<<20))}
		opt, logs := testOptions(t)
		opt.Delete = true
		rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
		assert.Equal(t, OutcomeNoDump, rep.Results[0].Outcome)
		assert.Contains(t, logs.String(), "not ready for the next panic")
		assert.Equal(t, make([]byte, 1<<20), dev.Bytes(), "nothing written")
	})
}
