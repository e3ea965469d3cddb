package savecore

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/dmesg"
)

// Where kernel.LogMachine keeps the printk variables (kernellog.go): the
// tests below corrupt them there.
const (
	logVarsPhys    = 0x300000
	offLogBufPtr   = 0x200
	offLogBufLenV  = 0x208
	logMachineRAM  = 8 << 20
	kvbaseX86_64   = 0xffffffff80000000
	logTestRelease = "2.6.9-89.ELsmp"
)

// patchedMemory changes bytes of one page of a machine.
type patchedMemory struct {
	kernel.MemorySource
	pfn   uint64
	off   int
	bytes []byte
}

func (p patchedMemory) ReadPage(pfn uint64, dst []byte) error {
	if err := p.MemorySource.ReadPage(pfn, dst); err != nil {
		return err
	}
	if pfn == p.pfn {
		copy(dst[p.off:], p.bytes)
	}
	return nil
}

// logDump is a crash of a machine holding a kernel log.
type logDump struct {
	dev  memDev
	lm   *kernel.LogMachine
	sMap string // path of the machine's System.map
}

// writeLogDump dumps an 8 MiB x86_64 machine whose memory holds
// kernel.BootLog as its log; memUts is the utsname in memory (the header
// has kernel.DefaultUtsname), patch (optional) changes its memory.
func writeLogDump(t *testing.T, compress bool, level int, memUts diskdump.Utsname, patch func(kernel.MemorySource) kernel.MemorySource) logDump {
	t.Helper()
	r := rehearsal{arch: diskdump.ArchX86_64, mem: logMachineRAM, compress: compress, dumpLevel: level}
	m := r.machine()
	uts := kernel.DefaultUtsname(r.arch)
	lm, err := kernel.NewLogMachine(m, r.arch, r.blockSize(), memUts, kernel.BootLog(r.arch, uts, 400<<20))
	require.NoError(t, err)
	var src kernel.MemorySource = lm
	if patch != nil {
		src = patch(lm)
	}
	blocks := r.fullBlocks(m)
	dev := memfile.New(make([]byte, blocks*uint64(r.blockSize())))
	require.NoError(t, diskdump.FormatInitial(dev, blocks, r.formatParams(), nil))
	cfg := r.config()
	cfg.Utsname = uts
	_, err = kernel.WriteDump(dev, blocks, src, cfg)
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, dmesg.WriteSystemMap(&b, lm.Symbols(), lm.Bits()))
	sMap := filepath.Join(t.TempDir(), "System.map")
	require.NoError(t, os.WriteFile(sMap, b.Bytes(), 0o644))
	return logDump{dev: memDev{dev}, lm: lm, sMap: sMap}
}

// TestDmesgSaved: the log of a legacy kernel, read with its System.map,
// is saved beside the vmcore and equals what the machine holds, whatever
// the dump mode; the ring wrapped.
func TestDmesgSaved(t *testing.T) {
	uts := kernel.DefaultUtsname(diskdump.ArchX86_64)
	for _, tc := range []struct {
		name     string
		compress bool
		level    int
		format   string
	}{
		{"raw", false, 0, ""}, {"compressed", true, 0, ""}, {"partial compressed kdump", true, 19, "kdump"}, {"partial raw", false, 19, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := writeLogDump(t, tc.compress, tc.level, uts, nil)
			require.Len(t, d.lm.Log(), kernel.LogBufLen, "the log wrapped")
			opt, l := testOptions(t)
			opt.SystemMap, opt.Format = d.sMap, tc.format
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: d.dev}}, opt)
			require.False(t, rep.Failed(true), l.String())
			got, err := os.ReadFile(filepath.Join(opt.Dir, crashDir, DmesgName))
			require.NoError(t, err)
			assert.Equal(t, string(d.lm.Log()), string(got))
			fi, err := os.Stat(filepath.Join(opt.Dir, crashDir, DmesgName))
			require.NoError(t, err)
			assert.Equal(t, FileMode, fi.Mode().Perm())
			assert.Contains(t, l.String(), "symbols=System.map")
			// --dmesg on the vmcore reads it again, through its VMCOREINFO.
			// DISKDUMP vmcores have no place for a VMCOREINFO: the map is needed.
			sMap := ""
			if rep.Results[0].Format == "diskdump" {
				sMap = d.sMap
			}
			var out bytes.Buffer
			require.NoError(t, WriteDmesg(&out, rep.Results[0].Path, sMap))
			assert.Equal(t, string(d.lm.Log()), out.String())
		})
	}
}

// TestDmesgNoLog: whatever goes wrong with the log, the vmcore is saved,
// one warning says why there is no vmcore-dmesg.txt, and nothing panics.
func TestDmesgNoLog(t *testing.T) {
	uts := kernel.DefaultUtsname(diskdump.ArchX86_64)
	otherRelease, otherBuild := uts, uts
	otherRelease.Release = "2.6.9-100.EL"
	otherBuild.Version = "#1 SMP Tue Jan 1 00:00:00 EST 2008"
	vars := uint64(logVarsPhys / 4096)
	le64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	patch := func(off int, b []byte) func(kernel.MemorySource) kernel.MemorySource {
		return func(m kernel.MemorySource) kernel.MemorySource {
			return patchedMemory{MemorySource: m, pfn: vars, off: off, bytes: b}
		}
	}
	for _, tc := range []struct {
		name   string
		memUts diskdump.Utsname
		patch  func(kernel.MemorySource) kernel.MemorySource
		mapFn  func(t *testing.T, d logDump) string // "" = no map
		want   string
	}{
		{name: "no System.map", memUts: uts, want: "no VMCOREINFO and no System.map"},
		{name: "map of another release", memUts: otherRelease, mapFn: ownMap, want: "release"},
		{name: "map of another build", memUts: otherBuild, mapFn: ownMap, want: "version"},
		{name: "map without log_end", memUts: uts, mapFn: mapWithout("log_end"), want: "log_end"},
		{name: "log pointer outside RAM", memUts: uts, patch: patch(offLogBufPtr, le64(kvbaseX86_64+0x7fff0000)), mapFn: ownMap, want: "log_buf"},
		{name: "corrupt ring size", memUts: uts, patch: patch(offLogBufLenV, []byte{0x39, 0x30, 0, 0}), mapFn: ownMap, want: "log_buf_len"},
		{name: "unreadable System.map", memUts: uts, mapFn: func(t *testing.T, _ logDump) string { return filepath.Join(t.TempDir(), "absent") }, want: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := writeLogDump(t, true, 0, tc.memUts, tc.patch)
			opt, l := testOptions(t)
			if tc.mapFn != nil {
				opt.SystemMap = tc.mapFn(t, d)
			}
			done := make(chan *Report, 1)
			go func() { done <- Save(context.Background(), []Input{{Name: "mem0", Dev: d.dev}}, opt) }()
			var rep *Report
			select {
			case rep = <-done:
			case <-time.After(2 * time.Minute):
				t.Fatal("savecore hangs")
			}
			require.False(t, rep.Failed(true), l.String())
			assert.FileExists(t, rep.Results[0].Path)
			assert.NoFileExists(t, filepath.Join(opt.Dir, crashDir, DmesgName))
			assert.Contains(t, l.String(), "no vmcore-dmesg.txt saved")
			assert.Contains(t, l.String(), tc.want)
		})
	}
}

// ownMap is the System.map the machine was built with.
func ownMap(_ *testing.T, d logDump) string { return d.sMap }

// mapWithout is the machine's System.map without symbol name.
func mapWithout(name string) func(t *testing.T, d logDump) string {
	return func(t *testing.T, d logDump) string {
		var syms []dmesg.Symbol
		for _, s := range d.lm.Symbols() {
			if s.Name != name {
				syms = append(syms, s)
			}
		}
		var b bytes.Buffer
		require.NoError(t, dmesg.WriteSystemMap(&b, syms, d.lm.Bits()))
		p := filepath.Join(t.TempDir(), "System.map")
		require.NoError(t, os.WriteFile(p, b.Bytes(), 0o644))
		return p
	}
}

// TestDmesgCrash: crash --log, without vmlinux, prints the same log from
// our KDUMP vmcore, in each page compression, as vmcore-dmesg.txt holds
// (doc/DMESG.md §9): crash decompresses the log's pages with its own zlib,
// liblzo2, libsnappy and libzstd. Our ELF vmcores are not tried: crash 8
// takes an ELF core whose PT_LOAD has p_align set (netdump style,
// doc/FORMAT.md §10.1) for a netdump core and does not look at its
// VMCOREINFO note.
func TestDmesgCrash(t *testing.T) {
	crash, err := exec.LookPath("crash")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("crash is missing: %v", err)
		}
		t.Skipf("crash is missing: %v", err)
	}
	uts := kernel.DefaultUtsname(diskdump.ArchX86_64)
	for _, compress := range []string{"zlib", "lzo", "snappy", "zstd"} {
		t.Run("kdump-"+compress, func(t *testing.T) {
			d := writeLogDump(t, false, 0, uts, nil)
			opt, l := testOptions(t)
			opt.SystemMap, opt.Format, opt.Compress = d.sMap, "kdump", compress
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: d.dev}}, opt)
			require.False(t, rep.Failed(true), l.String())
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, crash, "-d0", "--log", rep.Results[0].Path)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "crash: %s%s", out, stderr.String())
			saved, err := os.ReadFile(filepath.Join(opt.Dir, crashDir, DmesgName))
			require.NoError(t, err)
			assert.Equal(t, string(saved), string(out))
		})
	}
}

// TestDmesgSourcePartition: savecore --dmesg reads a partition image.
func TestDmesgSourcePartition(t *testing.T) {
	d := writeLogDump(t, true, 0, kernel.DefaultUtsname(diskdump.ArchX86_64), nil)
	p := filepath.Join(t.TempDir(), "part.img")
	require.NoError(t, os.WriteFile(p, d.dev.Bytes(), 0o600))
	var out bytes.Buffer
	require.NoError(t, WriteDmesg(&out, p, d.sMap))
	assert.Equal(t, string(d.lm.Log()), out.String())
	out.Reset()
	err := WriteDmesg(&out, p, "")
	require.Error(t, err)
	assert.Empty(t, out.String())
}

func TestHasVMCOREINFOPage(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		want bool
	}{{"2.6.9-89.ELsmp", false}, {"2.6.23", false}, {"2.6.24", true}, {"2.6.32-71.el6.x86_64", true}, {"3.10.0", true}, {"2.4.21-4.EL", false}, {"", true}, {"weird", true}} {
		t.Run(tc.rel, func(t *testing.T) { assert.Equal(t, tc.want, hasVMCOREINFOPage(tc.rel)) })
	}
}

// TestDmesgLoneLogDirectory: a dump directory holding only the log of a
// save whose vmcore was not written is saved into again without -f; one
// that also holds a vmcore nothing identifies is kept, and the dump goes to
// NAME.1.
func TestDmesgLoneLogDirectory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		ok    bool
	}{{"lone log", []string{DmesgName}, true}, {"log and vmcore", []string{DmesgName, VmcoreName}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			d := writeLogDump(t, true, 0, kernel.DefaultUtsname(diskdump.ArchX86_64), nil)
			opt, l := testOptions(t)
			opt.SystemMap = d.sMap
			dir := filepath.Join(opt.Dir, crashDir)
			require.NoError(t, os.Mkdir(dir, DirMode))
			for _, f := range tc.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("old"), FileMode))
			}
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: d.dev}}, opt)
			require.False(t, rep.Failed(true), l.String())
			if !tc.ok {
				old, err := os.ReadFile(filepath.Join(dir, VmcoreName))
				require.NoError(t, err)
				assert.Equal(t, "old", string(old), "the other vmcore is kept")
				dir += ".1"
			}
			got, err := os.ReadFile(filepath.Join(dir, DmesgName))
			require.NoError(t, err)
			assert.Equal(t, string(d.lm.Log()), string(got))
		})
	}
}
