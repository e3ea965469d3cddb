package main

// dumpformat writes only to the device it was given: a symlinked device
// name is resolved (and named in messages) and the symlink itself is left
// alone, a missing device is never created, and other devices, on loop
// devices too (root), are untouched. File-based tests cannot show that a
// symlink to a real block device is followed to that device.

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

func secRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	t.Logf("dumpformat %q: %d\n%s%s", args, code, out.String(), errb.String())
	return code, out.String() + errb.String()
}

func secSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

func TestSecurityFormatWritesOnlyItsDevice(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.img")
	other := filepath.Join(dir, "other.img")
	for _, p := range []string{target, other} {
		require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte{0xa5}, 2<<20), 0o600))
	}
	otherSum := secSum(t, other)
	link := filepath.Join(t.TempDir(), "by-id-dump")
	require.NoError(t, os.Symlink(target, link))
	params := []string{"--arch", "x86_64", "--block-order", "2", "--sample-rate", "8"}

	code, out := secRun(t, append(append([]string{"-f", "-v"}, params...), link)...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, target, "messages name the real device")
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), "the symlink itself is not replaced")
	code, _ = secRun(t, append(append([]string{"-c"}, params...), target)...)
	assert.Equal(t, 0, code, "the symlink's target was formatted")
	assert.Equal(t, otherSum, secSum(t, other), "another file untouched")
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 2, "no file created next to the device")

	// A missing device (or a dangling symlink) is an error, never created.
	missing := filepath.Join(t.TempDir(), "sdz9")
	dangling := filepath.Join(t.TempDir(), "dangling")
	require.NoError(t, os.Symlink(missing, dangling))
	for _, p := range []string{missing, dangling} {
		for _, mode := range [][]string{{"-f"}, nil, {"-a"}} {
			code, _ := secRun(t, append(append(mode, params...), p)...)
			assert.Equal(t, 255, code)
			_, err := os.Stat(missing)
			assert.ErrorIs(t, err, os.ErrNotExist, "%v %s created a file", mode, p)
		}
	}
}

func TestSecurityFormatLoopSymlink(t *testing.T) {
	blockdevtest.RequireLoop(t)
	a := blockdevtest.Image(t, 4<<20)
	b := blockdevtest.Image(t, 4<<20)
	require.NoError(t, os.WriteFile(b, bytes.Repeat([]byte{0x5a}, 4<<20), 0o600))
	bSum := secSum(t, b)
	loopA := blockdevtest.AttachLoop(t, a)
	loopB := blockdevtest.AttachLoop(t, b)
	link := filepath.Join(t.TempDir(), "by-id-dump")
	require.NoError(t, os.Symlink(loopA, link))
	params := []string{"--arch", "x86_64", "--block-order", "2", "--sample-rate", "8"}
	code, out := secRun(t, append(append([]string{"-f", "-v"}, params...), link)...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, loopA, "messages name the real device")
	code, _ = secRun(t, append(append([]string{"-c"}, params...), loopA)...)
	assert.Equal(t, 0, code)
	code, _ = secRun(t, append(append([]string{"-c"}, params...), loopB)...)
	assert.Equal(t, 2, code, "the other loop device needs an initial format still")
	assert.Equal(t, bSum, secSum(t, b), "the other device's backing file is untouched")
}
