package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/savecore"
)

// keyValue finds slog text-handler output ("key=value") in a line.
var keyValue = regexp.MustCompile(`(^|\s)[a-z_]+=`)

// checkLines checks the shape of every message line: "savecore: ", one
// event per line, no key=value, each device named at most once.
func checkLines(t *testing.T, stderr string, devs ...string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if line == "" {
			continue
		}
		line = regexp.MustCompile(`^<[3-7]>`).ReplaceAllString(line, "")
		assert.True(t, strings.HasPrefix(line, "savecore: "), "line %q", line)
		assert.False(t, keyValue.MatchString(line), "key=value in %q", line)
		for _, d := range devs {
			assert.LessOrEqual(t, strings.Count(line, d), 1, "%s named twice in %q", d, line)
		}
	}
}

// TestMessages checks the exact lines of the command's own messages.
func TestMessages(t *testing.T) {
	img := dumpImage(t, 4<<20, false, crashTime)
	empty := dumpImage(t, 4<<20, false, time.Time{})
	missing := filepath.Join(t.TempDir(), "sdz1")
	noDevConf := filepath.Join(t.TempDir(), "diskdump")
	require.NoError(t, os.WriteFile(noDevConf, []byte("DUMPDIR=/nonexistent\n"), 0o644))
	badConf := filepath.Join(t.TempDir(), "diskdump")
	require.NoError(t, os.WriteFile(badConf, []byte("DEVICE=/dev/sdb1\nMAXDUMPS=lots\n"), 0o644))
	tests := []struct {
		name string
		args []string
		code int
		want string // the whole of stderr
	}{
		{name: "configuration missing", args: []string{"-C", "/nonexistent/diskdump"}, code: exitFail,
			want: "savecore: cannot read the configuration: open /nonexistent/diskdump: no such file or directory\n"},
		{name: "configuration wrong", args: []string{"-C", badConf}, code: exitFail,
			want: "savecore: cannot read the configuration: " + badConf + ":2: MAXDUMPS=\"lots\": want the number of dump directories to keep (0: all)\n"},
		{name: "no DEVICE", args: []string{"-C", noDevConf}, code: exitOK,
			want: "savecore: no DEVICE in " + noDevConf + ": nothing to do; list the dump partitions there, or name them on the command line\n"},
		{name: "named device without a dump", args: []string{"-d", t.TempDir(), empty}, code: exitFail,
			want: "savecore: " + empty + ": no dump on the device\n"},
		{name: "quiet keeps the error", args: []string{"-q", "-d", t.TempDir(), empty}, code: exitFail,
			want: "savecore: " + empty + ": no dump on the device\n"},
		// The library's wording (savecore/save.go): only the shape is the
		// command's.
		{name: "missing device", args: []string{"-q", "-d", t.TempDir(), missing}, code: exitFail,
			want: `^savecore: ` + regexp.QuoteMeta(missing) + `: cannot open [^\n]*: no such file or directory[^\n]*\n$`},
		{name: "quiet save", args: []string{"-q", "-d", t.TempDir(), img}, code: exitOK, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tc.args...)
			assert.Equal(t, tc.code, code)
			if strings.HasPrefix(tc.want, "^") {
				assert.Regexp(t, tc.want, stderr)
				return
			}
			assert.Equal(t, tc.want, stderr)
		})
	}
}

// TestMessageShapes runs saves that go through many message paths and
// checks every line's shape.
func TestMessageShapes(t *testing.T) {
	img := dumpImage(t, 4<<20, true, crashTime)
	cut := dumpImageCut(t, 4<<20, false, crashTime, 400)
	full := dumpImage(t, 4<<20, false, crashTime)
	empty := dumpImage(t, 4<<20, false, time.Time{})
	root := t.TempDir()
	_, _, stderr := runCmd(t, "-v", "-D", "--verify", "-d", root, img, empty)
	checkLines(t, stderr, img, empty)
	_, _, stderr = runCmd(t, "-v", "-d", root, "--max-dumps", "1", cut, full)
	checkLines(t, stderr, cut, full)
	assert.Contains(t, stderr, ": not saved again")

	var errOut bytes.Buffer
	code := report(canceled(), &savecore.Report{}, false, &bytes.Buffer{}, newLogger(&errOut, &flags{}, false))
	assert.Equal(t, exitFail, code)
	assert.Equal(t, "savecore: interrupted: the dumps not saved yet stay on their partitions; run savecore again\n", errOut.String())
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestJournal: with stderr on the journal stream (JOURNAL_STREAM names its
// device and inode), each line starts with its syslog priority, so that
// journalctl -p err finds the failures.
func TestJournal(t *testing.T) {
	img := dumpImage(t, 4<<20, false, crashTime)
	empty := dumpImage(t, 4<<20, false, time.Time{})
	f, err := os.Create(filepath.Join(t.TempDir(), "journal"))
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	t.Setenv("TZ", "UTC")
	root := t.TempDir()
	var stdout bytes.Buffer
	code := run([]string{"-d", root, empty, img}, &stdout, f)
	assert.Equal(t, exitFail, code, "a named device without a dump")
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	t.Logf("journal:\n%s", b)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.NotEmpty(t, lines)
	assert.Equal(t, "<3>savecore: "+empty+": no dump on the device", lines[0])
	for _, l := range lines {
		assert.Regexp(t, `^<[3-7]>savecore: `, l)
	}
	assert.Contains(t, string(b), "<6>savecore: "+img+": found ")
	checkLines(t, string(b), img, empty)

	// Not the journal: the variable names another stream.
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1))
	g, err := os.Create(filepath.Join(t.TempDir(), "console"))
	require.NoError(t, err)
	defer g.Close()
	run([]string{"-d", t.TempDir(), empty}, &stdout, g)
	b, err = os.ReadFile(g.Name())
	require.NoError(t, err)
	assert.Equal(t, "savecore: "+empty+": no dump on the device\n", string(b))
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

// TestCheck: --check reports waiting dumps on stdout, writes nothing, and
// exits 0 only when a dump waits.
func TestCheck(t *testing.T) {
	img := dumpImage(t, 4<<20, true, crashTime)
	empty := dumpImage(t, 4<<20, false, time.Time{})
	missing := filepath.Join(t.TempDir(), "sdz1")
	dir := t.TempDir() // a directory is no partition
	before := sum(t, img)
	line := img + ": dump waiting: crashed 2009-06-29 16:00:00 UTC, host dumpkit.example.com, release 2.6.9-89.ELsmp, " +
		"machine x86_64, status COMPLETED|COMPRESSED, "
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // prefix of stdout
		stderr string
	}{
		{name: "dump", args: []string{img}, code: exitOK, stdout: line},
		{name: "empty", args: []string{empty}, code: exitFail, stderr: "savecore: " + empty + ": no dump\n"},
		{name: "missing", args: []string{missing}, code: exitFail,
			stderr: "savecore: " + missing + ": cannot read the device; check the name and the permissions: no such file or directory\n"},
		{name: "not a partition", args: []string{dir}, code: exitFail, stderr: "savecore: " + dir + ": cannot read the device; check the name and the permissions: "},
		{name: "empty, missing, dump", args: []string{"-q", empty, missing, img}, code: exitOK, stdout: line,
			stderr: "savecore: " + missing + ": cannot read the device; check the name and the permissions: no such file or directory\n"},
		{name: "D excluded", args: []string{"-D", img}, code: exitUsage, stderr: "savecore: --check only reads: it excludes -D and -X (savecore -h for help)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, append([]string{"--check"}, tc.args...)...)
			assert.Equal(t, tc.code, code)
			assert.True(t, strings.HasPrefix(stdout, tc.stdout), stdout)
			if tc.stdout == "" {
				assert.Empty(t, stdout)
			} else {
				assert.Equal(t, 1, strings.Count(stdout, "\n"), "one line per dump")
				assert.Regexp(t, `, [0-9.]+[KM]iB dumped, vmcore about [0-9.]+[KM]iB\n$`, stdout)
			}
			assert.True(t, strings.HasPrefix(stderr, tc.stderr), stderr)
			checkLines(t, stderr, img, empty, missing)
		})
	}
	assert.Equal(t, before, sum(t, img), "--check writes nothing")

	// From CONFIG, like the rc script would ask.
	conf := filepath.Join(t.TempDir(), "diskdump")
	require.NoError(t, os.WriteFile(conf, []byte("DEVICE="+empty+":"+img+"\n"), 0o644))
	code, stdout, _ := runCmd(t, "--check", "-C", conf)
	assert.Equal(t, exitOK, code)
	assert.True(t, strings.HasPrefix(stdout, line), stdout)

	// No DEVICE at all: nothing waits.
	require.NoError(t, os.WriteFile(conf, []byte("DUMPDIR=/var/crash\n"), 0o644))
	code, stdout, _ = runCmd(t, "--check", "-C", conf)
	assert.Equal(t, exitFail, code)
	assert.Empty(t, stdout)
}

// TestMaxDumps: --max-dumps and MAXDUMPS remove the oldest dump
// directories after a save, and log each removal.
func TestMaxDumps(t *testing.T) {
	tests := []struct {
		name   string
		flag   []string
		config string
	}{
		{name: "flag", flag: []string{"--max-dumps", "2"}},
		{name: "config", config: "MAXDUMPS=2\n"},
		{name: "flag wins", flag: []string{"--max-dumps", "2"}, config: "MAXDUMPS=1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := dumpImage(t, 4<<20, false, crashTime)
			root := t.TempDir()
			var dirs []string
			for _, name := range []string{"127.0.0.1-2001-01-01-00:00", "127.0.0.1-2002-01-01-00:00", "127.0.0.1-2003-01-01-00:00"} {
				d := filepath.Join(root, name)
				require.NoError(t, os.Mkdir(d, 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(d, "vmcore"), []byte("old"), 0o600))
				dirs = append(dirs, d)
			}
			foreign := filepath.Join(root, "127.0.0.1-2000-01-01-00:00")
			require.NoError(t, os.Mkdir(foreign, 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(foreign, "analysis.txt"), []byte("mine"), 0o600))
			args := append([]string{"-d", root}, tc.flag...)
			if tc.config != "" {
				conf := filepath.Join(t.TempDir(), "diskdump")
				require.NoError(t, os.WriteFile(conf, []byte(tc.config), 0o644))
				args = append(args, "-C", conf)
			}
			code, stdout, stderr := runCmd(t, append(args, img)...)
			require.Equal(t, exitOK, code)
			assert.Equal(t, vmcorePath(root)+"\n", stdout)
			for _, d := range dirs[:2] {
				assert.NoDirExists(t, d)
				assert.Contains(t, stderr, "savecore: removed the old dump directory "+d+" to keep 2 (max-dumps)\n")
			}
			assert.DirExists(t, dirs[2])
			assert.FileExists(t, filepath.Join(foreign, "analysis.txt"), "not savecore's")
			checkLines(t, stderr, img)
		})
	}
}

func TestOpsUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{args: []string{"--max-dumps", "-1", "x"}, msg: "savecore: --max-dumps -1: want the number of dump directories to keep (0: all) (savecore -h for help)\n"},
		{args: []string{"--max-dumps", "many", "x"}, msg: "-max-dumps"},
		{args: []string{"--min-free", "1M", "x"}, msg: "savecore: --min-free: minfree \"1M\": want KiB, or a size such as 512Mi (savecore -h for help)\n"},
		{args: []string{"--check", "-X", "x"}, msg: "--check only reads"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tc.args...)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.msg)
			assert.Equal(t, 1, strings.Count(stderr, "\n"))
		})
	}
}

// TestHelpNamesEveryFlag: -h documents each flag newFlagSet declares.
func TestHelpNamesEveryFlag(t *testing.T) {
	fs := newFlagSet(&flags{}, new(string))
	n := 0
	fs.VisitAll(func(fl *flag.Flag) {
		n++
		name := "-" + fl.Name
		if len(fl.Name) > 1 {
			name = "--" + fl.Name
		}
		assert.Regexp(t, `(?m)^  (-h, )?`+regexp.QuoteMeta(name)+`( |\n|$)`, help, "%s in -h", name)
	})
	assert.Equal(t, 19, n, "flags declared")
}
