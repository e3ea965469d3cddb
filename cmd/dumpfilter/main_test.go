package main

import (
	"bytes"
	"crypto/sha256"
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

// vmcoreFile writes a DISKDUMP vmcore of a compressed level-0 rehearsal dump
// of a 4 MiB x86_64 machine into dir and returns its path.
func vmcoreFile(t *testing.T, dir string) string {
	t.Helper()
	a := diskdump.ArchX86_64
	bs := a.PageSize()
	const devBlocks = 1400
	img := make([]byte, devBlocks*bs)
	for blk := range uint64(devBlocks) {
		diskdump.FillSignature(img[blk*uint64(bs):(blk+1)*uint64(bs)], blk, a.ByteOrder())
	}
	src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: a, MemBytes: 4 << 20, Seed: 5})
	cfg := kernel.DefaultConfig(a)
	cfg.Compress = true
	dev := memfile.New(img)
	res, err := kernel.WriteDump(dev, devBlocks, src, cfg)
	require.NoError(t, err)
	require.Equal(t, kernel.OutcomeCompleted, res.Outcome)
	p, err := diskdump.OpenPartition(bytes.NewReader(dev.Bytes()), int64(len(dev.Bytes())))
	require.NoError(t, err)
	out := memfile.New(nil)
	_, err = vmcore.Write(out, p, vmcore.Options{Format: vmcore.FormatDiskdump})
	require.NoError(t, err)
	path := filepath.Join(dir, "vmcore")
	require.NoError(t, os.WriteFile(path, out.Bytes(), 0o600))
	return path
}

func runCmd(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func sum(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

// TestFilter runs dumpfilter on a DISKDUMP vmcore: NEW is exactly what
// vmcore.WriteFile makes at that level (the command adds nothing), OLD is
// unchanged, no temporary file is left, and filtering NEW again at the
// same level leaves out nothing more.
func TestFilter(t *testing.T) {
	dir := t.TempDir()
	old := vmcoreFile(t, dir)
	before := sum(t, old)
	newPath := filepath.Join(dir, "vmcore.19")
	code, _, stderr := runCmd(old, newPath)
	require.Equal(t, exitOK, code, stderr)
	assert.Regexp(t, `^dumpfilter: .*vmcore\.19: \d+ pages kept, \d+ left out by dump_level 19, .* \(diskdump\)\n`, stderr)
	assert.NotContains(t, stderr, "not applied")
	assert.Equal(t, before, sum(t, old), "OLD must not change")

	in, err := os.ReadFile(old)
	require.NoError(t, err)
	vf, err := vmcore.Open(bytes.NewReader(in), int64(len(in)))
	require.NoError(t, err)
	want := memfile.New(nil)
	res, err := vmcore.WriteFile(want, vf, vmcore.Options{DumpLevel: 19})
	require.NoError(t, err)
	require.NotZero(t, res.Excluded)
	got, err := os.ReadFile(newPath)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want.Bytes(), got), "NEW differs from vmcore.WriteFile's output")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "only OLD and NEW, no temporary file")

	again := filepath.Join(dir, "vmcore.19.19")
	code, _, stderr = runCmd("-l", "19", newPath, again)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stderr, " 0 left out by dump_level 19")

	// 21 = 16+4+1: the free-page bit cannot be applied, and says so.
	code, _, stderr = runCmd("-l", "21", old, filepath.Join(dir, "vmcore.21"))
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stderr, "dump_level bits 4 not applied: free pages cannot be told apart after the dump")
}

// TestFilterFormats converts while filtering: a KDUMP NEW in every
// compression, and an ELF NEW, all readable with the same pages.
func TestFilterFormats(t *testing.T) {
	dir := t.TempDir()
	old := vmcoreFile(t, dir)
	var pages []uint64
	for _, args := range [][]string{
		{"-F", "kdump"}, {"-F", "kdump", "--compress", "lzo"}, {"-F", "kdump", "--compress", "snappy"},
		{"-F", "kdump", "--compress", "zstd"}, {"-F", "elf"}, {"-F", "diskdump"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			newPath := filepath.Join(dir, "new-"+strings.Join(args, ""))
			code, _, stderr := runCmd(append(append(args, "-l", "2"), old, newPath)...)
			require.Equal(t, exitOK, code, stderr)
			b, err := os.ReadFile(newPath)
			require.NoError(t, err)
			vf, err := vmcore.Open(bytes.NewReader(b), int64(len(b)))
			require.NoError(t, err)
			var got []uint64
			buf := make([]byte, vf.PageSize())
			for pfn := range vf.Pages() {
				page, err := vf.ReadPage(pfn, buf)
				require.NoError(t, err, "PFN %d", pfn)
				if vf.Format() != vmcore.FormatELF {
					assert.False(t, isZero(page), "level 2 left zero page %d in", pfn)
					got = append(got, pfn)
				} else if !isZero(page) {
					got = append(got, pfn)
				}
			}
			require.NotEmpty(t, got, "NEW holds no non-zero page")
			if pages == nil {
				pages = got
			}
			assert.Equal(t, pages, got, "the same non-zero pages in every format")
		})
	}
}

func isZero(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

// TestRefusals: NEW that is OLD (same path or hard link), an existing NEW
// without -f, an unreadable OLD, and usage errors.
func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	old := vmcoreFile(t, dir)
	before := sum(t, old)
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Link(old, link))
	exists := filepath.Join(dir, "exists")
	require.NoError(t, os.WriteFile(exists, []byte("keep me"), 0o600))
	notVmcore := filepath.Join(dir, "text")
	require.NoError(t, os.WriteFile(notVmcore, bytes.Repeat([]byte("not a dump "), 1000), 0o600))
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"same path", []string{old, old}, exitFail, "NEW is OLD"},
		{"hard link", []string{old, link}, exitFail, "NEW is the same file as"},
		{"existing NEW", []string{old, exists}, exitFail, "exists; use -f to overwrite it"},
		{"missing OLD", []string{filepath.Join(dir, "nope"), filepath.Join(dir, "n1")}, exitFail, "cannot open the vmcore"},
		{"not a vmcore", []string{notVmcore, filepath.Join(dir, "n2")}, exitFail, "not a vmcore dumpfilter can read"},
		{"compress without kdump", []string{"--compress", "zstd", old, filepath.Join(dir, "n3")}, exitFail, "--compress applies to kdump output only"},
		{"one argument", []string{old}, exitUsage, "want OLD and NEW, got 1 arguments"},
		{"level too high", []string{"-l", "32", old, filepath.Join(dir, "n4")}, exitUsage, "-l 32: want a dump_level from 0 to 31"},
		{"bad format", []string{"-F", "qcow", old, filepath.Join(dir, "n5")}, exitUsage, "-F qcow"},
		{"bad compression", []string{"--compress", "gzip", old, filepath.Join(dir, "n6")}, exitUsage, "--compress gzip"},
		{"unknown flag", []string{"-x", old, filepath.Join(dir, "n7")}, exitUsage, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(tc.args...)
			assert.Equal(t, tc.code, code, stderr)
			assert.Contains(t, stderr, tc.msg)
			assert.True(t, strings.HasPrefix(stderr, "dumpfilter: "), stderr)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		})
	}
	b, err := os.ReadFile(exists)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b))
	assert.Equal(t, before, sum(t, old))
	code, _, stderr := runCmd("-f", old, exists)
	assert.Equal(t, exitOK, code, stderr)
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := runCmd("-h")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "Exit status:")
	code, out, _ = runCmd("-V")
	assert.Equal(t, exitOK, code)
	assert.True(t, strings.HasPrefix(out, "dumpfilter (dumpkit) "), out)
}
