// Package blockdevtest holds helpers shared by dumpkit's tests: skipping or
// failing root-only loop-device tests, attaching loop devices, making
// filesystems, mounting and enabling swap with cleanup, and a
// fault-injecting device for tests of the packages above blockdev.
//
// Root-only tests skip with a reason when they cannot run. Setting
// DISKDUMP_REQUIRE_LOOP=1 (as CI does) turns every such skip, including a
// missing mkfs tool, into a failure.
package blockdevtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// RequireEnv is the environment variable that turns skips into failures.
const RequireEnv = "DISKDUMP_REQUIRE_LOOP"

// skip skips the test with why, or fails it when RequireEnv is "1".
func skip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// RequireLoop skips the test with a reason when it is not running as root or
// the kernel has no /dev/loop-control. With DISKDUMP_REQUIRE_LOOP=1 it fails
// instead.
func RequireLoop(t testing.TB) {
	t.Helper()
	var why string
	if os.Geteuid() != 0 {
		why = "loop-device tests need root"
	} else if _, err := os.Stat("/dev/loop-control"); err != nil {
		why = "no loop support: " + err.Error()
	}
	if why == "" {
		return
	}
	skip(t, why)
}

// RequireTool returns the path of the named program, or skips the test
// (fails under DISKDUMP_REQUIRE_LOOP=1) when it is not installed. It also
// looks in /sbin and /usr/sbin, which are often missing from a user's PATH.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	skip(t, name+" not installed")
	return ""
}

// Run runs a program found with [RequireTool] and fails the test, showing
// its output, if it does not succeed. It returns standard output.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := TryRun(t, name, args...)
	require.NoError(t, err, "%s %q:\n%s", name, args, out)
	return out
}

// TryRun is like [Run] but returns the error (with combined output) instead
// of failing, for tools whose failure the test wants to judge.
func TryRun(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(RequireTool(t, name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Stop tools such as cryptsetup and mkfs from asking questions.
	cmd.Stdin = nil
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// Image creates a sparse file of size bytes in a temporary directory and
// returns its path.
func Image(t testing.TB, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
	return path
}
