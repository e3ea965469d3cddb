package diskdump_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

// errCut is what a cutWriter returns once it has stopped writing.
var errCut = errors.New("cut")

// cutWriter passes the first n WriteAt calls through and fails the rest,
// like a formatter killed (or a machine losing power) after n writes. The
// formatter writes from two goroutines, so the count is under a lock.
type cutWriter struct {
	w      io.WriterAt
	n      int
	mu     sync.Mutex
	writes int
}

func (c *cutWriter) WriteAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writes >= c.n {
		return 0, errCut
	}
	c.writes++
	return c.w.WriteAt(p, off)
}

// TestFormatInterrupted: a format stopped after any number of its writes
// must never leave a device that CheckPartition calls ready, whatever the
// device held before: dumpformat -c would otherwise tell an rc script that
// a half-formatted partition can take a dump.
func TestFormatInterrupted(t *testing.T) {
	const bs = 4096
	// One 4 MiB format buffer and a bit: cut points inside the signature
	// writes as well as before and after them.
	const blocks = 1024 + 100
	fp := diskdump.FormatParams{BlockSize: bs, Order: binary.LittleEndian, BlockOrder: 2, SampleRate: 8}
	small := fp
	small.TotalBlocks = 300 // the kernel samples only the first 300 blocks

	rnd := make([]byte, blocks*bs)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(rnd); i += 8 {
		binary.LittleEndian.PutUint64(rnd[i:], r.Uint64())
	}
	otherOrder := make([]byte, blocks*bs)
	be := fp
	be.Order = binary.BigEndian
	require.NoError(t, diskdump.FormatInitial(memfile.New(otherOrder), blocks, be, nil))
	// A device that was formatted once and then lost its block 0 (and
	// some sampled blocks): the typical reason to run -f again.
	damaged := make([]byte, blocks*bs)
	require.NoError(t, diskdump.FormatInitial(memfile.New(damaged), blocks, fp, nil))
	clear(damaged[:bs])
	for _, blk := range []int{512, 1024, 1100} {
		clear(damaged[blk*bs : (blk+1)*bs])
	}

	cases := []struct {
		name string
		img  []byte
		fp   diskdump.FormatParams
	}{
		{"random/whole device sampled", rnd, fp},
		{"random/total_blocks 300", rnd, small},
		{"big-endian format/whole device sampled", otherOrder, fp},
		{"damaged format/total_blocks 300", damaged, small},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Count the writes of an uninterrupted format.
			full := &cutWriter{w: memfile.New(bytes.Clone(tc.img)), n: 1 << 30}
			require.NoError(t, diskdump.FormatInitial(full, blocks, tc.fp, nil))
			require.Greater(t, full.writes, 3)
			for n := 0; n < full.writes; n++ {
				img := bytes.Clone(tc.img)
				err := diskdump.FormatInitial(&cutWriter{w: memfile.New(img), n: n}, blocks, tc.fp, nil)
				require.ErrorIs(t, err, errCut)
				res, err := diskdump.CheckPartition(memfile.New(img), int64(len(img)), tc.fp)
				require.NoError(t, err)
				assert.Contains(t, []diskdump.CheckStatus{diskdump.CheckNeedsInitial, diskdump.CheckNeedsFormat}, res.Status,
					"initial format cut after %d of %d writes: %v (%s)", n, full.writes, res.Status, res.Reason)
			}
			res, err := diskdump.CheckPartition(memfile.New(full.w.(*memfile.File).Bytes()), blocks*bs, tc.fp)
			require.NoError(t, err)
			assert.Equal(t, diskdump.CheckReady, res.Status, res.Reason)
		})
	}
}

// TestFormatNormalInterrupted: a normal format (block 0 already valid)
// stopped after any of its writes leaves a device that needs a format, as
// long as the blocks it had not reached were not valid before; with the
// whole device sampled its last write is a sampled chunk.
func TestFormatNormalInterrupted(t *testing.T) {
	const bs = 4096
	const blocks = 1300
	fp := diskdump.FormatParams{BlockSize: bs, Order: binary.LittleEndian, BlockOrder: 2, SampleRate: 5}
	img0 := make([]byte, blocks*bs)
	diskdump.FillSignature(img0[:bs], 0, fp.Order)
	for _, all := range []bool{false, true} {
		full := &cutWriter{w: memfile.New(bytes.Clone(img0)), n: 1 << 30}
		rd := memfile.New(bytes.Clone(img0))
		require.NoError(t, diskdump.FormatNormal(full, rd, blocks, fp, all, nil))
		for n := 0; n < full.writes; n++ {
			img := bytes.Clone(img0)
			f := memfile.New(img)
			err := diskdump.FormatNormal(&cutWriter{w: f, n: n}, f, blocks, fp, all, nil)
			require.ErrorIs(t, err, errCut)
			res, err := diskdump.CheckPartition(f, int64(len(img)), fp)
			require.NoError(t, err)
			assert.Equal(t, diskdump.CheckNeedsFormat, res.Status, "all=%v: normal format cut after %d of %d writes: %s", all, n, full.writes, res.Reason)
		}
	}
}
