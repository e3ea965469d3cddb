package savecore

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

// readInfo parses an info file into its keys, in order, and values.
func readInfo(t *testing.T, path string) (keys []string, vals map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	vals = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		require.True(t, ok, "line %q is key: value", sc.Text())
		keys = append(keys, k)
		vals[k] = v
	}
	return keys, vals
}

// TestInfoFile saves dumps and checks each info file against the dump
// header and the vmcore written.
func TestInfoFile(t *testing.T) {
	tests := []struct {
		name    string
		r       rehearsal
		verify  bool
		level   string
		format  string
		status  string
		partial bool
	}{
		{name: "full raw", r: rehearsal{arch: diskdump.ArchX86_64}, level: "full (no RAM page excluded)", format: "elf", status: "COMPLETED"},
		{name: "partial compressed, verified", r: rehearsal{arch: diskdump.ArchX86_64, compress: true, dumpLevel: 19}, verify: true,
			level: "partial (", format: "diskdump", status: "COMPLETED|COMPRESSED", partial: true},
		{name: "cut short", r: rehearsal{arch: diskdump.ArchX86_64, cut: 600}, format: "elf", status: "INCOMPLETED", partial: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, _, _ := tc.r.memImage(t)
			p, err := diskdump.OpenPartition(dev, dev.Size())
			require.NoError(t, err)
			h := p.Header()
			opt, _ := testOptions(t)
			opt.VerifyRecords = tc.verify
			opt.Version = "savecore (dumpkit) test"
			before := time.Now()
			rep := Save(context.Background(), []Input{{Name: "/dev/sdb1", Dev: dev}}, opt)
			res := rep.Results[0]
			require.NoError(t, res.Err)
			dir := filepath.Dir(res.Path)
			info := filepath.Join(dir, InfoName)
			fi, err := os.Stat(info)
			require.NoError(t, err)
			assert.Equal(t, FileMode, fi.Mode().Perm())
			assert.Equal(t, []string{DumpIDName, InfoName, VmcoreName}, listDir(t, dir), "no temporary file left")
			vfi, err := os.Stat(res.Path)
			require.NoError(t, err)

			keys, v := readInfo(t, info)
			want := []string{"device", "crash time", "host", "release", "kernel version", "machine", "dump status", "dump level",
				"pages saved", "pages lost"}
			if tc.verify {
				want = append(want, "damaged records")
			}
			want = append(want, "vmcore", "vmcore format", "vmcore size", "vmcore marked incomplete", "saved", "save took", "savecore version")
			assert.Equal(t, want, keys)
			assert.Equal(t, "/dev/sdb1", v["device"])
			assert.Equal(t, h.Time().UTC().Format("2006-01-02 15:04:05 MST"), v["crash time"])
			assert.Equal(t, h.Utsname.Nodename, v["host"])
			assert.Equal(t, h.Utsname.Release, v["release"])
			assert.Equal(t, h.Utsname.Version, v["kernel version"])
			assert.Equal(t, h.Utsname.Machine, v["machine"])
			assert.Equal(t, tc.status, v["dump status"])
			assert.True(t, strings.HasPrefix(v["dump level"], tc.level), v["dump level"])
			assert.Equal(t, strconv.FormatUint(res.Pages, 10), v["pages saved"])
			assert.Equal(t, strconv.FormatUint(res.Lost, 10), v["pages lost"])
			assert.Equal(t, "vmcore", v["vmcore"])
			assert.Equal(t, tc.format, v["vmcore format"])
			assert.True(t, strings.HasPrefix(v["vmcore size"], strconv.FormatInt(vfi.Size(), 10)+" ("), v["vmcore size"])
			assert.Equal(t, yesNo(tc.partial), v["vmcore marked incomplete"])
			saved, err := time.Parse("2006-01-02 15:04:05 MST", v["saved"])
			require.NoError(t, err)
			assert.WithinDuration(t, before, saved, time.Minute)
			took, err := time.ParseDuration(v["save took"])
			require.NoError(t, err)
			assert.Less(t, took, time.Since(before)+time.Millisecond)
			assert.Equal(t, "savecore (dumpkit) test", v["savecore version"])
			if tc.verify {
				assert.Equal(t, "0", v["damaged records"])
			}
		})
	}
}

// TestInfoLinesHostile: header text from a damaged dump cannot add lines
// or keys to the info file.
func TestInfoLinesHostile(t *testing.T) {
	h := &diskdump.Header{Utsname: diskdump.Utsname{Nodename: "evil\nhost: forged", Release: "r\x1b[1m", Machine: "x86_64"},
		Status: diskdump.StatusCompleted}
	in := &Info{Device: "/dev/sdb1", Header: h, Result: &Result{Path: "/d/vmcore", Format: "elf"}, Version: "v"}
	lines := in.Lines()
	assert.Contains(t, lines, "host: evil?host: forged\n")
	assert.Contains(t, lines, "release: r?[1m\n")
	assert.Equal(t, 1, strings.Count(lines, "\nhost: "))
}

// TestInfoWriteFails: WriteInfo fails cleanly when its name is taken, and
// in a save that costs a warning, not the saved vmcore.
func TestInfoWriteFails(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, InfoName), 0o700))
	in := &Info{Header: &diskdump.Header{}, Result: &Result{}}
	require.Error(t, WriteInfo(dir, in))
	assert.Equal(t, []string{InfoName}, listDir(t, dir), "temporary file removed")

	dev, _, _ := rehearsal{arch: diskdump.ArchX86_64}.memImage(t)
	opt, logs := testOptions(t)
	opt.Force = true
	require.NoError(t, os.MkdirAll(filepath.Join(opt.Dir, crashDir, InfoName), 0o700))
	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	require.NoError(t, rep.Results[0].Err)
	assert.FileExists(t, rep.Results[0].Path)
	assert.Contains(t, logs.String(), "its info file could not be written")
}
