package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConfigAbsentDevice: a DEVICE list naming a device that is not there
// (a removed disk) does not fail every boot: a warning, the other devices
// saved, exit 0. Named on the command line it still fails.
func TestConfigAbsentDevice(t *testing.T) {
	img := dumpImage(t, 4<<20, true, crashTime)
	missing := filepath.Join(t.TempDir(), "sdz1")
	root := t.TempDir()
	conf := filepath.Join(t.TempDir(), "diskdump")
	require.NoError(t, os.WriteFile(conf, []byte("DEVICE="+missing+":"+img+"\nDUMPDIR="+root+"\n"), 0o644))
	code, out, errOut := runCmd(t, "-D", "-C", conf)
	assert.Equal(t, exitOK, code)
	assert.Equal(t, vmcorePath(root)+"\n", out)
	assert.Contains(t, errOut, "device absent")
	code, _, _ = runCmd(t, "-d", t.TempDir(), missing)
	assert.Equal(t, exitFail, code)
}
