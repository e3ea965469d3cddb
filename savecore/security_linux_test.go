// Security of what savecore writes: a crash dump holds all of the
// machine's memory (keys, passwords), so the dump directory is 0700 and
// the vmcore 0600 whatever the umask, savecore never writes into a dump
// directory that someone else could have planted or can write to, and
// scripts others could have changed are not run. What file-based tests
// without root cannot cover: files owned by another user (chown) and a
// file system that is really full (tmpfs).

package savecore

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

func TestSecurityModesWhateverTheUmask(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, compress: true}
	for _, umask := range []int{0, 0o022, 0o077} {
		t.Run(filepath.Base(os.FileMode(umask).String()), func(t *testing.T) {
			dev, m, wr := r.memImage(t)
			opt, _ := testOptions(t)
			old := syscall.Umask(umask)
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			syscall.Umask(old)
			res := rep.Results[0]
			require.NoError(t, res.Err)
			checkVmcore(t, res.Path, m, wr, false)
			fi, err := os.Stat(res.Path)
			require.NoError(t, err)
			assert.Equal(t, FileMode, fi.Mode().Perm(), "vmcore mode")
			di, err := os.Stat(filepath.Dir(res.Path))
			require.NoError(t, err)
			assert.Equal(t, DirMode, di.Mode().Perm(), "dump directory mode")
		})
	}
}

// TestSecurityPlantedDumpDirectory: in a dump root others may create
// entries in (mode 1777), someone creates the dump directory of the next
// crash before savecore runs, or an existing one is writable by others:
// savecore refuses to write into it, even with -f, and keeps the dump.
func TestSecurityPlantedDumpDirectory(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64}
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string)
		unsafe bool
	}{
		{name: "ours, 0755", setup: func(t *testing.T, dir string) {}},
		{name: "ours, 0777", unsafe: true, setup: func(t *testing.T, dir string) { require.NoError(t, os.Chmod(dir, 0o777)) }},
		{name: "ours, 0770", unsafe: true, setup: func(t *testing.T, dir string) { require.NoError(t, os.Chmod(dir, 0o770)) }},
		{name: "another user's, 0700", unsafe: true, setup: func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("chown to another user needs root")
			}
			require.NoError(t, os.Chown(dir, 65534, 65534))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, m, wr := r.memImage(t)
			opt, _ := testOptions(t)
			require.NoError(t, os.Chmod(opt.Dir, 0o777|os.ModeSticky))
			dir := filepath.Join(opt.Dir, crashDir)
			require.NoError(t, os.Mkdir(dir, 0o755))
			tc.setup(t, dir)
			opt.Force, opt.Delete = true, true
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			res := rep.Results[0]
			if !tc.unsafe {
				require.NoError(t, res.Err)
				checkVmcore(t, res.Path, m, wr, false)
				return
			}
			require.ErrorIs(t, res.Err, ErrUnsafe)
			var ue *UnsafeError
			require.ErrorAs(t, res.Err, &ue)
			assert.Equal(t, dir, ue.Path)
			ents, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, ents, "nothing written into the directory")
			assert.False(t, res.Erased)
			_, err = diskdump.OpenPartition(dev, dev.Size())
			assert.NoError(t, err, "dump kept")
		})
	}
}

// TestSecurityUntrustedScripts: diskdump-success and diskdump-nospace run
// as root with the dump directory as argument; one that others could have
// changed (writable by group or others, or owned by another user) is not
// run, and the log says so and why.
func TestSecurityUntrustedScripts(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, script string)
	}{
		{"group-writable", func(t *testing.T, s string) { require.NoError(t, os.Chmod(s, 0o775)) }},
		{"world-writable", func(t *testing.T, s string) { require.NoError(t, os.Chmod(s, 0o757)) }},
		{"scripts directory world-writable", func(t *testing.T, s string) { require.NoError(t, os.Chmod(filepath.Dir(s), 0o777)) }},
		{"owned by another user", func(t *testing.T, s string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			require.NoError(t, os.Chown(s, 65534, 65534))
		}},
	}
	r := rehearsal{arch: diskdump.ArchX86_64}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, _, _ := r.memImage(t)
			opt, logs := testOptions(t)
			ran := filepath.Join(t.TempDir(), "ran")
			t.Setenv("RAN", ran)
			script := writeScript(t, opt.Dir, SuccessScript, `touch "$RAN"`, 0o755)
			tc.setup(t, script)
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			require.NoError(t, rep.Results[0].Err, "an untrusted script does not fail the save")
			assert.NoFileExists(t, ran, "the script must not run")
			assert.Contains(t, logs.String(), "not run: ")
			assert.Contains(t, logs.String(), script)
		})
	}
	t.Run("nospace script untrusted", func(t *testing.T) {
		dev, _, _ := r.memImage(t)
		root := smallFS(t, "1m")
		opt, logs := testOptions(t)
		opt.Dir = root
		ran := filepath.Join(t.TempDir(), "ran")
		t.Setenv("RAN", ran)
		script := writeScript(t, root, NospaceScript, `touch "$RAN"; exit 1`, 0o757)
		rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
		res := rep.Results[0]
		require.ErrorIs(t, res.Err, ErrNoSpace)
		var se *SpaceError
		require.ErrorAs(t, res.Err, &se)
		assert.Equal(t, "not trusted", se.Script)
		assert.NoFileExists(t, ran)
		assert.Contains(t, logs.String(), script)
	})
}
