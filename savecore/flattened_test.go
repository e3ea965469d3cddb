package savecore

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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
	"github.com/dumpkit/dumpkit/vmcore"
)

// Dumps of kdump's raw target: a flattened stream at the start of the
// partition, followed by the partition's old contents (doc/FLATTENED.md §5).

// flattenedVmcore is the KDUMP vmcore of a compressed rehearsal crash, and
// its stream as FlattenFile writes it.
func flattenedVmcore(t testing.TB) (file, stream []byte) {
	t.Helper()
	img, _, _ := rehearsal{arch: diskdump.ArchX86_64, compress: true}.image(t)
	p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	out := memfile.New(nil)
	_, err = vmcore.Write(out, p, vmcore.Options{Format: vmcore.FormatKdump, ShareZeroPage: true})
	require.NoError(t, err)
	var s bytes.Buffer
	_, err = vmcore.FlattenFile(&s, bytes.NewReader(out.Bytes()), int64(len(out.Bytes())))
	require.NoError(t, err)
	return out.Bytes(), s.Bytes()
}

// oldContents is what a partition held before the capture: random bytes.
func oldContents(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// rawTargetImage writes stream over 1 MiB more of old contents than it
// needs, as `dd of=DEV` leaves a partition, into an image file.
func rawTargetImage(t testing.TB, stream []byte, seed uint64) string {
	t.Helper()
	img := oldContents(seed, (len(stream)+1<<20)/4096*4096) // whole sectors, as a partition
	copy(img, stream)
	p := filepath.Join(t.TempDir(), "raw.img")
	require.NoError(t, os.WriteFile(p, img, 0o600))
	return p
}

func TestSaveFlattened(t *testing.T) {
	file, stream := flattenedVmcore(t)
	tornAt := len(stream) * 2 / 3
	tests := []struct {
		name     string
		cut      int
		format   string
		del, x   bool
		outcome  Outcome
		failed   bool
		torn     bool
		erased   bool
		logMatch string
	}{
		{name: "complete", cut: len(stream), outcome: OutcomeSaved, logMatch: "found flattened dump"},
		{name: "complete -D", cut: len(stream), del: true, outcome: OutcomeSaved, erased: true},
		{name: "complete -F kdump", cut: len(stream), format: "kdump", outcome: OutcomeSaved},
		{name: "-X", cut: len(stream), x: true, outcome: OutcomeErased, erased: true},
		{name: "torn -D", cut: tornAt, del: true, outcome: OutcomeSaved, torn: true, erased: true, logMatch: "torn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := rawTargetImage(t, stream[:tc.cut], 5)
			before, err := os.ReadFile(path)
			require.NoError(t, err)
			opt, logs := testOptions(t)
			opt.Format, opt.Delete, opt.DeleteOnly = tc.format, tc.del, tc.x
			rep := SaveDevices(context.Background(), []string{path}, opt)
			res := rep.Results[0]
			assert.Equal(t, tc.failed, res.Err != nil, "%v", res.Err)
			if !tc.failed {
				assert.Equal(t, tc.outcome, res.Outcome)
			}
			assert.Equal(t, tc.erased, res.Erased)
			assert.Contains(t, logs.String(), tc.logMatch)
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			if tc.erased {
				assert.Equal(t, make([]byte, vmcore.FlattenedStartSize), after[:vmcore.FlattenedStartSize], "start block wiped")
				assert.True(t, bytes.Equal(before[vmcore.FlattenedStartSize:], after[vmcore.FlattenedStartSize:]), "the rest left alone")
				again := SaveDevices(context.Background(), []string{path}, opt)
				assert.Equal(t, OutcomeNoDump, again.Results[0].Outcome, "found again after the erase")
			} else {
				assert.True(t, bytes.Equal(before, after), "device changed")
			}
			if res.Outcome != OutcomeSaved {
				assert.NoDirExists(t, filepath.Join(opt.Dir, crashDir))
				return
			}
			assert.Equal(t, filepath.Join(opt.Dir, crashDir, VmcoreName), res.Path, "named after the KDUMP header's crash time")
			got, err := os.ReadFile(res.Path)
			require.NoError(t, err)
			fi, err := os.Stat(res.Path)
			require.NoError(t, err)
			assert.Equal(t, FileMode, fi.Mode().Perm())
			assert.Equal(t, "kdump", res.Format)
			assert.Equal(t, tc.torn, res.Incomplete)
			if !tc.torn {
				assert.True(t, bytes.Equal(file, got), "vmcore differs from the file that was flattened")
				return
			}
			assert.Positive(t, res.Lost)
			checkSameOrAbsent(t, "torn", got, file)
		})
	}
}

// flattenedRecords lists the records of a complete stream.
func flattenedRecords(t testing.TB, stream []byte) []vmcore.FlattenedRecord {
	t.Helper()
	fr, err := vmcore.NewFlattenedReader(bytes.NewReader(stream), int64(len(stream)), 0)
	require.NoError(t, err)
	var recs []vmcore.FlattenedRecord
	for fr.Next() {
		recs = append(recs, fr.Record())
	}
	require.NoError(t, fr.Err())
	require.False(t, fr.Stop().Torn())
	return recs
}

// checkSameOrAbsent opens a vmcore saved from a torn stream and checks that
// it is marked incomplete and that every page it holds is the page of the
// complete vmcore. It returns the pages held.
func checkSameOrAbsent(t testing.TB, what string, got, complete []byte) uint64 {
	t.Helper()
	v, err := vmcore.Open(bytes.NewReader(got), int64(len(got)))
	require.NoError(t, err, what)
	w, err := vmcore.Open(bytes.NewReader(complete), int64(len(complete)))
	require.NoError(t, err)
	assert.True(t, v.Partial(), "%s: marked incomplete", what)
	var a, b []byte
	var n uint64
	for pfn := range v.Pages() {
		a, err = v.ReadPage(pfn, a)
		require.NoError(t, err, "%s: PFN %d", what, pfn)
		b, err = w.ReadPage(pfn, b)
		require.NoError(t, err, "%s: PFN %d", what, pfn)
		require.True(t, bytes.Equal(a, b), "%s: PFN %d is wrong", what, pfn)
		n++
	}
	return n
}

// TestSaveFlattenedTorn cuts the stream at every record boundary (and just
// around it) and at random offsets, puts the partition's old contents after
// it, and saves: within seconds, never a wrong page, never a failure except
// when the vmcore header itself did not arrive.
func TestSaveFlattenedTorn(t *testing.T) {
	file, stream := flattenedVmcore(t)
	r := rand.New(rand.NewPCG(3, 4))
	var cuts []int
	for _, rec := range flattenedRecords(t, stream) {
		for _, d := range []int64{-1, 0, 1, 17} {
			cuts = append(cuts, int(rec.StreamOff+d))
		}
	}
	for range 20 {
		cuts = append(cuts, vmcore.FlattenedStartSize+r.IntN(len(stream)-vmcore.FlattenedStartSize))
	}
	var saved, noHeader int
	for i, cut := range cuts {
		if cut < vmcore.FlattenedStartSize {
			continue
		}
		what := fmt.Sprintf("cut %d", cut)
		dev := memDev{memfile.New(append(bytes.Clone(stream[:cut]), oldContents(uint64(i), 256<<10)...))}
		opt, _ := testOptions(t)
		start := time.Now()
		rep := Save(context.Background(), []Input{{Name: "raw", Dev: dev}}, opt)
		require.Less(t, time.Since(start), 10*time.Second, what)
		res := rep.Results[0]
		if errors.Is(res.Err, vmcore.ErrFlattenedNoHeader) {
			noHeader++
			continue
		}
		require.NoError(t, res.Err, what)
		require.Equal(t, OutcomeSaved, res.Outcome, what)
		got, err := os.ReadFile(res.Path)
		require.NoError(t, err)
		assert.Equal(t, res.Pages, checkSameOrAbsent(t, what, got, file), what)
		saved++
	}
	t.Logf("%d torn partitions saved, %d without the vmcore header", saved, noHeader)
	assert.Positive(t, saved)
}

// requireTool skips the test when a judge is missing, unless CI=true.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	why := name + " not installed (apt-get install " + name + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// makedumpfileR runs `timeout 60 makedumpfile -R OUT < in` and returns OUT,
// or the error and output.
func makedumpfileR(t *testing.T, in string) ([]byte, string, error) {
	t.Helper()
	f, err := os.Open(in)
	require.NoError(t, err)
	defer f.Close()
	out := filepath.Join(t.TempDir(), "vmcore.R")
	cmd := exec.Command("timeout", "60", "makedumpfile", "-R", out)
	cmd.Stdin = f
	msg, err := cmd.CombinedOutput()
	if err != nil {
		return nil, string(msg), err
	}
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b, string(msg), nil
}

// makedumpfileStreams are streams written by makedumpfile -F itself, kept
// with the vmcore package's fixtures.
func makedumpfileStreams(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range []string{"kdump-zlib-d1", "kdump-lzo-d0", "elf-d0"} {
		f, err := os.Open(filepath.Join("..", "vmcore", "testdata", "flattened", name+".flat.gz"))
		require.NoError(t, err)
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		b, err := io.ReadAll(zr)
		require.NoError(t, err)
		f.Close()
		out["makedumpfile "+name] = b
	}
	return out
}

// TestSaveFlattenedMatchesMakedumpfile: on image files holding a stream
// followed by old data, the vmcore savecore saves is byte for byte what
// `makedumpfile -R` rebuilds; after -D, makedumpfile no longer finds it.
func TestSaveFlattenedMatchesMakedumpfile(t *testing.T) {
	requireTool(t, "makedumpfile")
	requireTool(t, "timeout")
	_, ours := flattenedVmcore(t)
	streams := makedumpfileStreams(t)
	streams["ours kdump"] = ours
	for name, stream := range streams {
		t.Run(name, func(t *testing.T) {
			path := rawTargetImage(t, stream, 11)
			want, msg, err := makedumpfileR(t, path)
			require.NoError(t, err, msg)
			opt, _ := testOptions(t)
			opt.Delete = true
			res := SaveDevices(context.Background(), []string{path}, opt).Results[0]
			require.NoError(t, res.Err)
			got, err := os.ReadFile(res.Path)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got), "saved %d bytes, makedumpfile -R %d", len(got), len(want))
			start := time.Now()
			_, msg, err = makedumpfileR(t, path)
			assert.Error(t, err, "makedumpfile -R after -D")
			assert.Contains(t, msg, "signature")
			assert.Less(t, time.Since(start), 10*time.Second)
		})
	}
}

// TestSaveFlattenedCrashReadsOurStream: crash opens our stream directly.
func TestSaveFlattenedCrashReadsOurStream(t *testing.T) {
	requireTool(t, "crash")
	_, stream := flattenedVmcore(t)
	path := rawTargetImage(t, stream, 12)
	out, err := exec.Command("timeout", "120", "crash", "--osrelease", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "2.6.9-89.ELsmp")
	assert.True(t, strings.HasSuffix(strings.TrimSpace(string(out)), "2.6.9-89.ELsmp"), "%q", out)
}

// TestSaveFlattenedConvert converts a flattened KDUMP dump while saving it
// (-F elf, --compress zstd, --dump-level 2): every page of the new vmcore is
// the page of the stream's own vmcore, and only zero pages are left out at
// level 2.
func TestSaveFlattenedConvert(t *testing.T) {
	file, stream := flattenedVmcore(t)
	ref, err := vmcore.Open(bytes.NewReader(file), int64(len(file)))
	require.NoError(t, err)
	for _, tc := range []struct {
		name, format, compress string
		level                  int
		want                   vmcore.Format
	}{
		{name: "elf", format: "elf", want: vmcore.FormatELF},
		{name: "kdump zstd", format: "kdump", compress: "zstd", want: vmcore.FormatKdump},
		{name: "dump level 2", level: 2, want: vmcore.FormatKdump},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := rawTargetImage(t, stream, 5)
			opt, logs := testOptions(t)
			opt.Format, opt.Compress, opt.DumpLevel = tc.format, tc.compress, tc.level
			rep := SaveDevices(context.Background(), []string{path}, opt)
			res := rep.Results[0]
			require.NoError(t, res.Err, logs.String())
			require.Equal(t, OutcomeSaved, res.Outcome)
			assert.Equal(t, tc.want.String(), res.Format)
			got, err := os.ReadFile(res.Path)
			require.NoError(t, err)
			v, err := vmcore.Open(bytes.NewReader(got), int64(len(got)))
			require.NoError(t, err)
			assert.Equal(t, tc.want, v.Format())
			a, b := make([]byte, ref.PageSize()), make([]byte, ref.PageSize())
			var kept int
			for pfn := range ref.Pages() {
				want, err := ref.ReadPage(pfn, a)
				require.NoError(t, err)
				page, err := v.ReadPage(pfn, b)
				zero := bytes.Count(want, []byte{0}) == len(want)
				if tc.level == 2 && zero {
					assert.Error(t, err, "zero page %d left out", pfn)
					continue
				}
				require.NoError(t, err, "PFN %d", pfn)
				require.True(t, bytes.Equal(want, page), "PFN %d", pfn)
				kept++
			}
			assert.Positive(t, kept)
			entries, err := os.ReadDir(filepath.Dir(res.Path))
			require.NoError(t, err)
			for _, e := range entries {
				assert.False(t, strings.HasPrefix(e.Name(), ".flattened-"), "scratch file left: %s", e.Name())
			}
		})
	}
}
