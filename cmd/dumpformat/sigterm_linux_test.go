package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSigtermDuringFormat: SIGTERM in the middle of dumpformat -f stops
// it with exit 143 and one line saying what the device needs; dumpformat
// -c agrees (2: initial format).
func TestSigtermDuringFormat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildDumpformat(t)
	img := filepath.Join(t.TempDir(), "big.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(1<<30))
	require.NoError(t, f.Close())
	cmd := exec.Command(bin, "-f", "-p", img)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	r := bufio.NewReader(stderr)
	// The first progress update: the format is under way.
	_, err = r.ReadString('\r')
	require.NoError(t, err)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	rest := new(strings.Builder)
	_, _ = bufio.NewReader(r).WriteTo(rest)
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stderr: %s", rest)
	if ee.ExitCode() == 0 {
		t.Skip("the format finished before the signal")
	}
	assert.Equal(t, 143, ee.ExitCode(), rest.String())
	assert.Contains(t, rest.String(), "format interrupted by terminated")
	assert.Contains(t, rest.String(), "needs an initial format")
	code, _, _ := dumpformat(t, "-c", img)
	assert.Equal(t, 2, code)
}
