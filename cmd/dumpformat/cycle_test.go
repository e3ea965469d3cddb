package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/savecore"
)

// saveAndErase is savecore -D with no module loaded.
func saveAndErase(t *testing.T, img, root string) *savecore.Report {
	t.Helper()
	mp := diskdump.DefaultModuleParams
	rep := savecore.SaveDevices(context.Background(), []string{img}, savecore.Options{Dir: root, Delete: true, Module: &mp})
	for _, r := range rep.Results {
		require.NoError(t, r.Err, "savecore -D on %s", r.Device)
	}
	return rep
}

// TestNextPanicCycles: rehearse a machine, save it with -D, rehearse the
// same machine again, three times, for each architecture, raw and
// compressed, with no module parameters known. Before each rehearsal the
// verdict of dumpformat -c must equal the kernel-exact writer's: ready
// exactly when the rehearsal is accepted.
func TestNextPanicCycles(t *testing.T) {
	for _, arch := range []diskdump.Arch{diskdump.ArchX86_64, diskdump.ArchI386, diskdump.ArchIA64, diskdump.ArchPPC64} {
		for _, compress := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/compress=%v", arch, compress), func(t *testing.T) {
				pbs := int64(arch.PageSize())
				// The machine's total_blocks is off the sampling grid and
				// below the device's size, so its tail chunk is a chunk
				// that neither the grid nor the device's tail covers.
				ram := 13 * pbs * 256
				img := memoryImage(t, 6000*pbs)
				root := t.TempDir()
				formatFile(t, img, "--arch", arch.String())
				args := []string{"--arch", arch.String(), "--ram", fmt.Sprintf("%dK", ram/1024), "--seed", "3"}
				if compress {
					args = append(args, "--compress")
				}
				for cycle := range 3 {
					code, stdout, stderr := dumpformat(t, "-c", "-v", "--arch", arch.String(), img)
					rc, out, rerr := rehearse(t, append(args, img)...)
					assert.Equal(t, code == 0, rc == 0, "cycle %d: -c says %d (%s%s), the writer: %d %s", cycle, code, stdout, stderr, rc, rerr)
					require.Equal(t, 0, rc, "cycle %d: the kernel-exact writer refuses the partition: %s", cycle, rerr)
					require.Equal(t, "completed", out.Outcome, "cycle %d", cycle)
					code, _, _ = dumpformat(t, "-c", "--arch", arch.String(), img)
					require.Equal(t, int(diskdump.CheckHoldsDump), code)
					rep := saveAndErase(t, img, root)
					require.Len(t, rep.Paths(), 1)
					require.NoError(t, os.RemoveAll(filepath.Dir(rep.Paths()[0])))
				}
				code, stdout, _ := dumpformat(t, "-c", "-v", "--arch", arch.String(), img)
				assert.Equal(t, 0, code, stdout)
				assert.Contains(t, stdout, "total_blocks of the last saved dump (block 2)")
			})
		}
	}
}
