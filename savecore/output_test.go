package savecore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestIsStaleTemp(t *testing.T) {
	for name, want := range map[string]bool{
		".vmcore1234567890": true, ".vmcore0": true, ".vmcore": false, "vmcore": false,
		".vmcore12x": false, ".vmcore-incomplete": false, "..vmcore1": false, ".log123": false,
	} {
		assert.Equal(t, want, isStaleTemp(name), name)
	}
}

func TestCheckRoot(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, p string)
		unsafe bool
		fail   bool
	}{
		{name: "missing is created", setup: func(t *testing.T, p string) {}},
		{name: "0700", setup: func(t *testing.T, p string) { require.NoError(t, os.Mkdir(p, 0o700)) }},
		{name: "0755", setup: func(t *testing.T, p string) { require.NoError(t, os.Mkdir(p, 0o755)) }},
		{name: "world-writable sticky", setup: func(t *testing.T, p string) {
			require.NoError(t, os.Mkdir(p, 0o700))
			require.NoError(t, os.Chmod(p, 0o777|os.ModeSticky))
		}},
		{name: "world-writable", unsafe: true, setup: func(t *testing.T, p string) {
			require.NoError(t, os.Mkdir(p, 0o700))
			require.NoError(t, os.Chmod(p, 0o777))
		}},
		{name: "group-writable", unsafe: true, setup: func(t *testing.T, p string) {
			require.NoError(t, os.Mkdir(p, 0o700))
			require.NoError(t, os.Chmod(p, 0o770))
		}},
		{name: "a file", fail: true, setup: func(t *testing.T, p string) { require.NoError(t, os.WriteFile(p, nil, 0o600)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "crash")
			tc.setup(t, p)
			err := checkRoot(p)
			switch {
			case tc.unsafe:
				require.ErrorIs(t, err, ErrUnsafe)
				var ue *UnsafeError
				require.ErrorAs(t, err, &ue)
				assert.Equal(t, p, ue.Path)
			case tc.fail:
				require.Error(t, err)
			default:
				require.NoError(t, err)
				fi, err := os.Stat(p)
				require.NoError(t, err)
				assert.True(t, fi.IsDir())
			}
		})
	}
	t.Run("created with 0700", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "a", "crash")
		require.NoError(t, checkRoot(p))
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm()&^umaskBits())
	})
}

// umaskBits returns the bits the process umask clears, read without
// changing it for good.
func umaskBits() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

func TestPrepareDir(t *testing.T) {
	const name = "127.0.0.1-2009-06-29-16:00"
	tests := []struct {
		name    string
		files   []string // created in the dump directory; nil: no directory
		mkdir   bool
		force   bool
		exists  bool     // ErrDirExists expected
		left    []string // files left afterwards
		existed bool
	}{
		{name: "absent"},
		{name: "empty", mkdir: true, existed: true},
		{name: "stale temps only", mkdir: true, files: []string{".vmcore123", ".vmcore9"}, existed: true},
		{name: "vmcore", mkdir: true, files: []string{"vmcore"}, exists: true, left: []string{"vmcore"}},
		{name: "vmcore and stale temp", mkdir: true, files: []string{".vmcore1", "vmcore"}, exists: true, left: []string{".vmcore1", "vmcore"}},
		{name: "other file", mkdir: true, files: []string{"notes"}, exists: true, left: []string{"notes"}},
		{name: "force", mkdir: true, force: true, files: []string{".vmcore1", "vmcore"}, left: []string{"vmcore"}, existed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			p := filepath.Join(root, name)
			if tc.mkdir {
				require.NoError(t, os.Mkdir(p, 0o700))
				for _, f := range tc.files {
					require.NoError(t, os.WriteFile(filepath.Join(p, f), []byte("x"), 0o600))
				}
			}
			d, err := prepareDir(root, name, tc.force, discard())
			if tc.exists {
				require.ErrorIs(t, err, ErrDirExists)
				assert.Contains(t, err.Error(), "-f")
			} else {
				require.NoError(t, err)
				assert.Equal(t, p, d.path)
				assert.Equal(t, tc.existed, d.existed)
			}
			if tc.mkdir {
				assert.Equal(t, tc.left, listDir(t, p))
			}
		})
	}
	t.Run("not a directory", func(t *testing.T) {
		root := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(root, name), nil, 0o600))
		_, err := prepareDir(root, name, true, discard())
		require.ErrorIs(t, err, ErrDirExists)
	})
	t.Run("symlink refused even with force", func(t *testing.T) {
		root, elsewhere := t.TempDir(), t.TempDir()
		require.NoError(t, os.Symlink(elsewhere, filepath.Join(root, name)))
		_, err := prepareDir(root, name, true, discard())
		require.ErrorIs(t, err, ErrDirExists)
	})
	t.Run("create and remove if empty", func(t *testing.T) {
		root := t.TempDir()
		d, err := prepareDir(root, name, false, discard())
		require.NoError(t, err)
		require.NoError(t, d.create())
		fi, err := os.Stat(d.path)
		require.NoError(t, err)
		assert.Equal(t, DirMode, fi.Mode().Perm())
		require.NoError(t, os.WriteFile(filepath.Join(d.path, "x"), nil, 0o600))
		d.removeIfEmpty()
		assert.DirExists(t, d.path, "not empty: kept")
		require.NoError(t, os.Remove(filepath.Join(d.path, "x")))
		d.removeIfEmpty()
		assert.NoDirExists(t, d.path)
	})
	t.Run("existing directory never removed", func(t *testing.T) {
		root := t.TempDir()
		require.NoError(t, os.Mkdir(filepath.Join(root, name), 0o700))
		d, err := prepareDir(root, name, false, discard())
		require.NoError(t, err)
		require.NoError(t, d.create())
		d.removeIfEmpty()
		assert.DirExists(t, d.path)
	})
}

func TestWriteDurable(t *testing.T) {
	writeSparse := func(w io.WriterAt) (int64, error) {
		if _, err := w.WriteAt([]byte("head"), 0); err != nil {
			return 0, err
		}
		if _, err := w.WriteAt([]byte("mid"), 1<<20); err != nil {
			return 0, err
		}
		return 4 << 20, nil // ends in a hole
	}
	t.Run("sparse file, mode, no temp left", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, VmcoreName)
		require.NoError(t, writeDurable(context.Background(), p, writeSparse, nil))
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, int64(4<<20), fi.Size())
		assert.Equal(t, FileMode, fi.Mode().Perm())
		st := fi.Sys().(*syscall.Stat_t)
		assert.Less(t, st.Blocks*512, int64(1<<20), "holes stay holes")
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Equal(t, []byte("head"), b[:4])
		assert.Equal(t, []byte("mid"), b[1<<20:1<<20+3])
		assert.Equal(t, []string{VmcoreName}, listDir(t, dir))
	})
	t.Run("replaces atomically", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, VmcoreName)
		require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
		require.NoError(t, writeDurable(context.Background(), p, writeSparse, nil))
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, int64(4<<20), fi.Size())
		assert.Equal(t, FileMode, fi.Mode().Perm())
	})
	failing := errors.New("disk on fire")
	tests := []struct {
		name  string
		ctx   func() context.Context
		write func(w io.WriterAt) (int64, error)
		want  error
	}{
		{name: "write error", ctx: context.Background, want: failing, write: func(w io.WriterAt) (int64, error) {
			if _, err := w.WriteAt(bytes.Repeat([]byte{1}, 8192), 0); err != nil {
				return 0, err
			}
			return 0, failing
		}},
		{name: "cancelled before", want: context.Canceled, ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, write: writeSparse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, VmcoreName)
			require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))
			err := writeDurable(tc.ctx(), p, tc.write, nil)
			require.ErrorIs(t, err, tc.want)
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			assert.Equal(t, "old", string(b), "the old file is untouched")
			assert.Equal(t, []string{VmcoreName}, listDir(t, dir), "no temporary file left")
		})
	}
	t.Run("cancelled during", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, VmcoreName)
		ctx, cancel := context.WithCancel(context.Background())
		err := writeDurable(ctx, p, func(w io.WriterAt) (int64, error) {
			for i := int64(0); ; i++ {
				if i == 3 {
					cancel()
				}
				if _, err := w.WriteAt([]byte("page"), i*4096); err != nil {
					return 0, err
				}
			}
		}, nil)
		require.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, listDir(t, dir))
	})
	t.Run("missing directory", func(t *testing.T) {
		err := writeDurable(context.Background(), filepath.Join(t.TempDir(), "nope", VmcoreName), writeSparse, nil)
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}
