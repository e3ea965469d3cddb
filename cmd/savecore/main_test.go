package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/diskdump/kernel"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

var crashTime = time.Date(2009, 6, 29, 16, 0, 0, 0, time.UTC)

// dumpImage writes a rehearsal dump of a synthetic x86_64 machine of mem
// bytes into a new partition image file and returns its path.
func dumpImage(t testing.TB, mem uint64, compress bool, when time.Time) string {
	t.Helper()
	return dumpImageCut(t, mem, compress, when, 0)
}

// dumpImageCut is dumpImage with a power cut after stopAfter block writes
// (0: none).
func dumpImageCut(t testing.TB, mem uint64, compress bool, when time.Time, stopAfter int64) string {
	t.Helper()
	m := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: mem, Seed: 7})
	blocks := 3 + 2*diskdump.BitmapBlocksFor(m.MaxPFN(), 4096) + m.MaxPFN() + 8
	p := filepath.Join(t.TempDir(), "part.img")
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(int64(blocks)*4096))
	fp := diskdump.FormatParams{BlockSize: 4096, Order: diskdump.ArchX86_64.ByteOrder(), BlockOrder: 2, SampleRate: 8}
	require.NoError(t, diskdump.FormatInitial(f, blocks, fp, nil))
	if when.IsZero() {
		return p // formatted, no dump
	}
	cfg := kernel.DefaultConfig(diskdump.ArchX86_64)
	cfg.Compress, cfg.Time, cfg.StopAfterBlocks = compress, when, stopAfter
	_, err = kernel.WriteDump(f, blocks, m, cfg)
	require.NoError(t, err)
	return p
}

// holdsDump reports whether the image still has a dump in block 1.
func holdsDump(t testing.TB, img string) bool {
	t.Helper()
	f, err := os.Open(img)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	_, err = diskdump.OpenPartition(f, fi.Size())
	if errors.Is(err, diskdump.ErrNoDump) {
		return false
	}
	require.NoError(t, err, "the dump on the partition must stay readable")
	return true
}

func runCmd(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("TZ", "UTC")
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	t.Logf("savecore %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, o.String(), e.String())
	return code, o.String(), e.String()
}

// vmcoreDir is the dump directory of crashTime under root, in local time
// (the tests set TZ=UTC; time.Local was loaded at start, so use it).
func vmcorePath(root string) string {
	return filepath.Join(root, "127.0.0.1-"+crashTime.In(time.Local).Format("2006-01-02-15:04"), "vmcore")
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		code, out, errOut := runCmd(t, arg)
		assert.Equal(t, exitOK, code)
		assert.Equal(t, help, out)
		assert.Empty(t, errOut)
	}
	// The exit-code table of the README and --help.
	assert.Contains(t, help, "  0  dump saved (with no DEVICE: every dump found was saved, or none was\n     found; a device of the list that does not exist is only warned about)")
	assert.Contains(t, help, "  3  a device or the dump root stayed locked")
	assert.Contains(t, help, "  1  any failure, including no dump on a named DEVICE")
	assert.Contains(t, help, "  2  usage error")
	for _, f := range []string{"-D", "-f", "-p", "-P FLAGS", "-v", "-X", "-d DIR", "-F FORMAT", "--verify", "-C CONFIG", "-V"} {
		assert.Contains(t, help, "  "+f+" ")
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, "-V")
	assert.Equal(t, exitOK, code)
	assert.True(t, strings.HasPrefix(out, "savecore (dumpkit) "), out)
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{name: "unknown flag", args: []string{"-z", "x"}, msg: "-z"},
		{name: "D and X", args: []string{"-D", "-X", "x"}, msg: "-D and -X"},
		{name: "bad format", args: []string{"-F", "lkcd", "x"}, msg: "lkcd"},
		{name: "bad mask", args: []string{"-P", "0x", "x"}, msg: "-P"},
		{name: "mask not C", args: []string{"-P", "0b11", "x"}, msg: "-P"},
		{name: "v and q", args: []string{"-v", "-q", "x"}, msg: "-v and -q"},
		{name: "empty dir", args: []string{"-d", "", "x"}, msg: "-d"},
		{name: "missing value", args: []string{"x", "-d"}, msg: "-d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tc.args...)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, out)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line")
			assert.Contains(t, errOut, tc.msg)
			assert.Contains(t, errOut, "savecore -h")
		})
	}
}

func TestSaveNamedDevice(t *testing.T) {
	img := dumpImage(t, 4<<20, true, crashTime)
	root := t.TempDir()
	// Flags after the device are accepted too.
	code, out, errOut := runCmd(t, img, "-D", "-d", root, "-C", "/nonexistent-default")
	require.Equal(t, exitFail, code, "explicit -C that does not exist fails")
	assert.Contains(t, errOut, "nonexistent")

	code, out, errOut = runCmd(t, img, "-D", "-p", "-d", root)
	require.Equal(t, exitOK, code)
	assert.Equal(t, vmcorePath(root)+"\n", out)
	assert.FileExists(t, vmcorePath(root))
	assert.False(t, holdsDump(t, img), "-D erased the dump")
	assert.Contains(t, errOut, "saved", "the library says where the vmcore went")
	assert.Contains(t, errOut, vmcorePath(root))
	assert.Contains(t, errOut, "100%", "progress line")
	assert.NotContains(t, errOut, "time=", "no timestamps")

	// Nothing left: a named device without a dump is a failure.
	code, out, errOut = runCmd(t, "-d", root, img)
	assert.Equal(t, exitFail, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "no dump")
}

func TestExitCodes(t *testing.T) {
	withDump := func(t *testing.T) string { return dumpImage(t, 4<<20, false, crashTime) }
	empty := func(t *testing.T) string { return dumpImage(t, 4<<20, false, time.Time{}) }
	missing := func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing") }
	tests := []struct {
		name   string
		devs   []func(t *testing.T) string
		config bool // pass the devices through a CONFIG file
		extra  []string
		code   int
		saved  bool
	}{
		{name: "named dump", devs: []func(*testing.T) string{withDump}, code: exitOK, saved: true},
		{name: "named empty", devs: []func(*testing.T) string{empty}, code: exitFail},
		{name: "named missing", devs: []func(*testing.T) string{missing}, code: exitFail},
		{name: "named empty then dump", devs: []func(*testing.T) string{empty, withDump}, code: exitFail, saved: true},
		{name: "config dump", config: true, devs: []func(*testing.T) string{withDump}, code: exitOK, saved: true},
		{name: "config empty", config: true, devs: []func(*testing.T) string{empty}, code: exitOK},
		{name: "config nothing", config: true, code: exitOK},
		{name: "config empty then dump", config: true, devs: []func(*testing.T) string{empty, withDump}, code: exitOK, saved: true},
		// A device of the list that is absent is a warning, not a failure
		// of every boot.
		{name: "config missing then dump", config: true, devs: []func(*testing.T) string{missing, withDump}, code: exitOK, saved: true},
		{name: "delete only", devs: []func(*testing.T) string{withDump}, extra: []string{"-X"}, code: exitOK},
		{name: "delete only, no dump", devs: []func(*testing.T) string{empty}, extra: []string{"-X"}, code: exitFail},
		{name: "kdump format", devs: []func(*testing.T) string{withDump}, extra: []string{"-F", "kdump", "-P", "0x10"}, code: exitOK, saved: true},
		{name: "auto format, verify", devs: []func(*testing.T) string{withDump}, extra: []string{"-F", "auto", "--verify"}, code: exitOK, saved: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var devs []string
			for _, d := range tc.devs {
				devs = append(devs, d(t))
			}
			args := append([]string{"-v"}, tc.extra...)
			if tc.config {
				conf := filepath.Join(t.TempDir(), "diskdump")
				body := "# test\nDEVICE=\"" + strings.Join(devs, ":") + "\"\nDUMPDIR=" + root + "\n"
				require.NoError(t, os.WriteFile(conf, []byte(body), 0o644))
				args = append(args, "-C", conf)
			} else {
				args = append(args, "-d", root)
				args = append(args, devs...)
			}
			code, out, _ := runCmd(t, args...)
			assert.Equal(t, tc.code, code)
			if tc.saved {
				assert.Equal(t, vmcorePath(root)+"\n", out)
				assert.FileExists(t, vmcorePath(root))
			} else {
				assert.Empty(t, out)
				assert.NoFileExists(t, vmcorePath(root))
			}
		})
	}
}

// TestExistingDirectory: a crash saved without -D, then savecore -D: the
// crash is already saved (exit 0, vmcore unchanged), the dump is erased
// and the device is ready; -f never touches a vmcore of another crash.
func TestExistingDirectory(t *testing.T) {
	img := dumpImage(t, 4<<20, true, crashTime)
	root := t.TempDir()
	code, out, _ := runCmd(t, "-d", root, img)
	require.Equal(t, exitOK, code)
	require.Equal(t, vmcorePath(root)+"\n", out)
	fi1, err := os.Stat(vmcorePath(root))
	require.NoError(t, err)

	code, out, errOut := runCmd(t, "-d", root, "-D", img)
	assert.Equal(t, exitOK, code, errOut)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "crash already saved")
	assert.False(t, holdsDump(t, img), "erased")
	f, err := os.Open(img)
	require.NoError(t, err)
	st, err := f.Stat()
	require.NoError(t, err)
	chk, err := diskdump.CheckPartition(f, st.Size(), diskdump.FormatParams{BlockSize: 4096, Order: diskdump.ArchX86_64.ByteOrder(), BlockOrder: 2, SampleRate: 8})
	f.Close()
	require.NoError(t, err)
	assert.Equal(t, diskdump.CheckReady, chk.Status, chk.Reason)
	fi2, err := os.Stat(vmcorePath(root))
	require.NoError(t, err)
	assert.True(t, os.SameFile(fi1, fi2), "not replaced")

	// Another crash in the same minute: kept beside the first, with -f too.
	other := dumpImage(t, 8<<20, true, crashTime.Add(20*time.Second))
	code, out, errOut = runCmd(t, "-d", root, "-D", "-f", other)
	assert.Equal(t, exitOK, code, errOut)
	assert.Equal(t, filepath.Dir(vmcorePath(root))+".1/vmcore\n", out)
	fi3, err := os.Stat(vmcorePath(root))
	require.NoError(t, err)
	assert.True(t, os.SameFile(fi1, fi3), "the first crash's vmcore is kept")
}

func TestStaleTemporaryFile(t *testing.T) {
	img := dumpImage(t, 4<<20, false, crashTime)
	root := t.TempDir()
	dir := filepath.Dir(vmcorePath(root))
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".vmcore5577006791947779410"), []byte("half a vmcore"), 0o600))
	code, out, errOut := runCmd(t, "-d", root, img)
	assert.Equal(t, exitOK, code)
	assert.Equal(t, vmcorePath(root)+"\n", out)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 3)
	assert.Equal(t, []string{"dump-id", "info", "vmcore"}, []string{ents[0].Name(), ents[1].Name(), ents[2].Name()})
	assert.Contains(t, errOut, "interrupted")
}

func TestConsole(t *testing.T) {
	var buf bytes.Buffer
	c := newConsole(&buf, true)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	c.status()
	assert.Equal(t, "savecore: examining devices\n", buf.String())
	buf.Reset()
	c.progress("/dev/sdb1", 0, 100<<20)
	now = now.Add(time.Second)
	c.progress("/dev/sdb1", 10<<20, 100<<20)
	assert.Contains(t, buf.String(), "\rsavecore: /dev/sdb1: 10.0MiB / 100.0MiB  10% 10.0MiB/s ETA 0:09")
	c.Write([]byte("level=INFO msg=x\n"))
	assert.Contains(t, buf.String(), "ETA 0:09\nlevel=INFO msg=x\n", "a log line ends the progress line first")
	buf.Reset()
	now = now.Add(time.Second)
	c.status()
	assert.Equal(t, "savecore: /dev/sdb1: 10.0MiB / 100.0MiB  10% 5.0MiB/s ETA 0:18\n", buf.String())
	c.progress("/dev/sdb1", 11<<20, 100<<20)
	buf.Reset()
	now = now.Add(10 * time.Millisecond)
	c.progress("/dev/sdb1", 12<<20, 100<<20)
	assert.Empty(t, buf.String(), "rate-limited")
	c.progress("/dev/sdb1", 100<<20, 100<<20)
	assert.True(t, strings.HasSuffix(buf.String(), " 100%\n") || strings.Contains(buf.String(), "100%"), buf.String())
	assert.True(t, strings.HasSuffix(buf.String(), "\n"), "final line ended")

	var quiet bytes.Buffer
	q := newConsole(&quiet, false)
	q.progress("/dev/sdb1", 1, 2)
	assert.Empty(t, quiet.String(), "no progress unless asked")
	q.status()
	assert.Contains(t, quiet.String(), "/dev/sdb1")

	// On the journal the status line carries the info priority too.
	var j bytes.Buffer
	jc := newConsole(&j, false)
	jc.prefix = "<6>"
	jc.status()
	assert.Equal(t, "<6>savecore: examining devices\n", j.String())
}

func TestClock(t *testing.T) {
	assert.Equal(t, "0:09", clock(9*time.Second))
	assert.Equal(t, "1:05", clock(65*time.Second))
	assert.Equal(t, "2:00:01", clock(2*time.Hour+time.Second))
}

// TestConfigFallbackCopies: the kernel fell back from the first DEVICE to
// the second in the middle of the dump. One vmcore is saved, from the
// complete copy, and -D erases both.
func TestConfigFallbackCopies(t *testing.T) {
	cut := dumpImageCut(t, 4<<20, false, crashTime, 400)
	full := dumpImage(t, 4<<20, false, crashTime)
	root := t.TempDir()
	conf := filepath.Join(t.TempDir(), "diskdump")
	require.NoError(t, os.WriteFile(conf, []byte("DEVICE="+cut+":"+full+"\nDUMPDIR="+root+"\n"), 0o644))
	code, out, errOut := runCmd(t, "-D", "-C", conf)
	assert.Equal(t, exitOK, code)
	assert.Equal(t, vmcorePath(root)+"\n", out, "saved once")
	assert.Contains(t, errOut, "copies of the same crash")
	assert.Regexp(t, `saved from:? `+regexp.QuoteMeta(full), errOut)
	assert.False(t, holdsDump(t, cut), "incomplete copy erased")
	assert.False(t, holdsDump(t, full), "saved copy erased")
	checkVmcoreFile(t, vmcorePath(root))
}

// TestVerify: --verify turns a damaged zlib record into a lost page,
// reported on stderr; the save still succeeds (exit 0), as with any
// incomplete dump. Without it the record is copied silently.
func TestVerify(t *testing.T) {
	img := dumpImage(t, 4<<20, true, crashTime)
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	p, err := diskdump.OpenPartition(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	var pfn uint64
	for pg, err := range p.Pages() {
		require.NoError(t, err)
		if pg.PFN >= 500 && pg.Compressed {
			pfn = pg.PFN
			b[pg.Off+int64(len(pg.Data))/2] ^= 0x10 // a bit of the deflate body
			break
		}
	}
	require.NotZero(t, pfn)
	require.NoError(t, os.WriteFile(img, b, 0o600))

	root := t.TempDir()
	code, out, errOut := runCmd(t, "-d", root, img)
	require.Equal(t, exitOK, code)
	assert.Equal(t, vmcorePath(root)+"\n", out)
	assert.NotContains(t, errOut, "damaged")
	assert.Regexp(t, `format: diskdump|diskdump format`, errOut)

	root = t.TempDir()
	code, out, errOut = runCmd(t, "--verify", "-d", root, img)
	require.Equal(t, exitOK, code)
	assert.Equal(t, vmcorePath(root)+"\n", out)
	assert.Regexp(t, `bad records: 1|1 damaged zlib records`, errOut)
	assert.Regexp(t, `(pfn: |PFN )`+strconv.FormatUint(pfn, 10), errOut)
	assert.Regexp(t, `pages lost: 1|1 lost`, errOut)
}
