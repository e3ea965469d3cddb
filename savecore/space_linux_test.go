// Space checks need a filesystem whose free space the test controls: a
// small tmpfs mounted for the test (root only). File-based tests on the
// build machine's /tmp cannot make space run out.

package savecore

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

// smallFS mounts a tmpfs of the given size (e.g. "4m") on a new directory
// and unmounts it when the test ends.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	blockdevtest.RequireLoop(t)
	dir := t.TempDir()
	blockdevtest.Run(t, "mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir)
	t.Cleanup(func() {
		if out, err := blockdevtest.TryRun(t, "umount", dir); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

func TestCheckSpace(t *testing.T) {
	const name = "127.0.0.1-2009-06-29-16:00"
	tests := []struct {
		name    string
		need    int64
		script  string // body of diskdump-nospace; "" = absent
		ok      bool
		how     string // SpaceError.Script
		scriptN int    // times the script ran
	}{
		{name: "enough", need: 1 << 20, script: `echo run >> "$LOG"; exit 1`, ok: true},
		{name: "short, no script", need: 3 << 20, how: "absent"},
		{name: "short, script declines", need: 3 << 20, script: `echo run >> "$LOG"; exit 0`, how: "declined (exit 0)", scriptN: 1},
		{name: "short, script frees space", need: 3 << 20, script: `echo run >> "$LOG"; rm -f "$(dirname "$2")/ballast"; exit 1`, ok: true, scriptN: 1},
		{name: "short, script frees too little", need: 3 << 20, script: `echo run >> "$LOG"; exit 1`, how: "ran (exit 1)", scriptN: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := smallFS(t, "4m")
			// 2 MiB of ballast leaves about 2 MiB free.
			require.NoError(t, os.WriteFile(filepath.Join(root, "ballast"), make([]byte, 2<<20), 0o600))
			logf := filepath.Join(t.TempDir(), "log")
			t.Setenv("LOG", logf)
			if tc.script != "" {
				writeScript(t, root, NospaceScript, tc.script, 0o755)
			}
			d, err := prepareDir(root, name, false, discard())
			require.NoError(t, err)
			err = checkSpace(context.Background(), d, tc.need, "test", 0, discard())
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrNoSpace)
				var se *SpaceError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tc.need, se.Need)
				assert.Equal(t, tc.how, se.Script)
				assert.Equal(t, filepath.Join(root, name), se.Dir)
				free, ferr := blockdev.FreeSpace(root)
				require.NoError(t, ferr)
				assert.Equal(t, free, se.Free)
			}
			b, _ := os.ReadFile(logf)
			assert.Equal(t, tc.scriptN, len(b)/len("run\n"), "script runs")
		})
	}
}

// TestWriteDurableENOSPC fills a small filesystem during the write: the
// error comes back, and neither the file nor a temporary file remains.
func TestWriteDurableENOSPC(t *testing.T) {
	root := smallFS(t, "2m")
	d, err := prepareDir(root, "127.0.0.1-2009-06-29-16:00", false, discard())
	require.NoError(t, err)
	require.NoError(t, d.create())
	p := filepath.Join(d.path, VmcoreName)
	page := make([]byte, 4096)
	for i := range page {
		page[i] = byte(i)
	}
	err = writeDurable(context.Background(), p, func(w io.WriterAt) (int64, error) {
		return 0, nil
	}, nil)
	require.NoError(t, err, "an empty write fits")
	require.NoError(t, os.Remove(p))

	err = writeDurable(context.Background(), p, func(w io.WriterAt) (int64, error) {
		for off := int64(0); off < 8<<20; off += int64(len(page)) {
			if _, err := w.WriteAt(page, off); err != nil {
				return 0, err
			}
		}
		return 8 << 20, nil
	}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no space left")
	assert.Empty(t, listDir(t, d.path))
	d.removeIfEmpty()
	assert.NoDirExists(t, d.path)
}
