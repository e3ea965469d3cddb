package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
	"github.com/dumpkit/dumpkit/vmcore"
)

// rcEnv runs dist/diskdump.init with the built tools, a sysconfig file
// naming devs and extra lines, no module.
type rcEnv struct {
	t      *testing.T
	bins   map[string]string
	script string
	root   string
	env    []string
}

func newRC(t *testing.T, bins map[string]string, devs []string, extra string) *rcEnv {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "dist", "diskdump.init"))
	require.NoError(t, err)
	root := t.TempDir()
	conf := filepath.Join(t.TempDir(), "diskdump")
	require.NoError(t, os.WriteFile(conf, []byte("DEVICE="+strings.Join(devs, ":")+"\nDUMPDIR="+root+"\n"+extra), 0o644))
	env := append(os.Environ(), "TZ=UTC", "SAVECORE="+bins["savecore"], "DUMPFORMAT="+bins["dumpformat"],
		"MODPROBE=true", "RMMOD=true", "DISKDUMP_CONFIG="+conf, "DISKDUMP_PROC="+filepath.Join(t.TempDir(), "proc"),
		"DISKDUMP_SYS="+t.TempDir(), "DISKDUMP_LOCK="+filepath.Join(t.TempDir(), "lock"))
	return &rcEnv{t: t, bins: bins, script: script, root: root, env: env}
}

func rcTools(t *testing.T) map[string]string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	return buildTools(t, "savecore", "dumpformat")
}

func (rc *rcEnv) start() string {
	rc.t.Helper()
	cmd := exec.Command("sh", rc.script, "start")
	cmd.Env = rc.env
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// tool runs a built tool and returns its exit code and output.
func (rc *rcEnv) tool(name string, args ...string) (int, string) {
	rc.t.Helper()
	out, err := exec.Command(rc.bins[name], args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	require.NoError(rc.t, err)
	return 0, string(out)
}

// TestInitScriptCycles: for each architecture, raw and compressed, with
// no module: rehearse, the rc script's start (save, format), rehearse the
// same machine again, three times; the kernel-exact writer accepts every
// rehearsal and dumpformat -c agrees with it.
func TestInitScriptCycles(t *testing.T) {
	bins := rcTools(t)
	for _, arch := range []diskdump.Arch{diskdump.ArchX86_64, diskdump.ArchI386, diskdump.ArchIA64, diskdump.ArchPPC64} {
		for _, compress := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/compress=%v", arch, compress), func(t *testing.T) {
				pbs := int64(arch.PageSize())
				img := blockdevtest.Image(t, 6000*pbs)
				rc := newRC(t, bins, []string{img}, "DISKDUMPFMT_OPTS=\"--arch "+arch.String()+"\"\n")
				code, out := rc.tool("dumpformat", "-f", "-q", "--arch", arch.String(), img)
				require.Equal(t, 0, code, out)
				args := []string{"-R", "-q", "--arch", arch.String(), "--ram", fmt.Sprintf("%dK", 13*pbs*256/1024), img}
				if compress {
					args = append(args[:len(args)-1], "--compress", img)
				}
				for cycle := range 3 {
					c, _ := rc.tool("dumpformat", "-c", "--arch", arch.String(), img)
					code, out := rc.tool("dumpformat", args...)
					assert.Equal(t, c == 0, code == 0, "cycle %d: -c %d, writer %d", cycle, c, code)
					require.Equal(t, 0, code, "cycle %d: %s", cycle, out)
					out = rc.start()
					assert.Contains(t, out, "saving the crash dumps on "+img, "cycle %d", cycle)
					dirs, err := filepath.Glob(filepath.Join(rc.root, "127.0.0.1-*"))
					require.NoError(t, err)
					assert.Len(t, dirs, cycle+1, "one directory per crash:\n%s", out)
				}
				c, out := rc.tool("dumpformat", "-c", "--arch", arch.String(), img)
				assert.Equal(t, 0, c, out)
			})
		}
	}
}

// TestInitScriptFallbackCopies: A holds an incomplete copy of a crash, B
// the complete one; the rc script saves the complete one, erases both and
// leaves both ready.
func TestInitScriptFallbackCopies(t *testing.T) {
	when := crashTime.Add(3 * time.Minute)
	a := dumpImageCut(t, 8<<20, false, when, 1200)
	b := dumpImage(t, 8<<20, false, when)
	rc := newRC(t, rcTools(t), []string{a, b}, "")
	out := rc.start()
	assert.Contains(t, out, "saving the crash dumps on "+a+" "+b)
	dirs, err := filepath.Glob(filepath.Join(rc.root, "127.0.0.1-*"))
	require.NoError(t, err)
	require.Len(t, dirs, 1, out)
	f, err := os.Open(filepath.Join(dirs[0], "vmcore"))
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	v, err := vmcore.Open(f, fi.Size())
	require.NoError(t, err)
	assert.False(t, v.Partial(), "the complete copy was kept")
	for _, p := range []string{a, b} {
		assert.False(t, holdsDump(t, p))
		c, out := rc.tool("dumpformat", "-c", p)
		assert.Equal(t, 0, c, "%s ready: %s", p, out)
	}
}

// TestInitScriptActiveSwap: a swap dump device that swap took before the
// rc script ran: checked 5/6, its dump saved but not erased, and it stays
// a registration candidate (registration itself needs the module).
func TestInitScriptActiveSwap(t *testing.T) {
	blockdevtest.RequireLoop(t)
	img := blockdevtest.Image(t, 8<<20)
	loop := blockdevtest.AttachLoop(t, img)
	blockdevtest.Mkfs(t, "mkswap", loop)
	rc := newRC(t, rcTools(t), []string{loop}, "")
	code, out := rc.tool("dumpformat", "-R", "-q", "--ram", "4M", loop)
	require.Equal(t, 0, code, out)
	blockdevtest.Swapon(t, loop)
	c, _ := rc.tool("dumpformat", "-c", loop)
	assert.Equal(t, int(diskdump.CheckSwapDump), c)
	out = rc.start()
	assert.Contains(t, out, "active swap")
	assert.Contains(t, out, "cannot register", "kept as a dump device:\n%s", out)
	dirs, _ := filepath.Glob(filepath.Join(rc.root, "127.0.0.1-*", "vmcore"))
	assert.Len(t, dirs, 1, out)
}
