package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/vmcore"
)

// rawTargetDevice is an image of a kdump raw-target partition: a stream
// makedumpfile -F wrote (the vmcore package's fixture), cut at cut bytes
// when cut > 0, over random old contents.
func rawTargetDevice(t *testing.T, cut int) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "vmcore", "testdata", "flattened", "kdump-zlib-d1.flat.gz"))
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	stream, err := io.ReadAll(zr)
	require.NoError(t, err)
	if cut > 0 {
		stream = stream[:cut]
	}
	img := make([]byte, 4<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	copy(img, stream)
	p := filepath.Join(t.TempDir(), "raw.img")
	require.NoError(t, os.WriteFile(p, img, 0o600))
	return p
}

func TestCheckFlattened(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cut      int
		complete bool
		end      string
	}{
		{name: "complete", complete: true, end: "complete"},
		{name: "torn", cut: 9000, end: "record beyond the size limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := rawTargetDevice(t, tc.cut)
			code, _, stderr := dumpformat(t, "-c", dev)
			assert.Equal(t, 1, code, stderr)
			assert.Contains(t, stderr, "holds a dump")

			code, stdout, _ := dumpformat(t, "-c", "-v", dev)
			assert.Equal(t, 1, code)
			assert.Contains(t, stdout, "flattened kdump dump")
			assert.Contains(t, stdout, "stream:      makedumpfile flattened")

			code, stdout, _ = dumpformat(t, "-c", "--json", dev)
			assert.Equal(t, 1, code)
			var out checkJSON
			require.NoError(t, json.Unmarshal([]byte(stdout), &out))
			require.NotNil(t, out.Flattened)
			assert.Equal(t, "kdump", out.Flattened.Format)
			assert.Equal(t, tc.complete, out.Flattened.Complete)
			assert.Equal(t, tc.end, out.Flattened.End)
			assert.Positive(t, out.Flattened.Records)
			assert.NotEmpty(t, out.Flattened.CrashTime, "makedumpfile's header timestamp")
		})
	}
}

// TestFormatFlattenedRefused: a raw-target partition holding a dump is not
// formatted without -f; with -f it is, and the dump is gone.
func TestFormatFlattenedRefused(t *testing.T) {
	dev := rawTargetDevice(t, 0)
	before := readFile(t, dev)
	code, _, stderr := dumpformat(t, dev)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "holds a dump, run savecore first")
	assert.True(t, bytes.Equal(before, readFile(t, dev)), "device changed")

	code, _, stderr = dumpformat(t, "-f", dev)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "overwriting a flattened dump")
	code, _, _ = dumpformat(t, "-c", dev)
	assert.Equal(t, 0, code, "formatted and ready")
}

// TestRehearseFlattened: -R --flattened writes a complete flattened KDUMP
// stream over old contents; -c then says 1, and the stream rebuilds into a
// KDUMP vmcore holding the synthetic machine's pages.
func TestRehearseFlattened(t *testing.T) {
	for _, args := range [][]string{{"--compress", "zlib"}, {"--compress=zlib"}, {}, {"--compress", "lzo"}, {"--compress=snappy"}, {"--compress", "zstd"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dev := rawTargetDevice(t, 4096) // a start block, then old data
			code, stdout, stderr := dumpformat(t, append(append([]string{"-R", "--flattened", "--ram", "8M"}, args...), dev)...)
			require.Equal(t, 0, code, stderr)
			assert.Contains(t, stdout, "rehearsal flattened dump")
			code, _, _ = dumpformat(t, "-c", dev)
			assert.Equal(t, 1, code)
			img := readFile(t, dev)
			sum, err := vmcore.ScanFlattened(bytes.NewReader(img), int64(len(img)))
			require.NoError(t, err)
			assert.False(t, sum.Stop.Torn())
			require.NotNil(t, sum.Header)
			assert.Equal(t, "2.6.9-89.ELsmp", sum.Header.Utsname.Release)
			out := memfile.New(nil)
			res, err := vmcore.Unflatten(out, bytes.NewReader(img), int64(len(img)), nil)
			require.NoError(t, err)
			v, err := vmcore.Open(bytes.NewReader(out.Bytes()), res.Size)
			require.NoError(t, err)
			// The command's machine: the synthetic one with its kernel log.
			sm := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: 8 << 20, Seed: 1})
			uts := kernel.DefaultUtsname(diskdump.ArchX86_64)
			m, err := kernel.NewLogMachine(sm, diskdump.ArchX86_64, 4096, uts, kernel.BootLog(diskdump.ArchX86_64, uts, 8<<20))
			require.NoError(t, err)
			want := make([]byte, 4096)
			var got []byte
			n := 0
			for pfn := range v.Pages() {
				got, err = v.ReadPage(pfn, got)
				require.NoError(t, err)
				if at := m.Attrs(pfn); at.BadPage || at.Unmapped {
					continue // the kernel dumps a message instead
				}
				require.NoError(t, m.ReadPage(pfn, want))
				require.True(t, bytes.Equal(want, got), "PFN %d", pfn)
				n++
			}
			assert.Positive(t, n)
		})
	}
}

// TestRehearseFlattenedTooSmall: a stream longer than the device is torn
// at its end, as dd leaves it; the error says so.
func TestRehearseFlattenedTooSmall(t *testing.T) {
	dev := imageFile(t, 64, 0)
	code, _, stderr := dumpformat(t, "-R", "--flattened", "--ram", "8M", dev)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "torn")
	code, _, _ = dumpformat(t, "-c", dev)
	assert.Equal(t, 1, code, "a torn stream is still a dump")
}

func TestFlattenedUsage(t *testing.T) {
	dev := imageFile(t, 64, 0)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{args: []string{"--flattened", dev}, msg: "--flattened needs -R"},
		{args: []string{"-R", "--compress", "lzo", dev}, msg: "needs --flattened"},
		{args: []string{"-R", "--compress=brotli", dev}, msg: "want one of"},
	} {
		code, _, stderr := dumpformat(t, tc.args...)
		assert.Equal(t, 255, code, "%v", tc.args)
		assert.Contains(t, stderr, tc.msg, "%v", tc.args)
	}
}
