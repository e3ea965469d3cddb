package testutil

import (
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// Gunzip returns the uncompressed content of the gzip file at path. The
// gzip command is faster than compress/gzip for the multi-MiB images, so it
// is used when present.
func Gunzip(tb testing.TB, path string) []byte {
	tb.Helper()
	if gz, err := exec.LookPath("gzip"); err == nil {
		if out, err := exec.Command(gz, "-dc", path).Output(); err == nil {
			return out
		}
	}
	f, err := os.Open(path)
	require.NoError(tb, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(tb, err)
	img, err := io.ReadAll(zr)
	require.NoError(tb, err)
	return img
}
