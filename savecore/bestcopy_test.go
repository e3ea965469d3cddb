package savecore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

// readyAfter checks that a device is ready for the next panic.
func readyAfter(t *testing.T, path string, r rehearsal) {
	t.Helper()
	res := openCheck(t, path, r.formatParams())
	assert.Equal(t, diskdump.CheckReady, res.Status, "%s: %s", path, res.Reason)
}

// TestBestCopySeparateCalls: the kernel gave up on device A part-way and
// wrote the complete copy of the same crash to B. Saved by separate
// savecore -D calls in either order, the vmcore kept is the complete one
// and both devices end up ready.
func TestBestCopySeparateCalls(t *testing.T) {
	for _, compress := range []bool{false, true} {
		for _, order := range []string{"A first", "B first"} {
			t.Run(map[bool]string{false: "raw", true: "compressed"}[compress]+"/"+order, func(t *testing.T) {
				full := rehearsal{arch: diskdump.ArchX86_64, compress: compress}
				part := full
				part.cut = 550
				a, _, _ := part.fileImage(t)
				b, m, wr := full.fileImage(t)
				opt, logs := testOptions(t)
				opt.Delete = true
				devs := []string{a, b}
				if order == "B first" {
					devs = []string{b, a}
				}
				var paths []string
				for _, d := range devs {
					rep := SaveDevices(context.Background(), []string{d}, opt)
					res := rep.Results[0]
					require.NoError(t, res.Err)
					assert.True(t, res.Erased)
					paths = append(paths, res.Path)
				}
				assert.Equal(t, paths[0], paths[1], "one vmcore for the crash")
				checkVmcore(t, paths[0], m, wr, false)
				if order == "A first" {
					assert.Contains(t, logs.String(), "replacing its vmcore with this one")
				} else {
					assert.Contains(t, logs.String(), "crash already saved: nothing to write")
				}
				ents, err := os.ReadDir(opt.Dir)
				require.NoError(t, err)
				assert.Len(t, ents, 1, "no second directory")
				readyAfter(t, a, part)
				readyAfter(t, b, full)
			})
		}
	}
}

// TestSameMinuteCrashes: two different crashes in the same minute (a
// panic loop filled device A, the next crash went to B), saved through one
// DEVICE list and by separate calls, with and without -f: both vmcores
// are kept, each correct.
func TestSameMinuteCrashes(t *testing.T) {
	first := rehearsal{arch: diskdump.ArchX86_64, compress: true}
	second := rehearsal{arch: diskdump.ArchX86_64, compress: true, seed: 7, time: crashTime.Add(40 * time.Second)}
	for _, tc := range []struct {
		name     string
		force    bool
		separate bool
	}{{"one list", false, false}, {"one list -f", true, false}, {"separate -f", true, true}, {"separate", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			a, m1, wr1 := first.fileImage(t)
			b, m2, wr2 := second.fileImage(t)
			opt, _ := testOptions(t)
			opt.Delete, opt.Force = true, tc.force
			var results []Result
			if tc.separate {
				for _, d := range []string{a, b} {
					results = append(results, SaveDevices(context.Background(), []string{d}, opt).Results...)
				}
			} else {
				results = SaveDevices(context.Background(), []string{a, b}, opt).Results
			}
			require.Len(t, results, 2)
			for _, r := range results {
				require.NoError(t, r.Err)
				assert.Equal(t, OutcomeSaved, r.Outcome)
			}
			dir := filepath.Join(opt.Dir, crashDir)
			assert.Equal(t, filepath.Join(dir, VmcoreName), results[0].Path)
			assert.Equal(t, filepath.Join(dir+".1", VmcoreName), results[1].Path)
			checkVmcore(t, results[0].Path, m1, wr1, false)
			checkVmcore(t, results[1].Path, m2, wr2, false)
			id1, ok, err := readDumpID(dir)
			require.NoError(t, err)
			require.True(t, ok)
			id2, _, _ := readDumpID(dir + ".1")
			assert.False(t, id1.sameCrash(id2))
		})
	}
}

func TestDumpIDRoundTrip(t *testing.T) {
	a := dumpID{Sec: 1246291200, Frac: 123456789, Uts: diskdump.Utsname{Sysname: "Linux", Nodename: "host\n=\"x\"", Release: "2.6.9"},
		MaxMapnr: 1024, BlockSize: 4096, RAMPages: 928, Pages: 900, Status: "COMPLETED", Device: "/dev/sdb1"}
	b, err := parseDumpID(a.encode())
	require.NoError(t, err)
	assert.Equal(t, a, b)
	for _, bad := range []string{"time", "time=\"x\"", "pages=\"1\"\n", "time=\"1.2\"\nnodename=\"\"\nrelease=\"\"\nmax_mapnr=\"-1\"\nblock_size=\"1\"\npages=\"1\"\n"} {
		_, err := parseDumpID([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, DumpIDName), bytes.Repeat([]byte("x"), maxDumpID+1), 0o600))
	_, ok, err := readDumpID(dir)
	assert.False(t, ok)
	assert.Error(t, err)
}

func FuzzParseDumpID(f *testing.F) {
	f.Add(dumpID{Sec: 1, Uts: diskdump.Utsname{Nodename: "n"}, Pages: 3}.encode())
	f.Add([]byte("time=\"1.2\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseDumpID(b)
		if err != nil {
			return
		}
		again, err := parseDumpID(a.encode())
		require.NoError(t, err)
		require.Equal(t, a, again)
	})
}
