package main

// Crash consistency of savecore: the built binary is killed with SIGKILL
// (savecore.Failpoint, armed through DUMPKIT_FAILPOINT) at points spread
// over a save with -D, and what it leaves behind is checked, then a rerun
// must finish the job with a byte-identical vmcore. Partition images are
// regular files: a kill, unlike a power cut, loses nothing the process had
// written, so this tests the order of the steps (temporary file, rename,
// erase) and the clean-up of a rerun, not the fsyncs; the fsyncs themselves
// are checked by the savecore package's tests.
//
// CI runs a reduced set of points; scripts/killharness.sh sets
// DUMPKIT_KILLHARNESS=full to kill after every MiB of the vmcore and on
// bigger dumps.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/dumpkit/dumpkit/internal/failpoint"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/savecore"
)

// killPointsAfterSave are the points after the vmcore is durable, in the
// order a save with -D reaches them; from after-invalidate on the dump may
// be gone from the partition.
var killPointsAfterSave = []string{"after-dirsync", "before-erase", "after-invalidate", "after-erase", "after-flush"}

// killPoints lists the points to kill savecore at for a vmcore of which
// written bytes are data (an ELF vmcore is sparse: holes and zero pages
// are not written): every MiB in full mode, a spread of them otherwise.
func killPoints(written int64, full bool) []string {
	pts := []string{"before-write"}
	mib := int(written >> 20)
	var writes []int
	switch {
	case full:
		for i := 1; i <= mib; i++ {
			writes = append(writes, i)
		}
	case mib >= 1:
		writes = append(writes, 1)
		if mib >= 4 {
			writes = append(writes, mib/2)
		}
		if mib >= 2 {
			writes = append(writes, mib)
		}
	}
	for _, w := range writes {
		pts = append(pts, fmt.Sprintf("write:%d", w))
	}
	pts = append(pts, "before-rename", "after-rename")
	return append(pts, killPointsAfterSave...)
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, 0o600))
}

// crashRun runs the savecore binary; it returns the exit code (-1 when
// killed by a signal, with the signal) and stderr.
func crashRun(t *testing.T, bin, point string, args ...string) (code int, sig syscall.Signal, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC", failpoint.Env+"="+point)
	var e bytes.Buffer
	cmd.Stderr = &e
	cmd.Stdout = io.Discard
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, 0, e.String()
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return -1, ws.Signal(), e.String()
		}
		return ws.ExitStatus(), 0, e.String()
	}
	require.NoError(t, err)
	return 0, 0, ""
}

// isTempName reports whether a file in the dump directory is a
// temporary file of an interrupted save (renameio: "." + name + digits).
func isTempName(name string) bool {
	rest, ok := strings.CutPrefix(name, "."+savecore.VmcoreName)
	return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
}

func TestKillHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds savecore and kills it many times")
	}
	full := os.Getenv("DUMPKIT_KILLHARNESS") == "full"
	bins := buildTools(t, "savecore", "dumpformat")
	bin := bins["savecore"]
	mem := uint64(12 << 20)
	if full {
		mem = 64 << 20
	}
	dir := "127.0.0.1-" + crashTime.Format("2006-01-02-15:04") // TZ=UTC
	total := 0
	for _, compress := range []bool{false, true} {
		name := map[bool]string{false: "raw", true: "compressed"}[compress]
		t.Run(name, func(t *testing.T) {
			pristine := dumpImage(t, mem, compress, crashTime)
			// The uninterrupted save every rerun must reproduce.
			refRoot := t.TempDir()
			img := filepath.Join(t.TempDir(), "part.img")
			copyFile(t, pristine, img)
			code, _, stderr := crashRun(t, bin, "", "-d", refRoot, img)
			require.Equal(t, 0, code, stderr)
			ref := filepath.Join(refRoot, dir, savecore.VmcoreName)
			refSum := fileSHA256(t, ref)
			fi, err := os.Stat(ref)
			require.NoError(t, err)
			// The blocks the file occupies, less a margin for the file
			// system's rounding, are a lower bound of the bytes written.
			written := fi.Sys().(*syscall.Stat_t).Blocks * 512 * 15 / 16
			pts := killPoints(written, full)
			t.Logf("vmcore %d bytes (about %d written), %d kill points", fi.Size(), written, len(pts))
			total += len(pts)

			for _, pt := range pts {
				t.Run(pt, func(t *testing.T) {
					img := filepath.Join(t.TempDir(), "part.img")
					copyFile(t, pristine, img)
					root := t.TempDir()
					code, sig, stderr := crashRun(t, bin, pt, "-D", "-d", root, img)
					require.Equal(t, -1, code, "savecore was not killed at %s (point not reached?): exit %d\n%s", pt, code, stderr)
					require.Equal(t, syscall.SIGKILL, sig)
					require.Contains(t, stderr, "failpoint "+pt)

					ddir := filepath.Join(root, dir)
					vmcore := filepath.Join(ddir, savecore.VmcoreName)
					erasedOK := slices.Index(killPointsAfterSave, pt) >= slices.Index(killPointsAfterSave, "after-invalidate")
					haveDump := holdsDump(t, img)
					if !erasedOK {
						assert.True(t, haveDump, "the dump was erased before the save was durable")
					}
					_, err := os.Stat(vmcore)
					haveVmcore := err == nil
					if haveVmcore {
						assert.Equal(t, refSum, fileSHA256(t, vmcore), "vmcore differs from the uninterrupted save")
						vi, err := os.Stat(vmcore)
						require.NoError(t, err)
						assert.Equal(t, os.FileMode(0o600), vi.Mode().Perm())
					} else {
						assert.True(t, haveDump, "neither a vmcore nor the dump is left")
						assert.NotContains(t, killPointsAfterSave, pt, "no vmcore after the save was durable")
					}
					ents, _ := os.ReadDir(ddir)
					for _, e := range ents {
						if e.Name() != savecore.VmcoreName && e.Name() != savecore.DumpIDName && e.Name() != savecore.InfoName {
							assert.True(t, isTempName(e.Name()), "unexpected file %s left in %s", e.Name(), ddir)
						}
					}

					// Killed during the erase: block 1 no longer holds the
					// dump but the sampled blocks may still lack their
					// signatures; the boot script's dumpformat -c must see a
					// device that needs a (normal) format or is ready, so it
					// restores them before registering the device.
					if !haveDump {
						c := exec.Command(bins["dumpformat"], "-c", "--arch", "x86_64", "--block-order", "2", "--sample-rate", "8", img)
						err := c.Run()
						code := 0
						var ee *exec.ExitError
						if errors.As(err, &ee) {
							code = ee.ExitCode()
						} else {
							require.NoError(t, err)
						}
						assert.Contains(t, []int{0, 3}, code, "dumpformat -c after a kill at %s", pt)
						if pt == "after-flush" {
							assert.Equal(t, 0, code, "the erase restored the signatures")
						}
					}

					// The rerun: -f only where a vmcore exists (a directory
					// holding nothing but temporary files is taken over).
					if !haveDump {
						code, _, stderr := crashRun(t, bin, "", "-D", "-d", root, img)
						assert.Equal(t, 1, code, "no dump left: %s", stderr)
						assert.Equal(t, refSum, fileSHA256(t, vmcore))
						// An erase cut short is repaired by the rerun.
						c := exec.Command(bins["dumpformat"], "-c", "--arch", "x86_64", img)
						assert.NoError(t, c.Run(), "dumpformat -c after the rerun at %s: ready", pt)
						return
					}
					// A vmcore of this crash already there: the rerun
					// says it is saved and erases the dump, exit 0.
					args := []string{"-D", "-d", root, img}
					code, _, stderr = crashRun(t, bin, "", args...)
					require.Equal(t, 0, code, "rerun: %s", stderr)
					if haveVmcore {
						assert.Contains(t, stderr, "crash already saved", "a saved vmcore is not written again")
					}
					assert.Equal(t, refSum, fileSHA256(t, vmcore), "rerun vmcore differs from the uninterrupted save")
					ents, err = os.ReadDir(ddir)
					require.NoError(t, err)
					var names []string
					for _, e := range ents {
						names = append(names, e.Name())
					}
					// info is written after the vmcore is durable: a save
					// killed between the two leaves none, and the rerun,
					// which finds the crash saved, does not write one.
					if len(names) == 2 {
						names = []string{names[0], savecore.InfoName, names[1]}
					}
					assert.Equal(t, []string{savecore.DumpIDName, savecore.InfoName, savecore.VmcoreName}, names, "temporary files left after the rerun")
					assert.False(t, holdsDump(t, img), "the rerun with -D erases the dump")
				})
			}
		})
	}
	t.Logf("%d kill points", total)
}
