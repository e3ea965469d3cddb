package vmcore

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Streams made by makedumpfile 1.7.2 (`makedumpfile -F`), kept in
// testdata/flattened with the size and SHA-256 of what `makedumpfile -R`
// rebuilt from them, so that byte identity is checked even where makedumpfile
// is not installed, and the fuzz target starts from real streams.
// testdata/flattened/README.md says how they were made; regenerate with
// `go test ./vmcore -run TestFlattenedFixtures -update-flattened`.

var updateFlattened = flag.Bool("update-flattened", false, "regenerate testdata/flattened with makedumpfile")

const flattenedFixtureDir = "testdata/flattened"

// flattenedFixture is one entry of testdata/flattened/manifest.json.
type flattenedFixture struct {
	Name             string   `json:"name"`
	Args             []string `json:"makedumpfile_args"`
	StreamSHA256     string   `json:"stream_sha256"`
	RearrangedSize   int64    `json:"rearranged_size"`
	RearrangedSHA256 string   `json:"rearranged_sha256"`
	Records          int64    `json:"records"`
}

var flattenedFixtureArgs = []flattenedFixture{
	{Name: "kdump-zlib-d1", Args: []string{"-c", "-d", "1"}},
	{Name: "kdump-lzo-d0", Args: []string{"-l", "-d", "0"}},
	{Name: "elf-d0", Args: []string{"-E", "-d", "0"}},
}

func sha256Flattened(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// generateFlattenedFixtures runs makedumpfile on a fresh 8+8-page ELF vmcore
// and writes the streams and the manifest.
func generateFlattenedFixtures(t *testing.T) {
	requireMakedumpfile(t, false)
	elf := flattenedTestELF(rand.New(rand.NewPCG(17, 1)), 8)
	require.NoError(t, os.MkdirAll(flattenedFixtureDir, 0o755))
	var man []flattenedFixture
	for _, fx := range flattenedFixtureArgs {
		stream := makedumpfileFlatten(t, elf, fx.Args...)
		ref := makedumpfileRearrange(t, stream)
		_, res := rearrangeBytes(t, stream, nil)
		fx.StreamSHA256, fx.RearrangedSize, fx.RearrangedSHA256 = sha256Flattened(stream), int64(len(ref)), sha256Flattened(ref)
		fx.Records = res.Records
		man = append(man, fx)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, err := zw.Write(stream)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		require.NoError(t, os.WriteFile(filepath.Join(flattenedFixtureDir, fx.Name+".flat.gz"), gz.Bytes(), 0o644))
	}
	js, err := json.MarshalIndent(man, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(flattenedFixtureDir, "manifest.json"), append(js, '\n'), 0o644))
}

// loadFlattenedFixtures returns the manifest and the streams by name.
func loadFlattenedFixtures(t testing.TB) ([]flattenedFixture, map[string][]byte) {
	t.Helper()
	js, err := os.ReadFile(filepath.Join(flattenedFixtureDir, "manifest.json"))
	require.NoError(t, err)
	var man []flattenedFixture
	require.NoError(t, json.Unmarshal(js, &man))
	streams := map[string][]byte{}
	for _, fx := range man {
		f, err := os.Open(filepath.Join(flattenedFixtureDir, fx.Name+".flat.gz"))
		require.NoError(t, err)
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		b, err := io.ReadAll(zr)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		require.Equal(t, fx.StreamSHA256, sha256Flattened(b), fx.Name)
		streams[fx.Name] = b
	}
	return man, streams
}

func TestFlattenedFixtures(t *testing.T) {
	if *updateFlattened {
		generateFlattenedFixtures(t)
	}
	man, streams := loadFlattenedFixtures(t)
	require.Len(t, man, len(flattenedFixtureArgs))
	for _, fx := range man {
		t.Run(fx.Name, func(t *testing.T) {
			stream := streams[fx.Name]
			got, res := rearrangeBytes(t, stream, nil)
			assert.False(t, res.Torn())
			assert.Equal(t, fx.Records, res.Records)
			assert.Equal(t, fx.RearrangedSize, int64(len(got)))
			assert.Equal(t, fx.RearrangedSHA256, sha256Flattened(got), "makedumpfile -R made other bytes")
			if strings.HasPrefix(fx.Name, "kdump") {
				assert.Equal(t, "KDUMP   ", string(got[:8]))
			} else {
				assert.Equal(t, "\x7fELF", string(got[:4]))
			}
		})
	}
}

// TestFlattenedWriterReplaysMakedumpfile replays the records of each
// makedumpfile stream through FlattenedWriter: the same positioned writes
// must give the very same stream, byte for byte.
func TestFlattenedWriterReplaysMakedumpfile(t *testing.T) {
	_, streams := loadFlattenedFixtures(t)
	for name, stream := range streams {
		t.Run(name, func(t *testing.T) {
			recs, stop := flattenedReaderWalk(t, stream, 0)
			require.False(t, stop.Torn())
			var buf bytes.Buffer
			fw := NewFlattenedWriter(&buf)
			for _, rec := range recs {
				require.LessOrEqual(t, rec.Size, int64(flattenedMaxRecord))
				_, err := fw.WriteAt(stream[rec.DataOff():rec.DataOff()+rec.Size], rec.Off)
				require.NoError(t, err)
			}
			require.NoError(t, fw.Close())
			assert.True(t, bytes.Equal(stream, buf.Bytes()), "stream differs from makedumpfile's")
		})
	}
}
