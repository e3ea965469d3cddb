package savecore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

// referenceSave saves a copy of the partition at img (without -D) and
// returns the vmcore's bytes.
func referenceSave(t *testing.T, img string) []byte {
	t.Helper()
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	cp := filepath.Join(t.TempDir(), "copy.img")
	require.NoError(t, os.WriteFile(cp, b, 0o600))
	opt, _ := testOptions(t)
	rep := SaveDevices(context.Background(), []string{cp}, opt)
	require.NoError(t, rep.Results[0].Err)
	v, err := os.ReadFile(rep.Results[0].Path)
	require.NoError(t, err)
	return v
}

// concurrentSaves runs n savecore -D on dev at once, each into its own
// dump root, and checks that exactly one saved and erased the dump, with
// a vmcore byte-identical to want, and that the others found no dump.
func concurrentSaves(t *testing.T, dev string, n int, want []byte) {
	t.Helper()
	reps := make([]*Report, n)
	var wg sync.WaitGroup
	for i := range n {
		opt, _ := testOptions(t)
		opt.Delete = true
		opt.LockWait = time.Minute
		wg.Go(func() { reps[i] = SaveDevices(context.Background(), []string{dev}, opt) })
	}
	wg.Wait()
	saved, erased := 0, 0
	for _, rep := range reps {
		res := rep.Results[0]
		require.NoError(t, res.Err)
		if res.Erased {
			erased++
		}
		switch res.Outcome {
		case OutcomeSaved:
			saved++
			got, err := os.ReadFile(res.Path)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got), "vmcore differs from the save of a copy")
		default:
			assert.Equal(t, OutcomeNoDump, res.Outcome)
		}
	}
	assert.Equal(t, 1, saved, "one save")
	assert.Equal(t, 1, erased, "the dump erased once")
}

func TestRaceConcurrentSavesImage(t *testing.T) {
	for _, r := range []rehearsal{{arch: diskdump.ArchX86_64}, {arch: diskdump.ArchX86_64, compress: true}} {
		img, _, _ := r.fileImage(t)
		concurrentSaves(t, img, 4, referenceSave(t, img))
	}
}

func TestRaceConcurrentSavesLoop(t *testing.T) {
	blockdevtest.RequireLoop(t)
	r := rehearsal{arch: diskdump.ArchX86_64, compress: true}
	img, _, _ := r.fileImage(t)
	want := referenceSave(t, img)
	concurrentSaves(t, blockdevtest.AttachLoop(t, img), 4, want)
}

func TestRaceDeviceLocked(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64}
	img, _, _ := r.fileImage(t)
	holder, err := blockdev.OpenLocked(img, blockdev.ReadOnly, false, 0)
	require.NoError(t, err)
	defer holder.Close()
	opt, _ := testOptions(t)
	opt.Delete = true
	opt.LockWait = 200 * time.Millisecond
	start := time.Now()
	rep := SaveDevices(context.Background(), []string{img}, opt)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "waited")
	require.ErrorIs(t, rep.Results[0].Err, blockdev.ErrLocked)
	assert.True(t, rep.Locked())
	assert.Contains(t, rep.Results[0].Err.Error(), "locked by pid")
	holder.Close()
	rep = SaveDevices(context.Background(), []string{img}, opt)
	require.NoError(t, rep.Results[0].Err)
	assert.Equal(t, OutcomeSaved, rep.Results[0].Outcome)
}

// TestRaceTwoSavesOneRoot: two savecores save two crashes into one dump
// root at once, while the root holds a temporary file of an interrupted
// save; both vmcores are kept and correct.
func TestRaceTwoSavesOneRoot(t *testing.T) {
	r1 := rehearsal{arch: diskdump.ArchX86_64, compress: true}
	r2 := rehearsal{arch: diskdump.ArchX86_64, time: crashTime.Add(2 * time.Minute), seed: 5}
	img1, _, _ := r1.fileImage(t)
	img2, _, _ := r2.fileImage(t)
	want1, want2 := referenceSave(t, img1), referenceSave(t, img2)
	opt, _ := testOptions(t)
	opt.Delete = true
	var reps [2]*Report
	var wg sync.WaitGroup
	for i, img := range []string{img1, img2} {
		wg.Go(func() { reps[i] = SaveDevices(context.Background(), []string{img}, opt) })
	}
	wg.Wait()
	for i, want := range [][]byte{want1, want2} {
		res := reps[i].Results[0]
		require.NoError(t, res.Err)
		got, err := os.ReadFile(res.Path)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "vmcore %d", i)
	}
}
