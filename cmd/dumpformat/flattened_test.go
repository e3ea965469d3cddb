package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawTargetDevice is an image of a kdump raw-target partition: a stream
// makedumpfile -F wrote (the vmcore package's fixture), cut at cut bytes
// when cut > 0, over random old contents.
func rawTargetDevice(t *testing.T, cut int) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "vmcore", "testdata", "flattened", "kdump-zlib-d1.flat.gz"))
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	stream, err := io.ReadAll(zr)
	require.NoError(t, err)
	if cut > 0 {
		stream = stream[:cut]
	}
	img := make([]byte, 4<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	copy(img, stream)
	p := filepath.Join(t.TempDir(), "raw.img")
	require.NoError(t, os.WriteFile(p, img, 0o600))
	return p
}

func TestCheckFlattened(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cut      int
		complete bool
		end      string
	}{
		{name: "complete", complete: true, end: "complete"},
		{name: "torn", cut: 9000, end: "record beyond the size limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := rawTargetDevice(t, tc.cut)
			code, _, stderr := dumpformat(t, "-c", dev)
			assert.Equal(t, 1, code, stderr)
			assert.Contains(t, stderr, "holds a dump")

			code, stdout, _ := dumpformat(t, "-c", "-v", dev)
			assert.Equal(t, 1, code)
			assert.Contains(t, stdout, "flattened kdump dump")
			assert.Contains(t, stdout, "stream:      makedumpfile flattened")

			code, stdout, _ = dumpformat(t, "-c", "--json", dev)
			assert.Equal(t, 1, code)
			var out checkJSON
			require.NoError(t, json.Unmarshal([]byte(stdout), &out))
			require.NotNil(t, out.Flattened)
			assert.Equal(t, "kdump", out.Flattened.Format)
			assert.Equal(t, tc.complete, out.Flattened.Complete)
			assert.Equal(t, tc.end, out.Flattened.End)
			assert.Positive(t, out.Flattened.Records)
			assert.NotEmpty(t, out.Flattened.CrashTime, "makedumpfile's header timestamp")
		})
	}
}

// TestFormatFlattenedRefused: a raw-target partition holding a dump is not
// formatted without -f; with -f it is, and the dump is gone.
func TestFormatFlattenedRefused(t *testing.T) {
	dev := rawTargetDevice(t, 0)
	before := readFile(t, dev)
	code, _, stderr := dumpformat(t, dev)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "holds a dump, run savecore first")
	assert.True(t, bytes.Equal(before, readFile(t, dev)), "device changed")

	code, _, stderr = dumpformat(t, "-f", dev)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "overwriting a flattened dump")
	code, _, _ = dumpformat(t, "-c", dev)
	assert.Equal(t, 0, code, "formatted and ready")
}
