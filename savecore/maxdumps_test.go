package savecore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

func TestParseDirName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
		t    time.Time
		n    int
	}{
		{name: "127.0.0.1-2009-06-29-16:00", ok: true, t: time.Date(2009, 6, 29, 16, 0, 0, 0, time.UTC)},
		{name: "127.0.0.1-2009-06-29-16:00.2", ok: true, t: time.Date(2009, 6, 29, 16, 0, 0, 0, time.UTC), n: 2},
		{name: "127.0.0.1-2009-13-01-10:00"},
		{name: "127.0.0.1-2009-6-29-16:00"},
		{name: "127.0.0.1-2009-06-29-16:00.x"},
		{name: "127.0.0.1-2009-06-29-16:00."},
		{name: "127.0.0.1-2009-06-29-16:00-old"},
		{name: "127.0.0.1-2009-06-29-16:00.1.1"},
		{name: "10.0.0.1-2009-06-29-16:00"},
		{name: "127.0.0.1-"},
		{name: "vmcore"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n, ok := ParseDirName(tc.name, time.UTC)
			assert.Equal(t, tc.ok, ok)
			if tc.ok {
				assert.True(t, tc.t.Equal(got), got)
				assert.Equal(t, tc.n, n)
			}
		})
	}
}

// mkDump makes the directory root/name holding files, and returns it.
func mkDump(t *testing.T, root, name string, files ...string) string {
	t.Helper()
	dir := filepath.Join(root, name)
	require.NoError(t, os.Mkdir(dir, 0o700))
	for _, f := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600))
	}
	return dir
}

// TestPruneDumps keeps the newest dumps savecore wrote and leaves alone
// everything it did not: foreign directories and files, names that only
// look like dumps, files and directories owned by others, symlinks.
func TestPruneDumps(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv(blockdevtest.RequireEnv) == "1" {
			t.Fatal("chown to another user needs root")
		}
		t.Skip("chown to another user needs root")
	}
	root := t.TempDir()
	oldest := mkDump(t, root, "127.0.0.1-2008-01-01-00:00", "vmcore", "info")
	old2 := mkDump(t, root, "127.0.0.1-2008-01-01-00:00.1", "vmcore", "vmcore-dmesg.txt", "dump-id", ".vmcore123")
	mid := mkDump(t, root, "127.0.0.1-2008-06-01-12:30", "vmcore")
	newer := mkDump(t, root, "127.0.0.1-2009-01-01-00:00", "vmcore", "info")
	// Just written, yet with the oldest name: never removed.
	justWritten := mkDump(t, root, "127.0.0.1-2001-01-01-00:00", "vmcore", "info")
	keepers := []string{
		mkDump(t, root, "127.0.0.1-2000-01-01-00:00", "vmcore", "notes.txt"),          // a file savecore does not write
		mkDump(t, root, "127.0.0.1-2000-01-02-00:00", "vmcore", "info", "vmcore.bak"), // a copy someone made
		mkDump(t, root, "127.0.0.1-2000-13-01-00:00", "vmcore"),                       // only looks like a dump
		mkDump(t, root, "127.0.0.1-2000-01-03-00:00-old", "vmcore"),
		mkDump(t, root, "crash-archive", "vmcore"),
	}
	// A dump directory owned by another user, and one holding a file of
	// another user.
	foreign := mkDump(t, root, "127.0.0.1-2000-01-04-00:00", "vmcore")
	require.NoError(t, os.Chown(foreign, 1000, 1000))
	foreignFile := mkDump(t, root, "127.0.0.1-2000-01-05-00:00", "vmcore", "info")
	require.NoError(t, os.Chown(filepath.Join(foreignFile, "info"), 1000, 1000))
	// A subdirectory, and a symlink with a dump's name.
	sub := mkDump(t, root, "127.0.0.1-2000-01-06-00:00", "vmcore")
	require.NoError(t, os.Mkdir(filepath.Join(sub, "info"), 0o700))
	link := filepath.Join(root, "127.0.0.1-2000-01-07-00:00")
	require.NoError(t, os.Symlink(newer, link))
	keepers = append(keepers, foreign, foreignFile, sub, link)

	_, log := newTestLog(t)
	removed, err := PruneDumps(root, 3, []string{justWritten}, time.UTC, log)
	require.NoError(t, err)
	// Five dumps count (four old, the one just written): the two oldest go.
	assert.Equal(t, []string{oldest, old2}, removed, "oldest first, .N after the bare name")
	for _, d := range removed {
		assert.NoDirExists(t, d)
	}
	for _, d := range append(keepers, mid, newer, justWritten) {
		_, err := os.Lstat(d)
		assert.NoError(t, err, "%s kept", d)
	}
	assert.FileExists(t, filepath.Join(root, "127.0.0.1-2000-01-03-00:00-old", "vmcore"))
	assert.FileExists(t, filepath.Join(root, "127.0.0.1-2000-01-02-00:00", "vmcore.bak"))

	// Nothing more to do: the just-written one, mid and newer make 3.
	removed, err = PruneDumps(root, 3, []string{justWritten}, time.UTC, log)
	require.NoError(t, err)
	assert.Empty(t, removed)
	_, err = PruneDumps(root, 0, nil, time.UTC, log)
	assert.Error(t, err)
}

// TestSaveMaxDumps: a save with MaxDumps 2 removes the oldest of three
// earlier dumps (the new one counts), logs it, and keeps the new one.
func TestSaveMaxDumps(t *testing.T) {
	dev, _, _ := rehearsal{arch: diskdump.ArchX86_64}.memImage(t)
	opt, logs := testOptions(t)
	opt.MaxDumps = 2
	a := mkDump(t, opt.Dir, "127.0.0.1-2008-01-01-00:00", "vmcore", "info")
	b := mkDump(t, opt.Dir, "127.0.0.1-2010-01-01-00:00", "vmcore", "info")
	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	require.NoError(t, rep.Results[0].Err)
	assert.NoDirExists(t, a)
	assert.DirExists(t, b, "newer than the crash just saved")
	assert.FileExists(t, rep.Results[0].Path)
	assert.Contains(t, logs.String(), `msg="removed the old dump directory {dir} to keep {keep} (max-dumps)" dir=`+a+" keep=2")

	// A run that saves nothing removes nothing.
	opt.MaxDumps = 1
	rep = Save(context.Background(), nil, opt)
	assert.Empty(t, rep.Results)
	assert.DirExists(t, b)
}
