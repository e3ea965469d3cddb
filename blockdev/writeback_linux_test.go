package blockdev

// File-based only: sync_file_range on a regular file is what savecore uses
// it for; there is nothing a loop device adds.

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(path)
	require.NoError(t, err)
	data := bytes.Repeat([]byte{0xa5}, 1<<20)
	_, err = f.WriteAt(data, 0)
	require.NoError(t, err)
	require.NoError(t, StartWriteback(f, 0, int64(len(data))))
	require.NoError(t, AwaitWriteback(f, 0, int64(len(data))))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, data, got, "dropping written pages from the cache keeps the data")

	require.NoError(t, f.Close())
	for name, fn := range map[string]func(*os.File, int64, int64) error{"start": StartWriteback, "await": AwaitWriteback} {
		err := fn(f, 0, 4096)
		var pe *os.PathError
		require.True(t, errors.As(err, &pe), "%s on a closed file: %v", name, err)
		assert.Equal(t, "sync_file_range", pe.Op)
		assert.Equal(t, path, pe.Path)
	}
}
