package savecore

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/fixtures"
	"github.com/dumpkit/dumpkit/vmcore"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

// testLog collects log output for assertions and shows it on failure.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestLog(t *testing.T) (*testLog, *slog.Logger) {
	l := &testLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("savecore log:\n%s", l.String())
		}
	})
	return l, slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testOptions(t *testing.T) (Options, *testLog) {
	l, log := newTestLog(t)
	mp := diskdump.DefaultModuleParams
	return Options{Dir: t.TempDir(), Location: time.UTC, Logger: log, Module: &mp}, l
}

func TestSaveRehearsals(t *testing.T) {
	tests := []struct {
		name       string
		r          rehearsal
		format     string
		wantFormat vmcore.Format
		partial    bool
		lost       bool // pages lost: the dump was cut short
	}{
		{name: "raw x86_64", r: rehearsal{arch: diskdump.ArchX86_64}, wantFormat: vmcore.FormatELF},
		{name: "compressed x86_64", r: rehearsal{arch: diskdump.ArchX86_64, compress: true}, wantFormat: vmcore.FormatDiskdump},
		{name: "partial raw", r: rehearsal{arch: diskdump.ArchX86_64, dumpLevel: 19}, wantFormat: vmcore.FormatELF, partial: true},
		{name: "partial compressed", r: rehearsal{arch: diskdump.ArchX86_64, compress: true, dumpLevel: 19}, wantFormat: vmcore.FormatDiskdump, partial: true},
		// A KDUMP file is marked INCOMPLETE only when pages are missing, not
		// for the pages its dump level left out (as makedumpfile -d).
		{name: "partial compressed as kdump", r: rehearsal{arch: diskdump.ArchX86_64, compress: true, dumpLevel: 19}, format: "kdump", wantFormat: vmcore.FormatKdump},
		{name: "compressed as elf", r: rehearsal{arch: diskdump.ArchX86_64, compress: true}, format: "elf", wantFormat: vmcore.FormatELF},
		{name: "interrupted raw", r: rehearsal{arch: diskdump.ArchX86_64, cut: 600}, wantFormat: vmcore.FormatELF, partial: true, lost: true},
		// Too small for the kernel to flush a block of the dense bitmap before
		// the cut: no page can be attributed.
		{name: "interrupted compressed", r: rehearsal{arch: diskdump.ArchX86_64, compress: true, cut: 600}, wantFormat: vmcore.FormatDiskdump, partial: true},
		{name: "short area", r: rehearsal{arch: diskdump.ArchX86_64, compress: true, devBlocks: 150}, wantFormat: vmcore.FormatDiskdump, partial: true},
		{name: "i386", r: rehearsal{arch: diskdump.ArchI386}, wantFormat: vmcore.FormatELF},
		{name: "i386 compressed", r: rehearsal{arch: diskdump.ArchI386, compress: true, dumpLevel: 1}, wantFormat: vmcore.FormatDiskdump, partial: true},
		{name: "ppc64", r: rehearsal{arch: diskdump.ArchPPC64}, wantFormat: vmcore.FormatELF},
		{name: "ppc64 compressed", r: rehearsal{arch: diskdump.ArchPPC64, compress: true}, wantFormat: vmcore.FormatDiskdump},
		{name: "ia64 compressed", r: rehearsal{arch: diskdump.ArchIA64, compress: true}, wantFormat: vmcore.FormatDiskdump},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dev, m, wr := tc.r.memImage(t)
			opt, logs := testOptions(t)
			opt.Format = tc.format
			var calls int
			var last, total int64
			opt.Progress = func(name string, done, tot int64) {
				assert.Equal(t, "mem0", name)
				assert.GreaterOrEqual(t, done, last, "progress never goes back")
				calls, last, total = calls+1, done, tot
			}
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			require.Len(t, rep.Results, 1)
			res := rep.Results[0]
			require.NoError(t, res.Err)
			require.Equal(t, OutcomeSaved, res.Outcome)
			assert.False(t, rep.Failed(true))
			want := filepath.Join(opt.Dir, crashDir, VmcoreName)
			assert.Equal(t, want, res.Path)
			assert.Equal(t, []string{want}, rep.Paths())
			assert.Equal(t, tc.wantFormat.String(), res.Format)
			v := checkVmcore(t, res.Path, m, wr, tc.partial)
			assert.Equal(t, tc.wantFormat, v.Format())
			assert.Equal(t, wr.Recoverable.Count(), res.Pages)
			if tc.lost {
				assert.NotZero(t, res.Lost, "lost pages counted")
				assert.Contains(t, logs.String(), "incomplete")
			}
			assert.Equal(t, tc.partial || tc.lost, res.Incomplete)
			assert.NotZero(t, calls, "progress reported")
			assert.Equal(t, total, last, "progress ends at the total")
			assert.False(t, res.Erased)
			_, err := diskdump.OpenPartition(dev, dev.Size())
			assert.NoError(t, err, "the dump stays without Delete")
			fi, err := os.Stat(filepath.Dir(res.Path))
			require.NoError(t, err)
			assert.Equal(t, DirMode, fi.Mode().Perm())
		})
	}
}

// TestSaveSamples saves the golden sample partitions and compares every
// page with the listing made by the independent emulation, through our
// reader and through libkdumpfile.
func TestSaveSamples(t *testing.T) {
	dir := fixtures.SampleDir()
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("golden samples absent: %v", err)
	}
	for _, name := range []string{"raw-x86_64-dl0-bo2", "cmp-x86_64-dl0-bo2", "partial-cmp-dl19-bo3"} {
		t.Run(name, func(t *testing.T) {
			img := gunzipSample(t, filepath.Join(dir, name+".part.gz"))
			want, err := os.ReadFile(filepath.Join(dir, name+".pages"))
			require.NoError(t, err)
			pages := readPagesFile(t, want)
			opt, _ := testOptions(t)
			opt.Delete = true
			rep := SaveDevices(context.Background(), []string{img}, opt)
			require.Len(t, rep.Results, 1)
			res := rep.Results[0]
			require.NoError(t, res.Err)
			require.Equal(t, OutcomeSaved, res.Outcome)
			assert.Equal(t, filepath.Join(opt.Dir, "127.0.0.1-"+time.Unix(1246291200, 0).UTC().Format("2006-01-02-15:04"), VmcoreName), res.Path)
			assert.Equal(t, uint64(len(pages)), res.Pages)
			assert.Equal(t, pages, vmcorePageHashes(t, res.Path, pages), "our reader")
			got := oracle(t, res.Path)
			if strings.HasPrefix(name, "raw") {
				// ELF: libkdumpfile lists every page frame of the PT_LOADs.
				for pfn, h := range pages {
					assert.Equal(t, h, got[pfn], "PFN %d", pfn)
				}
			} else {
				assert.Equal(t, pages, got, "libkdumpfile")
			}
			assert.True(t, res.Erased)
			f, err := os.Open(img)
			require.NoError(t, err)
			defer f.Close()
			fi, err := f.Stat()
			require.NoError(t, err)
			chk, err := diskdump.CheckPartition(f, fi.Size(), diskdump.FormatParams{BlockSize: 4096, Order: diskdump.ArchX86_64.ByteOrder(), BlockOrder: 2, SampleRate: 8})
			require.NoError(t, err)
			assert.Equal(t, diskdump.CheckReady, chk.Status, chk.Reason)
		})
	}
}

func gunzipSample(t *testing.T, gz string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(gz), ".gz"))
	blockdevtest.Run(t, "sh", "-c", "gzip -dc \"$0\" > \"$1\"", gz, out)
	return out
}

// TestSaveOracle checks a couple of rehearsal vmcores with libkdumpfile.
func TestSaveOracle(t *testing.T) {
	tests := []struct {
		name string
		r    rehearsal
		lost bool
	}{
		// Above 16384 PFNs: libkdumpfile misreads smaller one-bitmap dumps.
		{name: "raw elf", r: rehearsal{arch: diskdump.ArchX86_64, mem: 68 << 20}},
		{name: "compressed partial diskdump", r: rehearsal{arch: diskdump.ArchX86_64, mem: 8 << 20, compress: true, dumpLevel: 19}},
		// 34464 RAM pages: the kernel flushes the first dense-bitmap block
		// (32768 RAM pages) and rewrites the header before the cut.
		// Mostly zero pages, which dump_level 19 excludes, keep it cheap.
		{name: "interrupted compressed", r: rehearsal{arch: diskdump.ArchX86_64, mem: 144 << 20, compress: true, dumpLevel: 19, cut: 970,
			mix: kernel.PageMix{Zero: 90, Sparse: 6, Text: 2, Pattern: 1, Random: 1}}, lost: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, m, wr := tc.r.fileImage(t)
			opt, _ := testOptions(t)
			rep := SaveDevices(context.Background(), []string{img}, opt)
			res := rep.Results[0]
			require.NoError(t, res.Err)
			want := hashMachinePages(t, m, wr.Recoverable)
			got := oracle(t, res.Path)
			for pfn, h := range want {
				require.Equal(t, h, got[pfn], "PFN %d", pfn)
			}
			if !strings.HasPrefix(tc.name, "raw") {
				assert.Equal(t, len(want), len(got), "pages stored")
			}
			assert.NotZero(t, res.Pages)
			if tc.lost {
				assert.NotZero(t, res.Lost)
				assert.True(t, res.Incomplete)
			}
		})
	}
}

func TestSaveDelete(t *testing.T) {
	for _, r := range []rehearsal{{arch: diskdump.ArchX86_64}, {arch: diskdump.ArchPPC64, compress: true, dumpLevel: 19}} {
		t.Run(r.arch.String(), func(t *testing.T) {
			dev, m, wr := r.memImage(t)
			block0 := bytes.Clone(dev.Bytes()[:r.blockSize()])
			opt, _ := testOptions(t)
			opt.Delete = true
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			res := rep.Results[0]
			require.NoError(t, res.Err)
			assert.True(t, res.Erased)
			checkVmcore(t, res.Path, m, wr, r.dumpLevel != 0)
			chk, err := diskdump.CheckPartition(dev, dev.Size(), r.formatParams())
			require.NoError(t, err)
			assert.Equal(t, diskdump.CheckReady, chk.Status, chk.Reason)
			assert.Equal(t, block0, dev.Bytes()[:r.blockSize()], "block 0 untouched")
			_, err = diskdump.OpenPartition(dev, dev.Size())
			assert.ErrorIs(t, err, diskdump.ErrNoDump)
		})
	}
}

func TestSaveDeleteOnly(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, compress: true}
	dev, _, _ := r.memImage(t)
	opt, _ := testOptions(t)
	opt.DeleteOnly = true
	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	res := rep.Results[0]
	require.NoError(t, res.Err)
	assert.Equal(t, OutcomeErased, res.Outcome)
	assert.True(t, res.Erased)
	assert.Empty(t, rep.Paths())
	assert.Empty(t, listDir(t, opt.Dir), "nothing saved")
	chk, err := diskdump.CheckPartition(dev, dev.Size(), r.formatParams())
	require.NoError(t, err)
	assert.Equal(t, diskdump.CheckReady, chk.Status)
}

// roDev hides WriteAt.
type roDev struct{ d memDev }

func (r roDev) ReadAt(p []byte, off int64) (int, error) { return r.d.ReadAt(p, off) }
func (r roDev) Size() int64                             { return r.d.Size() }

func TestSaveDeleteNeedsWriter(t *testing.T) {
	dev, _, _ := rehearsal{arch: diskdump.ArchX86_64}.memImage(t)
	opt, _ := testOptions(t)
	opt.Delete = true
	rep := Save(context.Background(), []Input{{Name: "ro", Dev: roDev{dev}}}, opt)
	res := rep.Results[0]
	assert.Equal(t, OutcomeSaved, res.Outcome, "saved")
	assert.ErrorIs(t, res.Err, ErrNotWritable, "but not erased")
	assert.True(t, rep.Failed(false))
	_, err := diskdump.OpenPartition(dev, dev.Size())
	assert.NoError(t, err)
}

// TestSaveDeviceList: errors on one device are reported and the next one
// is examined.
func TestSaveDeviceList(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, compress: true, dumpLevel: 19}
	good, m, wr := r.memImage(t)
	empty := memDev{memfile.New(make([]byte, 64*4096))}
	require.NoError(t, diskdump.FormatInitial(empty, 64, r.formatParams(), nil))
	corrupt := memDev{memfile.New(bytes.Clone(good.Bytes()[:8*4096]))}
	// bitmap_blocks far beyond the device.
	off := 4096 + diskdump.LayoutOf(diskdump.ArchX86_64).FieldOffset("bitmap_blocks")
	copy(corrupt.Bytes()[off:], []byte{0xf0, 0xff, 0xff, 0x0f})
	tests := []struct {
		name    string
		first   Input
		outcome Outcome
		failed  bool
	}{
		{name: "missing", first: Input{Name: "/dev/missing", Err: os.ErrNotExist}, outcome: OutcomeFailed, failed: true},
		{name: "empty", first: Input{Name: "empty", Dev: empty}, outcome: OutcomeNoDump},
		{name: "corrupt", first: Input{Name: "corrupt", Dev: corrupt}, outcome: OutcomeFailed, failed: true},
		{name: "unreadable", first: Input{Name: "bad", Dev: badDev(good)}, outcome: OutcomeFailed, failed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt, logs := testOptions(t)
			rep := Save(context.Background(), []Input{tc.first, {Name: "good", Dev: good}}, opt)
			require.Len(t, rep.Results, 2)
			assert.Equal(t, tc.outcome, rep.Results[0].Outcome)
			assert.Equal(t, tc.failed, rep.Results[0].Err != nil, "%v", rep.Results[0].Err)
			assert.Contains(t, logs.String(), tc.first.Name)
			res := rep.Results[1]
			require.NoError(t, res.Err)
			assert.Equal(t, OutcomeSaved, res.Outcome)
			checkVmcore(t, res.Path, m, wr, true)
			assert.Equal(t, tc.failed, rep.Failed(false), "CONFIG mode")
			assert.True(t, rep.Failed(true), "named devices: no dump or failure counts")
		})
	}
}

// badDev fails every read of block 1: the header cannot be read.
func badDev(d memDev) *blockdevtest.FaultDevice {
	f := blockdevtest.NewFaultDevice(d.Bytes())
	f.FailRead = blockdevtest.BadRange(4096, 8192)
	return f
}

// TestSaveReadErrors: a device with bad sectors in the data area gives an
// incomplete vmcore with everything else; the dump is not erased.
func TestSaveReadErrors(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64}
	good, m, wr := r.memImage(t)
	f := blockdevtest.NewFaultDevice(good.Bytes())
	first := int64(3+2*diskdump.BitmapBlocksFor(m.MaxPFN(), 4096)) * 4096
	f.FailRead = blockdevtest.BadRange(first+100*4096, first+110*4096)
	require.Greater(t, wr.Recoverable.Count(), uint64(200))
	opt, logs := testOptions(t)
	rep := Save(context.Background(), []Input{{Name: "flaky", Dev: f}}, opt)
	res := rep.Results[0]
	require.NoError(t, res.Err)
	assert.Equal(t, OutcomeSaved, res.Outcome)
	assert.True(t, res.Incomplete)
	assert.NotZero(t, res.Lost)
	assert.Equal(t, wr.Recoverable.Count()-res.Lost, res.Pages)
	assert.Contains(t, logs.String(), "pages_lost")
}

// TestSaveFallbackCopies: the kernel fell back to the next device in the
// middle of the dump; both hold the crash, one INCOMPLETED.
func TestSaveFallbackCopies(t *testing.T) {
	full := rehearsal{arch: diskdump.ArchX86_64, compress: true}
	cut := full
	cut.cut = 400 // compressed, before any bitmap flush: nothing attributable
	// Raw dumps are written in strict mode: an interrupted copy keeps every
	// page it wrote.
	rawCut := rehearsal{arch: diskdump.ArchX86_64, cut: 400}
	rawCut2 := rawCut
	rawCut2.cut = 700
	tests := []struct {
		name    string
		a, b    rehearsal
		best    int // index of the copy to save
		delete_ bool
	}{
		{name: "incomplete first", a: cut, b: full, best: 1},
		{name: "incomplete second", a: full, b: cut, best: 0},
		{name: "incomplete first, delete", a: cut, b: full, best: 1, delete_: true},
		{name: "both incomplete", a: rawCut, b: rawCut2, best: 1, delete_: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			devA, _, wrA := tc.a.memImage(t)
			devB, _, wrB := tc.b.memImage(t)
			m := tc.a.machine()
			wrs := []*kernel.Result{wrA, wrB}
			devs := []memDev{devA, devB}
			opt, logs := testOptions(t)
			opt.Delete = tc.delete_
			rep := Save(context.Background(), []Input{{Name: "devA", Dev: devA}, {Name: "devB", Dev: devB}}, opt)
			require.Len(t, rep.Results, 2)
			best, other := rep.Results[tc.best], rep.Results[1-tc.best]
			require.NoError(t, best.Err)
			require.NoError(t, other.Err)
			assert.Equal(t, OutcomeSaved, best.Outcome)
			assert.Equal(t, OutcomeDuplicate, other.Outcome)
			assert.Equal(t, best.Device, other.SavedFrom)
			assert.Len(t, rep.Paths(), 1, "saved once")
			assert.Contains(t, logs.String(), "copies of the same crash")
			checkVmcore(t, best.Path, m, wrs[tc.best], tc.best == 0 && tc.a.cut > 0 || tc.best == 1 && tc.b.cut > 0)
			for i, d := range devs {
				_, err := diskdump.OpenPartition(d, d.Size())
				if tc.delete_ {
					assert.ErrorIs(t, err, diskdump.ErrNoDump, "device %d erased", i)
				} else {
					assert.NoError(t, err, "device %d kept", i)
				}
			}
		})
	}
	t.Run("different crashes are both saved", func(t *testing.T) {
		later := full
		later.time = crashTime.Add(time.Hour)
		devA, _, _ := full.memImage(t)
		devB, _, _ := later.memImage(t)
		opt, _ := testOptions(t)
		rep := Save(context.Background(), []Input{{Name: "devA", Dev: devA}, {Name: "devB", Dev: devB}}, opt)
		assert.Len(t, rep.Paths(), 2)
		assert.False(t, rep.Failed(true))
	})
}

// TestSaveExistingDirectory: a dump directory holding a vmcore that no
// dump-id attributes is never written into: the crash goes to NAME.1.
// Saving the same crash again finds it already saved (exit 0, the dump
// erased with -D); -f replaces only that vmcore of the same crash.
func TestSaveExistingDirectory(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, compress: true}
	dev, m, wr := r.memImage(t)
	opt, logs := testOptions(t)
	dir := filepath.Join(opt.Dir, crashDir)
	require.NoError(t, os.Mkdir(dir, 0o700))
	old := filepath.Join(dir, VmcoreName)
	require.NoError(t, os.WriteFile(old, []byte("old vmcore"), 0o600))

	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	res := rep.Results[0]
	require.NoError(t, res.Err)
	assert.Equal(t, OutcomeSaved, res.Outcome)
	assert.Equal(t, dir+".1", res.Dir)
	checkVmcore(t, res.Path, m, wr, false)
	b, err := os.ReadFile(old)
	require.NoError(t, err)
	assert.Equal(t, "old vmcore", string(b), "nothing overwritten")
	assert.Contains(t, logs.String(), "holds another crash")
	st1, err := os.Stat(res.Path)
	require.NoError(t, err)

	opt.Delete = true
	rep = Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	res = rep.Results[0]
	require.NoError(t, res.Err)
	assert.Equal(t, OutcomeAlreadySaved, res.Outcome)
	assert.Contains(t, logs.String(), "crash already saved: nothing to write")
	assert.True(t, res.Erased, "erased: its vmcore is durable")
	st2, err := os.Stat(filepath.Join(dir+".1", VmcoreName))
	require.NoError(t, err)
	assert.True(t, os.SameFile(st1, st2), "not rewritten")

	// -f with the dump back: the vmcore of the same crash is replaced,
	// the unattributed one is still left alone.
	dev, m, wr = r.memImage(t)
	opt.Force = true
	rep = Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	res = rep.Results[0]
	require.NoError(t, res.Err)
	assert.Equal(t, OutcomeSaved, res.Outcome)
	assert.Equal(t, dir+".1", res.Dir)
	checkVmcore(t, res.Path, m, wr, false)
	b, err = os.ReadFile(old)
	require.NoError(t, err)
	assert.Equal(t, "old vmcore", string(b))
}

// TestSaveInterrupted: a run cancelled in the middle leaves no vmcore and
// keeps the dump; the next run cleans up and succeeds.
func TestSaveInterrupted(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64}
	dev, m, wr := r.memImage(t)
	opt, _ := testOptions(t)
	opt.Delete = true
	ctx, cancel := context.WithCancel(context.Background())
	opt.Progress = func(string, int64, int64) { cancel() }
	rep := Save(ctx, []Input{{Name: "mem0", Dev: dev}}, opt)
	res := rep.Results[0]
	require.ErrorIs(t, res.Err, context.Canceled)
	assert.False(t, res.Erased)
	assert.NoFileExists(t, filepath.Join(opt.Dir, crashDir, VmcoreName))
	assert.Empty(t, listDir(t, opt.Dir), "the directory this run made is gone")
	_, err := diskdump.OpenPartition(dev, dev.Size())
	require.NoError(t, err, "dump kept")

	// A killed run (no cleanup) leaves renameio's temporary file.
	dir := filepath.Join(opt.Dir, crashDir)
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".vmcore4711"), []byte("partial"), 0o600))
	opt.Progress = nil
	rep = Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	res = rep.Results[0]
	require.NoError(t, res.Err)
	assert.Equal(t, []string{DumpIDName, InfoName, VmcoreName}, listDir(t, dir), "stale temporary file removed")
	checkVmcore(t, res.Path, m, wr, false)
	assert.True(t, res.Erased)
}

func TestSaveSuccessScript(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, compress: true}
	for _, exit := range []int{0, 7} {
		t.Run("exit"+strconv.Itoa(exit), func(t *testing.T) {
			dev, _, _ := r.memImage(t)
			opt, logs := testOptions(t)
			out := filepath.Join(t.TempDir(), "args")
			t.Setenv("OUT", out)
			writeScript(t, opt.Dir, SuccessScript, `printf '%s\n' "$@" > "$OUT"; ls "$2" >> "$OUT"; echo mailed root; exit `+strconv.Itoa(exit), 0o755)
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			require.NoError(t, rep.Results[0].Err, "script status never fails the save")
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.Equal(t, Host+"\n"+filepath.Join(opt.Dir, crashDir)+"\n"+DumpIDName+"\n"+InfoName+"\n"+VmcoreName+"\n", string(b))
			assert.Contains(t, logs.String(), "mailed root")
		})
	}
}

func TestSaveUnsafeRoot(t *testing.T) {
	dev, _, _ := rehearsal{arch: diskdump.ArchX86_64}.memImage(t)
	opt, _ := testOptions(t)
	require.NoError(t, os.Chmod(opt.Dir, 0o777))
	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	require.ErrorIs(t, rep.Results[0].Err, ErrUnsafe)
	assert.Empty(t, listDir(t, opt.Dir))
}

func TestSaveBadFormatOption(t *testing.T) {
	dev, _, _ := rehearsal{arch: diskdump.ArchX86_64}.memImage(t)
	opt, _ := testOptions(t)
	opt.Format = "lkcd"
	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	require.Error(t, rep.Results[0].Err)
	assert.Empty(t, listDir(t, opt.Dir))
}

func TestOutcomeString(t *testing.T) {
	for o, s := range map[Outcome]string{OutcomeFailed: "failed", OutcomeNoDump: "no dump", OutcomeSaved: "saved",
		OutcomeDuplicate: "duplicate", OutcomeErased: "erased", Outcome(9): "Outcome(9)"} {
		assert.Equal(t, s, o.String())
	}
}

var _ io.ReaderAt = roDev{}

func TestSaveUnknownMachineFallsBackToDiskdump(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64}
	dev, _, wr := r.memImage(t)
	// Damage utsname.machine (offset 272 of the header in block 1).
	machine := dev.Bytes()[r.blockSize()+272:][:65]
	clear(machine)
	copy(machine, "sparc64")
	p, err := diskdump.OpenPartition(dev, dev.Size())
	require.NoError(t, err, "the header layout is probed when the machine is unknown")
	require.Equal(t, diskdump.ArchUnknown, p.Arch())
	require.Equal(t, vmcore.FormatELF, vmcore.DefaultFormat(p))

	opt, log := testOptions(t)
	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	res := rep.Results[0]
	require.NoError(t, res.Err)
	assert.Contains(t, log.String(), "saving in diskdump format instead of ELF")
	f, err := os.Open(res.Path)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	v, err := vmcore.Open(f, fi.Size())
	require.NoError(t, err)
	assert.Equal(t, vmcore.FormatDiskdump, v.Format())
	assert.Equal(t, wr.Recoverable.Count(), v.NumPages())
}
