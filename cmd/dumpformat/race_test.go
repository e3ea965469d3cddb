package main

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/savecore"
)

// holdsComplete reports whether img holds a COMPLETED dump whose every
// page reads back.
func holdsComplete(t *testing.T, img string) (bool, int64) {
	t.Helper()
	code, _, _ := dumpformat(t, "-c", img)
	if code != int(diskdump.CheckHoldsDump) {
		return false, 0
	}
	p, _ := readBack(t, img)
	assert.True(t, p.Header().Status.Complete())
	return true, p.Header().Sec
}

// TestRaceTwoRehearsals: two dumpformat -R on one image at once never mix
// two dumps: the result is one of them, complete and readable.
func TestRaceTwoRehearsals(t *testing.T) {
	img := memoryImage(t, 2048*bs)
	formatFile(t, img)
	var codes [2]int
	var errs [2]string
	var wg sync.WaitGroup
	for i, seed := range []string{"1", "2"} {
		wg.Go(func() {
			codes[i], _, errs[i] = dumpformat(t, "-R", "-q", "--ram", "4M", "--seed", seed, "--compress", img)
		})
	}
	wg.Wait()
	// The second finds the first's dump and is refused, as the kernel
	// would be.
	assert.ElementsMatch(t, []int{0, 255}, codes[:])
	assert.Contains(t, errs[0]+errs[1], "holds a dump: run savecore first")
	ok, _ := holdsComplete(t, img)
	assert.True(t, ok)
}

// TestRaceSavecoreAndDumpformat: savecore -D and dumpformat (-R, normal
// format) on one image at once run one after the other: the vmcore is a
// complete dump and the partition is either ready or holds the later
// rehearsal, complete.
func TestRaceSavecoreAndDumpformat(t *testing.T) {
	for _, mode := range [][]string{{"-R", "-q", "--ram", "4M", "--seed", "9"}, {"-q"}} {
		t.Run(mode[0], func(t *testing.T) {
			img := memoryImage(t, 2048*bs)
			formatFile(t, img)
			code, _, stderr := dumpformat(t, "-R", "-q", "--ram", "4M", img)
			require.Equal(t, 0, code, stderr)
			root := t.TempDir()
			mp := diskdump.DefaultModuleParams
			var rep *savecore.Report
			var fcode int
			var wg sync.WaitGroup
			wg.Go(func() {
				rep = savecore.SaveDevices(context.Background(), []string{img}, savecore.Options{Dir: root, Delete: true, Module: &mp, LockWait: time.Minute})
			})
			wg.Go(func() { fcode, _, _ = dumpformat(t, append(mode, img)...) })
			wg.Wait()
			res := rep.Results[0]
			require.NoError(t, res.Err)
			require.Equal(t, savecore.OutcomeSaved, res.Outcome)
			assert.False(t, res.Incomplete, "the vmcore is a complete dump")
			st, err := os.Stat(res.Path)
			require.NoError(t, err)
			assert.Positive(t, st.Size())
			c, _, _ := dumpformat(t, "-c", img)
			switch mode[0] {
			case "-R":
				// Before the save the rehearsal is refused (the device
				// holds a dump); after it, it is written.
				assert.Contains(t, []int{0, 255}, fcode)
				// Either the rehearsal ran first and savecore saved and
				// erased it, or it ran after the save and is on the device.
				if c != 0 {
					ok, _ := holdsComplete(t, img)
					assert.True(t, ok)
				}
			default:
				// A format before the save is refused (the device holds a
				// dump, 255); after the save it succeeds. The device ends
				// up ready either way.
				assert.Contains(t, []int{0, 255}, fcode)
				assert.Equal(t, 0, c)
			}
		})
	}
}

// TestLockedExitStatus: a device locked by another process makes every
// mode of dumpformat exit 8 after --wait.
func TestLockedExitStatus(t *testing.T) {
	img := memoryImage(t, 2048*bs)
	formatFile(t, img)
	holder, err := blockdev.OpenLocked(img, blockdev.ReadOnly, false, 0)
	require.NoError(t, err)
	defer holder.Close()
	for _, args := range [][]string{{"-c"}, {}, {"-f"}, {"-R", "--ram", "1M"}, {"-n"}} {
		code, _, stderr := dumpformat(t, append(append(args, "--wait", "100ms"), img)...)
		assert.Equal(t, exitLocked, code, "%v: %s", args, stderr)
		assert.Contains(t, stderr, "locked by pid", "%v", args)
	}
}
