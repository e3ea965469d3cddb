package savecore

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/cmdlog"
)

// consoleLog renders records as the savecore command does.
func consoleLog() (*bytes.Buffer, *slog.Logger) {
	var buf bytes.Buffer
	return &buf, slog.New(cmdlog.New(&buf, cmdlog.Options{Prog: "savecore", Level: slog.LevelDebug}))
}

// linesWith returns the lines of out that contain s.
func linesWith(out, s string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			ls = append(ls, l)
		}
	}
	return ls
}

// TestOpsMessages checks the exact lines of the messages of this package's
// operations files (minfree, max-dumps, info) as the command prints them.
func TestOpsMessages(t *testing.T) {
	t.Run("minfree", func(t *testing.T) {
		root := t.TempDir()
		buf, log := consoleLog()
		o := Options{Dir: root, MinFree: 3 << 20}
		o.reserve(log)
		require.NoError(t, os.WriteFile(filepath.Join(root, MinFreeFile), []byte("2048\n"), 0o644))
		o.MinFree = 0
		o.reserve(log)
		require.NoError(t, os.WriteFile(filepath.Join(root, MinFreeFile), []byte("lots\n"), 0o644))
		o.reserve(log)
		f := filepath.Join(root, MinFreeFile)
		assert.Equal(t, "savecore: keeping 3.0MiB free on the dump filesystem (MINFREE)\n"+
			"savecore: keeping 2.0MiB free on the dump filesystem ("+f+")\n"+
			"savecore: ignoring the minfree file ("+f+": \"lots\" is not a number of KiB): no space is kept free; write a number of KiB into it\n",
			buf.String())
	})
	t.Run("max-dumps", func(t *testing.T) {
		root := t.TempDir()
		old := mkDump(t, root, "127.0.0.1-2001-01-01-00:00", "vmcore")
		foreign := mkDump(t, root, "127.0.0.1-2002-01-01-00:00", "vmcore", "notes")
		saved := mkDump(t, root, "127.0.0.1-2003-01-01-00:00", "vmcore", "info")
		buf, log := consoleLog()
		rep := &Report{Results: []Result{{Outcome: OutcomeSaved, Path: filepath.Join(saved, VmcoreName)}}}
		pruneAfterSave(rep, Options{Dir: root, MaxDumps: 1, Location: time.UTC}, log)
		assert.Equal(t, "savecore: "+foreign+" is not counted for max-dumps: it holds notes, which savecore does not write\n"+
			"savecore: removed the old dump directory "+old+" to keep 1 (max-dumps)\n", buf.String())

		buf.Reset()
		gone := filepath.Join(root, "gone")
		pruneAfterSave(rep, Options{Dir: gone, MaxDumps: 1}, log)
		assert.Equal(t, "savecore: old dump directories not removed: open "+gone+": no such file or directory; remove them by hand, or check the permissions of "+gone+"\n",
			buf.String())
	})
	t.Run("info not written", func(t *testing.T) {
		dev, _, _ := rehearsal{arch: diskdump.ArchX86_64}.memImage(t)
		opt, _ := testOptions(t)
		buf, log := consoleLog()
		opt.Logger, opt.Force = log, true
		dir := filepath.Join(opt.Dir, crashDir)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, InfoName), 0o700))
		rep := Save(context.Background(), []Input{{Name: "/dev/sdb1", Dev: dev}}, opt)
		require.NoError(t, rep.Results[0].Err)
		ls := linesWith(buf.String(), "info file")
		require.Len(t, ls, 1, buf.String())
		assert.Regexp(t, `^savecore: /dev/sdb1: the vmcore is saved, but its info file could not be written: rename `+
			`[^ ]+ `+regexp.QuoteMeta(filepath.Join(dir, InfoName))+`: `, ls[0])
	})
}
