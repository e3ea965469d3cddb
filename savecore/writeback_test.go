package savecore

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWriteback drives the write-back window through ctxFile as the vmcore
// writers do: data front to back, table batches and headers below the
// window. The file must hold exactly what was written, the window must
// advance by chunks, and stop must be idempotent.
func TestWriteback(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "vmcore"))
	require.NoError(t, err)
	defer f.Close()
	wb := newWriteback(f)
	c := ctxFile{ctx: context.Background(), f: f, written: new(atomic.Int64), wb: wb}

	const table = 1 << 20
	want := make([]byte, table+3*writebackChunk+12345)
	for i := range want {
		want[i] = byte(i * 7)
	}
	piece := 1<<20 - 100 // unaligned, as the DISKDUMP data writes
	for off := table; off < len(want); off += piece {
		end := min(off+piece, len(want))
		_, err := c.WriteAt(want[off:end], int64(off))
		require.NoError(t, err)
		if off > table+writebackChunk && off < table+writebackChunk+piece {
			// A table batch, below the window now.
			_, err := c.WriteAt(want[:table/2], 0)
			require.NoError(t, err)
		}
	}
	_, err = c.WriteAt(want[table/2:table], table/2)
	require.NoError(t, err)
	_, err = c.WriteAt(want[:4096], 0) // the header, last
	require.NoError(t, err)
	wb.stop()
	wb.stop()
	assert.GreaterOrEqual(t, wb.started, int64(2*writebackChunk))
	assert.Positive(t, wb.waited)
	assert.Less(t, wb.waited, wb.started)
	got, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got))
}

// TestWriteDurableWriteError: a failing writer leaves no file and no
// write-back goroutine blocked.
func TestWriteDurableWriteError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, VmcoreName)
	err := writeDurable(context.Background(), path, func(w io.WriterAt) (int64, error) {
		return 0, os.ErrInvalid
	}, nil)
	assert.ErrorIs(t, err, os.ErrInvalid)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents)
}
