package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/vmcore"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildTools builds savecore (and dumpformat, when want says so and it
// exists) into a temporary directory.
func buildTools(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for _, n := range names {
		src := filepath.Join("..", n)
		if _, err := os.Stat(src); err != nil {
			t.Skipf("cmd/%s not present: %v", n, err)
		}
		bin := filepath.Join(dir, n)
		cmd := exec.Command("go", "build", "-o", bin, "./"+src)
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build %s:\n%s", n, b)
		out[n] = bin
	}
	return out
}

// TestBinary runs the built savecore the way the boot service does, with
// progress, and asks for a status line with SIGUSR1 in the middle.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bins := buildTools(t, "savecore")
	img := dumpImage(t, 48<<20, false, crashTime)
	root := t.TempDir()
	cmd := exec.Command(bins["savecore"], "-D", "-v", "-p", "-d", root, img)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderrPipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var stderr bytes.Buffer
	done := make(chan struct{})
	signalled := false
	go func() {
		defer close(done)
		r := bufio.NewReader(stderrPipe)
		for {
			b, err := r.ReadByte()
			if err != nil {
				return
			}
			stderr.WriteByte(b)
			// The first progress line: the handler is installed and the
			// save is under way.
			if b == '\r' && !signalled {
				signalled = true
				cmd.Process.Signal(syscall.SIGUSR1)
			}
		}
	}()
	<-done
	err = cmd.Wait()
	t.Logf("stderr:\n%s", stderr.String())
	require.NoError(t, err)
	want := filepath.Join(root, "127.0.0.1-2009-06-29-16:00", "vmcore")
	assert.Equal(t, want+"\n", stdout.String())
	assert.False(t, holdsDump(t, img))
	require.True(t, signalled, "progress was shown")
	status := false
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, "savecore: "+img+": ") && strings.Contains(line, "MiB") {
			status = true
		}
	}
	assert.True(t, status, "SIGUSR1 printed a status line")
}

// TestDist checks the boot integration files: the systemd unit verifies
// and runs savecore -D; the example scripts and the rc script are valid sh;
// the rc script's start action saves a dump and readies the partition.
func TestDist(t *testing.T) {
	dist := filepath.Join("..", "..", "dist")
	unit, err := os.ReadFile(filepath.Join(dist, "savecore.service"))
	require.NoError(t, err)
	for _, want := range []string{"ExecStart=/usr/sbin/savecore -D\n", "ExecStartPre=-/sbin/modprobe diskdump\n", "Type=oneshot\n", "DefaultDependencies=no\n",
		"After=local-fs.target", "Before=swap.target", "Conflicts=shutdown.target\n"} {
		assert.Contains(t, string(unit), want)
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		u := filepath.Join(t.TempDir(), "savecore.service")
		unit := bytes.ReplaceAll(unit, []byte("/sbin/modprobe"), []byte("/bin/true"))
		require.NoError(t, os.WriteFile(u, bytes.ReplaceAll(unit, []byte("/usr/sbin/savecore"), []byte("/bin/true")), 0o644))
		out, err := exec.Command(sa, "verify", u).CombinedOutput()
		assert.NoError(t, err, "systemd-analyze verify:\n%s", out)
	}
	for _, f := range []string{"diskdump.init", "scripts/diskdump-success", "scripts/diskdump-nospace"} {
		p := filepath.Join(dist, f)
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.NotZero(t, fi.Mode().Perm()&0o111, "%s executable", f)
		out, err := exec.Command("sh", "-n", p).CombinedOutput()
		assert.NoError(t, err, "sh -n %s:\n%s", f, out)
	}
}

// TestInitScript runs dist/diskdump.init with the built tools on partition
// image files (registration with a kernel module is not possible here).
func TestInitScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	bins := buildTools(t, "savecore", "dumpformat")
	script, err := filepath.Abs(filepath.Join("..", "..", "dist", "diskdump.init"))
	require.NoError(t, err)
	img := dumpImage(t, 4<<20, true, crashTime)
	empty := dumpImage(t, 4<<20, false, time.Time{})
	root := t.TempDir()
	conf := filepath.Join(t.TempDir(), "diskdump")
	require.NoError(t, os.WriteFile(conf, []byte("DEVICE="+empty+":"+img+"\nDUMPDIR="+root+"\n"), 0o644))
	proc := filepath.Join(t.TempDir(), "proc-diskdump")
	env := append(os.Environ(), "TZ=UTC", "SAVECORE="+bins["savecore"], "DUMPFORMAT="+bins["dumpformat"],
		"MODPROBE=true", "RMMOD=true", "DISKDUMP_CONFIG="+conf, "DISKDUMP_PROC="+proc,
		"DISKDUMP_SYS="+t.TempDir(), "DISKDUMP_LOCK="+filepath.Join(t.TempDir(), "lock"))
	sh := func(action string) (int, string) {
		cmd := exec.Command("sh", script, action)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		t.Logf("diskdump.init %s:\n%s", action, out)
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		require.NoError(t, err)
		return 0, string(out)
	}
	code, out := sh("start")
	assert.Equal(t, 1, code, "no device can be registered without the module")
	assert.Contains(t, out, "saving the crash dumps on "+img)
	assert.FileExists(t, filepath.Join(root, "127.0.0.1-2009-06-29-16:00", "vmcore"))
	assert.False(t, holdsDump(t, img))
	for _, p := range []string{img, empty} {
		c := exec.Command(bins["dumpformat"], "-c", p)
		assert.NoError(t, c.Run(), "%s ready after start", p)
	}

	code, _ = sh("status")
	assert.Equal(t, 3, code, "module not loaded")
	require.NoError(t, os.WriteFile(proc, []byte("# sample_rate: 8\n# block_order: 2\n#\nsdb1 2048 409600\n"), 0o644))
	code, out = sh("status")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "sdb1")

	code, _ = sh("initialformat")
	assert.Equal(t, 0, code)
	code, _ = sh("bogus")
	assert.Equal(t, 2, code)
}

// TestCrashConsistency kills the built savecore -D at every failpoint (as
// a crash or power cut would stop it) and checks what is left: a file
// named vmcore exists only complete, the dump is never erased before the
// vmcore is durable, and the next run recovers.
func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bins := buildTools(t, "savecore")
	tests := []struct {
		point      string
		vmcore     bool // a complete vmcore exists after the kill
		dumpKept   bool // the dump is still on the partition
		rerun      int  // exit code of the rerun of savecore -D
		rerunSaves bool // the rerun writes the vmcore
	}{
		{point: "before-write", dumpKept: true, rerun: exitOK, rerunSaves: true},
		{point: "write:2", dumpKept: true, rerun: exitOK, rerunSaves: true},
		{point: "before-rename", dumpKept: true, rerun: exitOK, rerunSaves: true},
		// Saved but not erased: the rerun finds the crash already saved
		// (its dump-id) and erases the dump.
		{point: "after-rename", vmcore: true, dumpKept: true, rerun: exitOK},
		{point: "after-dirsync", vmcore: true, dumpKept: true, rerun: exitOK},
		{point: "before-erase", vmcore: true, dumpKept: true, rerun: exitOK},
		// Erased (block 1 invalidated): nothing left to save.
		{point: "after-invalidate", vmcore: true, rerun: exitFail},
		{point: "after-erase", vmcore: true, rerun: exitFail},
		{point: "after-flush", vmcore: true, rerun: exitFail},
	}
	for _, tc := range tests {
		t.Run(tc.point, func(t *testing.T) {
			img := dumpImage(t, 8<<20, false, crashTime)
			root := t.TempDir()
			vmcore := filepath.Join(root, "127.0.0.1-2009-06-29-16:00", "vmcore")
			cmd := exec.Command(bins["savecore"], "-D", "-d", root, img)
			cmd.Env = append(os.Environ(), "TZ=UTC", "DUMPKIT_FAILPOINT="+tc.point)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "killed at %s:\n%s", tc.point, out)
			ws := ee.Sys().(syscall.WaitStatus)
			require.True(t, ws.Signaled(), "killed, not exited: %v\n%s", ws, out)
			assert.Contains(t, string(out), "failpoint "+strings.SplitN(tc.point, ":", 2)[0])

			if tc.vmcore {
				require.FileExists(t, vmcore)
				checkVmcoreFile(t, vmcore)
			} else {
				assert.NoFileExists(t, vmcore, "no vmcore before it is complete")
			}
			assert.Equal(t, tc.dumpKept, holdsDump(t, img))

			code, stdout, _ := runCmd(t, "-D", "-d", root, img)
			assert.Equal(t, tc.rerun, code)
			if tc.rerunSaves {
				assert.Equal(t, vmcore+"\n", stdout)
				checkVmcoreFile(t, vmcore)
				ents, err := os.ReadDir(filepath.Dir(vmcore))
				require.NoError(t, err)
				assert.Len(t, ents, 3, "temporary file of the killed run removed: vmcore, info and dump-id left")
			}
			if tc.rerun == exitOK {
				assert.False(t, holdsDump(t, img), "the rerun erased the dump")
			}
		})
	}
}

// checkVmcoreFile opens a vmcore with our reader and reads every page.
func checkVmcoreFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	v, err := vmcore.Open(f, fi.Size())
	require.NoError(t, err)
	var buf []byte
	n := 0
	for pfn := range v.Pages() {
		buf, err = v.ReadPage(pfn, buf)
		require.NoError(t, err, "PFN %d", pfn)
		n++
	}
	assert.NotZero(t, n)
}
