package cmdlog

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormat(t *testing.T) {
	when := time.Date(2009, 6, 29, 16, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		level slog.Level
		msg   string
		args  []any
		want  string
	}{
		{name: "plain", msg: "interrupted", want: "savecore: interrupted\n"},
		{name: "device prefix", msg: "no dump", args: []any{"device", "demo/part.img"},
			want: "savecore: demo/part.img: no dump\n"},
		{name: "template", msg: "dump of {host} from {crashed}", args: []any{"device", "/dev/sdb1", "host", "node1", "crashed", when},
			want: "savecore: /dev/sdb1: dump of node1 from 2009-06-29 16:00:00 UTC\n"},
		{name: "device in the sentence", msg: "{device} holds a dump", args: []any{"device", "/dev/sdb1"},
			want: "savecore: /dev/sdb1 holds a dump\n"},
		{name: "unnamed attributes", msg: "found dump", args: []any{"device", "d", "pages_lost", 3, "swap", true},
			want: "savecore: d: found dump (pages lost: 3, swap: yes)\n"},
		{name: "error last", msg: "cannot read the dump", args: []any{"device", "d", "size", "4.0MiB", "err", errors.New("savecore: d: bad header")},
			want: "savecore: d: cannot read the dump (size: 4.0MiB): bad header\n"},
		{name: "wrapped error", msg: "dump not saved", args: []any{"device", "d", "err", fmt.Errorf("savecore: d holds vmcore: %w", errors.New("savecore: dump directory already exists"))},
			want: "savecore: d: dump not saved: d holds vmcore: dump directory already exists\n"},
		{name: "error in the sentence", msg: "{err}; run dumpformat", args: []any{"err", errors.New("boom")},
			want: "savecore: boom; run dumpformat\n"},
		{name: "path error about the device", msg: "cannot open the device", args: []any{"device", "/dev/x", "err", &os.PathError{Op: "open", Path: "/dev/x", Err: fs.ErrNotExist}},
			want: "savecore: /dev/x: cannot open the device: file does not exist\n"},
		{name: "other path error about the device", msg: "cannot size the device", args: []any{"device", "/dev/x", "err", &os.PathError{Op: "ioctl BLKGETSIZE64", Path: "/dev/x", Err: fs.ErrPermission}},
			want: "savecore: /dev/x: cannot size the device: ioctl BLKGETSIZE64: permission denied\n"},
		{name: "path error about another file", msg: "cannot open", args: []any{"device", "/dev/x", "err", &os.PathError{Op: "open", Path: "/etc/y", Err: fs.ErrNotExist}},
			want: "savecore: /dev/x: cannot open: open /etc/y: file does not exist\n"},
		{name: "list and duration", msg: "copies on {devices}, took {took}", args: []any{"devices", []string{"a", "b"}, "took", 1234567 * time.Microsecond},
			want: "savecore: copies on a, b, took 1.235s\n"},
		{name: "unknown brace", msg: "keep {this}", want: "savecore: keep {this}\n"},
		{name: "multi-line output", msg: "script said {output}", args: []any{"output", "one\ntwo\n"},
			want: "savecore: script said one | two\n"},
		{name: "control characters", msg: "host {host}", args: []any{"host", "a\x1b[2Jb\rc"},
			want: "savecore: host a?[2Jb?c\n"},
		{name: "group", msg: "g", args: []any{slog.Group("dump", "pages", 2)},
			want: "savecore: g (dump.pages: 2)\n"},
		{name: "stringer", msg: "mode {mode}", args: []any{"mode", os.FileMode(0o644)},
			want: "savecore: mode -rw-r--r--\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(New(&buf, Options{Prog: "savecore", Level: slog.LevelDebug}))
			log.Log(t.Context(), tc.level, tc.msg, tc.args...)
			assert.Equal(t, tc.want, buf.String())
		})
	}
}

func TestJournalPriorities(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelError, "<3>"},
		{slog.LevelWarn, "<4>"},
		{LevelNotice, "<5>"},
		{slog.LevelInfo, "<6>"},
		{slog.LevelDebug, "<7>"},
	}
	for _, tc := range tests {
		t.Run(tc.level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(New(&buf, Options{Prog: "dumpformat", Level: slog.LevelDebug, Journal: true}))
			log.Log(t.Context(), tc.level, "event", "device", "/dev/sdb1")
			assert.Equal(t, tc.want+"dumpformat: /dev/sdb1: event\n", buf.String())
		})
	}
}

func TestLevels(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Leveler
		want  string
	}{
		{name: "default info", level: nil, want: "p: info\np: warn\np: error\n"},
		{name: "verbose", level: slog.LevelDebug, want: "p: debug\np: info\np: warn\np: error\n"},
		{name: "quiet", level: slog.LevelError, want: "p: error\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(New(&buf, Options{Prog: "p", Level: tc.level}))
			log.Debug("debug")
			log.Info("info")
			log.Warn("warn")
			log.Error("error")
			assert.Equal(t, tc.want, buf.String())
		})
	}
}

func TestWithAttrsAndGroup(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(New(&buf, Options{Prog: "p"})).With("device", "/dev/sdc1")
	log.Info("saved {path}", "path", "/var/crash/x/vmcore")
	log.WithGroup("g").Info("grouped", "k", "v")
	assert.Equal(t, "p: /dev/sdc1: saved /var/crash/x/vmcore\np: /dev/sdc1: grouped (g.k: v)\n", buf.String())
}

func TestIsJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	tests := []struct {
		name string
		env  string
		want bool
	}{
		{name: "unset", env: "", want: false},
		{name: "this stream", env: fmt.Sprintf("%d:%d", st.Dev, st.Ino), want: true},
		{name: "another stream", env: fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), want: false},
		{name: "garbage", env: "journal", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tc.env)
			assert.Equal(t, tc.want, IsJournal(f))
		})
	}
	assert.False(t, IsJournal(nil))
}
