package savecore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
)

// TestDmesgRealKernel: the memory of a real Debian 6.1 guest
// (dmesg/testdata/real-kernel.sh, DMESG_REAL_DIR) dumped by the
// kernel-exact writer as a compressed partition: savecore finds the
// VMCOREINFO page in it, writes the lockless log, and stores the VMCOREINFO
// in its KDUMP vmcore, from which makedumpfile --dump-dmesg prints the same
// text byte for byte.
func TestDmesgRealKernel(t *testing.T) {
	dir := os.Getenv("DMESG_REAL_DIR")
	if dir == "" {
		t.Skip("DMESG_REAL_DIR not set: run dmesg/testdata/real-kernel.sh DIR first")
	}
	tool, err := exec.LookPath("makedumpfile")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("makedumpfile is missing: %v", err)
		}
		t.Skipf("makedumpfile is missing: %v", err)
	}
	dev := realKernelPartition(t, dir)
	opt, l := testOptions(t)
	opt.Format = "kdump"
	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: memDev{dev}}}, opt)
	require.False(t, rep.Failed(true), l.String())
	assert.Contains(t, l.String(), `symbols="VMCOREINFO in memory"`)
	saved, err := os.ReadFile(filepath.Join(opt.Dir, crashDir, DmesgName))
	require.NoError(t, err)
	require.Contains(t, string(saved), "Kernel panic - not syncing")

	out := filepath.Join(t.TempDir(), "dmesg.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	msg, err := exec.CommandContext(ctx, tool, "--dump-dmesg", rep.Results[0].Path, out).CombinedOutput()
	require.NoError(t, err, "%s", msg)
	want, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(saved))
}

// realKernelPartition dumps the memory of the guest in dir
// (dmesg/testdata/real-kernel.sh) with the kernel-exact writer as a
// compressed partition in memory, with the guest's release in utsname.
func realKernelPartition(t *testing.T, dir string) *memfile.File {
	t.Helper()
	rel, err := os.ReadFile(filepath.Join(dir, "release"))
	require.NoError(t, err)
	f, err := os.Open(filepath.Join(dir, "vmcore.elf"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	require.NoError(t, err)
	src, err := kernel.NewELFCoreSource(f, st.Size(), 4096)
	require.NoError(t, err)

	r := rehearsal{arch: diskdump.ArchX86_64, compress: true}
	blocks := 3 + 2*diskdump.BitmapBlocksFor(src.MaxPFN(), 4096) + src.MaxPFN() + 8
	dev := memfile.New(make([]byte, blocks*4096))
	require.NoError(t, diskdump.FormatInitial(dev, blocks, r.formatParams(), nil))
	cfg := r.config()
	cfg.Utsname = kernel.DefaultUtsname(r.arch)
	cfg.Utsname.Release = strings.TrimSpace(string(rel))
	_, err = kernel.WriteDump(dev, blocks, src, cfg)
	require.NoError(t, err)
	return dev
}

// crashRealCommands are the crash commands TestCrashRealKernel runs: the
// system summary and the log (printk ring buffer, kernel symbols through
// KASLR), the task list and a backtrace (task structs and stacks), memory
// statistics (all of mem_map and the zone counters) and raw physical pages.
const crashRealCommands = `sys
log
ps
bt
kmem -i
rd -p 0x1000000 64
rd -p 0x7000000 64
quit
`

// TestCrashRealKernel: crash, with the guest kernel's debug vmlinux
// (DMESG_REAL_DIR/vmlinux, from savecore/testdata/real-vmlinux.sh), prints
// the same from our KDUMP vmcore of the guest's memory, in each page
// compression, as from QEMU's own ELF dump of it: every page crash reads
// (the log, task structs, stacks, the whole mem_map) decompresses in
// crash to the bytes QEMU dumped. A vmcore saved with --dump-level 2 (zero
// pages left out, absent from bitmap 2) prints the same with crash's
// --zero_excluded, which this kernel's start-up needs.
func TestCrashRealKernel(t *testing.T) {
	dir := os.Getenv("DMESG_REAL_DIR")
	if dir == "" {
		t.Skip("DMESG_REAL_DIR not set: run dmesg/testdata/real-kernel.sh DIR and savecore/testdata/real-vmlinux.sh DIR first")
	}
	vmlinux := filepath.Join(dir, "vmlinux")
	if _, err := os.Stat(vmlinux); err != nil {
		t.Skipf("no debug vmlinux of the guest: run savecore/testdata/real-vmlinux.sh %s (%v)", dir, err)
	}
	crash, err := exec.LookPath("crash")
	if err != nil {
		t.Skipf("crash is missing: %v", err)
	}
	cmds := filepath.Join(t.TempDir(), "cmds")
	require.NoError(t, os.WriteFile(cmds, []byte(crashRealCommands), 0o644))
	want := runCrashReal(t, crash, vmlinux, filepath.Join(dir, "vmcore.elf"), cmds)
	require.Contains(t, want, "Kernel panic - not syncing")
	dev := realKernelPartition(t, dir)
	for _, tc := range []struct {
		compress string
		level    int
		args     []string
	}{{"zlib", 0, nil}, {"lzo", 0, nil}, {"snappy", 0, nil}, {"zstd", 0, nil}, {"zstd", 2, []string{"--zero_excluded"}}} {
		t.Run(fmt.Sprintf("%s-level%d", tc.compress, tc.level), func(t *testing.T) {
			opt, l := testOptions(t)
			opt.Format, opt.Compress, opt.DumpLevel = "kdump", tc.compress, tc.level
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: memDev{dev}}}, opt)
			require.False(t, rep.Failed(true), l.String())
			got := runCrashReal(t, crash, vmlinux, rep.Results[0].Path, cmds, tc.args...)
			assert.Equal(t, want, strings.Replace(got, "  [PARTIAL DUMP]", "", 1))
		})
	}
}

// runCrashReal runs crash's commands on a dump and returns what it
// printed, without the DUMPFILE line (the file's name).
func runCrashReal(t *testing.T, crash, vmlinux, dump, cmds string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args = append(args, "-s", vmlinux, dump, "-i", cmds)
	out, err := exec.CommandContext(ctx, crash, args...).CombinedOutput()
	require.NoError(t, err, "crash %s: %s", dump, out)
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, "DUMPFILE:") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
