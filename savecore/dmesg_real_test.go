package savecore

import (
	"context"
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
	rel, err := os.ReadFile(filepath.Join(dir, "release"))
	require.NoError(t, err)
	f, err := os.Open(filepath.Join(dir, "vmcore.elf"))
	require.NoError(t, err)
	defer f.Close()
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
