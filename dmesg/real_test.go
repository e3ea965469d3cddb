package dmesg

import (
	"context"
	"debug/elf"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A real kernel: testdata/real-kernel.sh boots a Debian 6.1 kernel under
// QEMU until it panics and dumps its memory as an ELF file (too large to
// commit). DMESG_REAL_DIR names the directory it wrote; the test skips
// without it.

// elfMemory is the physical memory of a QEMU ELF dump.
type elfMemory struct {
	f     *elf.File
	loads []*elf.Prog
}

func openELFMemory(t *testing.T, path string) *elfMemory {
	f, err := elf.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	m := &elfMemory{f: f}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Filesz > 0 {
			m.loads = append(m.loads, p)
		}
	}
	return m
}

func (m *elfMemory) PageSize() int { return pageSize }

func (m *elfMemory) ReadPage(pfn uint64, dst []byte) ([]byte, error) {
	a := pfn * pageSize
	for _, p := range m.loads {
		if a >= p.Paddr && a+pageSize <= p.Paddr+p.Filesz {
			if cap(dst) < pageSize {
				dst = make([]byte, pageSize)
			}
			dst = dst[:pageSize]
			_, err := p.ReadAt(dst, int64(a-p.Paddr))
			return dst, err
		}
	}
	return nil, fmt.Errorf("pfn 0x%x: %w", pfn, errNotInDump)
}

func (m *elfMemory) pfns() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		for _, p := range m.loads {
			for a := (p.Paddr + pageSize - 1) &^ (pageSize - 1); a+pageSize <= p.Paddr+p.Filesz; a += pageSize {
				if !yield(a / pageSize) {
					return
				}
			}
		}
	}
}

func TestRealKernel(t *testing.T) {
	dir := os.Getenv("DMESG_REAL_DIR")
	if dir == "" {
		t.Skip("DMESG_REAL_DIR not set: run testdata/real-kernel.sh DIR first")
	}
	tool := requireTool(t, "makedumpfile")
	rel, err := os.ReadFile(filepath.Join(dir, "release"))
	require.NoError(t, err)
	core := filepath.Join(dir, "vmcore.elf")
	mem := openELFMemory(t, core)

	start := time.Now()
	info, err := FindVMCOREINFO(mem, X86_64, strings.TrimSpace(string(rel)), mem.pfns())
	require.NoError(t, err)
	t.Logf("VMCOREINFO found in %v: %d bytes", time.Since(start), len(info.Bytes()))
	log, err := Read(mem, X86_64, info)
	require.NoError(t, err)
	assert.Equal(t, Lockless, log.Layout)
	var got strings.Builder
	_, err = log.WriteTo(&got)
	require.NoError(t, err)

	tmp := t.TempDir()
	file, out := filepath.Join(tmp, "vmcoreinfo"), filepath.Join(tmp, "dmesg.txt")
	require.NoError(t, os.WriteFile(file, info.Bytes(), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	msg, err := exec.CommandContext(ctx, tool, "--dump-dmesg", "-i", file, core, out).CombinedOutput()
	require.NoError(t, err, "%s", msg)
	want, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Contains(t, string(want), "Kernel panic - not syncing")
	assert.Equal(t, string(want), got.String())
	t.Logf("%d records, %d bytes of text, identical to makedumpfile", len(log.Records), len(want))
}
