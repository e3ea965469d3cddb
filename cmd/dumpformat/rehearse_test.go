package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/diskdump/kernel"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

func rehearse(t *testing.T, args ...string) (int, rehearsalJSON, string) {
	t.Helper()
	code, stdout, stderr := dumpformat(t, append([]string{"-R", "--json"}, args...)...)
	var out rehearsalJSON
	if code == 0 {
		require.NoError(t, json.Unmarshal([]byte(stdout), &out), "stdout %q stderr %q", stdout, stderr)
	} else {
		assert.Empty(t, stdout)
	}
	return code, out, stderr
}

// readBack opens the partition with the reader and counts its pages.
func readBack(t *testing.T, path string) (*diskdump.Partition, uint64) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	require.NoError(t, err)
	p, err := diskdump.OpenPartition(f, st.Size())
	require.NoError(t, err)
	var n uint64
	for _, err := range p.Pages() {
		require.NoError(t, err)
		n++
	}
	return p, n
}

func TestRehearsal(t *testing.T) {
	tests := []struct {
		name    string
		mib     int64 // partition size
		args    []string
		arch    diskdump.Arch
		outcome string
		status  diskdump.Status
		skipped bool
	}{
		{"default machine", 8, nil, diskdump.ArchX86_64, "completed", diskdump.StatusCompleted, false},
		{"compressed partial", 4, []string{"--compress", "--dump-level", "19", "--seed", "7", "--release", "2.6.9-55.ELsmp", "--nodename", "db1.example.com"},
			diskdump.ArchX86_64, "completed", diskdump.StatusCompleted | diskdump.StatusCompressed, true},
		{"too much RAM, compressed: SHORT_AREA", 1, []string{"--ram", "32Mi", "--compress"}, diskdump.ArchX86_64, "short area", diskdump.StatusShortArea | diskdump.StatusCompressed, false},
		{"i386", 8, []string{"--arch", "i386"}, diskdump.ArchI386, "completed", diskdump.StatusCompleted, false},
		{"ppc64", 8, []string{"--arch", "ppc64"}, diskdump.ArchPPC64, "completed", diskdump.StatusCompleted, false},
		{"ia64", 8, []string{"--arch", "ia64", "--block-order", "1"}, diskdump.ArchIA64, "completed", diskdump.StatusCompleted, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			blocks := tc.mib << 20 / bs
			path := imageFile(t, blocks, 0)
			archArgs := []string{"--arch", tc.arch.String()}
			formatFile(t, path, archArgs...)
			code, out, stderr := rehearse(t, append(tc.args, path)...)
			require.Equal(t, 0, code, stderr)
			assert.Equal(t, tc.outcome, out.Outcome)
			assert.Equal(t, uint32(tc.status), out.Status, out.StatusNames)
			assert.Equal(t, tc.skipped, out.PagesSkipped > 0)
			assert.Positive(t, out.PagesSaved)
			devBlocks := uint64(blocks * bs / int64(tc.arch.PageSize()))
			assert.Equal(t, devBlocks, out.DeviceBlocks)
			assert.LessOrEqual(t, out.WrittenBlocks, devBlocks)
			assert.NotEmpty(t, out.Console)

			// dumpformat -c sees the dump the kernel would leave.
			code, chk := checkJSONOf(t, append(archArgs, path)...)
			require.Equal(t, int(diskdump.CheckHoldsDump), code)
			require.NotNil(t, chk.Header)
			assert.Equal(t, out.WrittenBlocks, uint64(chk.Header.WrittenBlocks))
			assert.Equal(t, out.Status, chk.Header.Status)
			assert.Equal(t, tc.arch.Machine(), chk.Header.Utsname["machine"])
			assert.Equal(t, diskdump.LayoutOf(tc.arch).String(), chk.Header.Layout)

			// The reader recovers every page the writer saved.
			p, n := readBack(t, path)
			assert.Equal(t, out.PagesSaved, n)
			assert.Equal(t, out.MaxPFN, uint64(p.Header().MaxMapnr))
		})
	}
}

func TestRehearsalDefaultRAM(t *testing.T) {
	const blocks = 8 << 20 / bs
	path := imageFile(t, blocks, 0)
	formatFile(t, path)
	code, out, stderr := rehearse(t, path)
	require.Equal(t, 0, code, stderr)
	// The largest machine in whole MiB whose uncompressed dump fits.
	fits := func(ram uint64) bool {
		m := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: diskdump.ArchX86_64, MemBytes: ram})
		return uncompressedBlocks(m, bs, false) <= blocks
	}
	assert.True(t, fits(out.RAMBytes))
	assert.False(t, fits(out.RAMBytes+1<<20))
	assert.Equal(t, uint64(0), out.RAMBytes%(1<<20))
	assert.Greater(t, out.RAMBytes, uint64(6<<20))
	assert.Equal(t, "completed", out.Outcome)
	assert.Zero(t, out.PagesDisregarded)

	// Text output and the header fields given on the command line.
	formatFile(t, path)
	code, stdout, stderr := dumpformat(t, "-R", "--nodename", "web7", "--release", "2.6.9-42.ELsmp", path)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "rehearsal dump on "+path+": COMPLETED (completed), synthetic x86_64 machine with")
	assert.Contains(t, stdout, "pages:  ")
	code, chk := checkJSONOf(t, path)
	require.Equal(t, 1, code)
	assert.Equal(t, "web7", chk.Header.Utsname["nodename"])
	assert.Equal(t, "2.6.9-42.ELsmp", chk.Header.Utsname["release"])
}

func TestRehearsalRefused(t *testing.T) {
	path := imageFile(t, 2100, 0)
	code, _, stderr := rehearse(t, "--ram", "4M", path)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, path+": the kernel would not dump here")
	assert.Equal(t, make([]byte, 2100*bs), readFile(t, path), "nothing written")

	// In strict mode (uncompressed, dump_level 0) the kernel samples
	// total_blocks without clamping: a device smaller than the dump is
	// refused (doc/FORMAT.md §3.2).
	formatFile(t, path)
	code, _, stderr = rehearse(t, "--ram", "16M", path)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "a full dump of 16.0 MiB of RAM needs")
	assert.Contains(t, stderr, "use --compress, --dump-level or a smaller --ram")
	assert.Equal(t, 0, func() int { c, _ := checkJSONOf(t, path); return c }(), "nothing written")

	// Too small for even a 1 MiB machine.
	small := imageFile(t, 40, 0)
	formatFile(t, small)
	code, _, stderr = rehearse(t, small)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "cannot hold the dump of a 1 MiB machine")
}

func TestRehearsalSwap(t *testing.T) {
	const blocks = 8 << 20 / bs
	path := imageFile(t, blocks, 0)
	mkswap(t, path)
	block0 := readFile(t, path)[:bs]
	code, out, stderr := rehearse(t, path)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "completed", out.Outcome)
	code, _ = checkJSONOf(t, path)
	assert.Equal(t, int(diskdump.CheckSwapDump), code)
	assert.Equal(t, block0, readFile(t, path)[:bs], "the swap header survives")
}

func TestRehearsalThenFormat(t *testing.T) {
	path := imageFile(t, 2100, 0)
	formatFile(t, path)
	code, _, stderr := rehearse(t, "--ram", "4M", path)
	require.Equal(t, 0, code, stderr)
	code, _, stderr = dumpformat(t, path)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "holds a dump, run savecore first")
	code, _, stderr = dumpformat(t, "-f", path)
	require.Equal(t, 0, code, stderr)
	code, _ = checkJSONOf(t, path)
	assert.Equal(t, 0, code)
}

func TestDumpOfAnotherArchIsKept(t *testing.T) {
	// An ia64 dump (16 KiB blocks) looked at with the host's 4 KiB
	// parameters: the first 4 KiB of its block 0 pass for a valid block 0,
	// so only the checker's search for other block sizes protects it.
	path := imageFile(t, 2100, 0)
	formatFile(t, path, "--arch", "ia64")
	code, _, stderr := rehearse(t, "--arch", "ia64", "--ram", "4M", path)
	require.Equal(t, 0, code, stderr)
	before := readFile(t, path)
	for _, args := range [][]string{{}, {"-a"}} {
		code, _, stderr = dumpformat(t, append(args, path)...)
		assert.Equal(t, 255, code)
		assert.Contains(t, stderr, "holds a dump, run savecore first")
	}
	assert.Equal(t, before, readFile(t, path))
	code, out := checkJSONOf(t, path)
	assert.Equal(t, int(diskdump.CheckHoldsDump), code)
	require.NotNil(t, out.Header)
	assert.Equal(t, int32(16384), out.Header.BlockSize)
}

func TestParseRAM(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"256M", 256 << 20}, {"256Mi", 256 << 20}, {"1G", 1 << 30}, {"1Gi", 1 << 30}, {"1.5G", 3 << 29},
		{"512MB", 512 << 20}, {"4K", 4096}, {"10K", 8192}, {"4096", 0}, {"5000", 0}, {"0", 0}, {"1", 0}, {"x", 0}, {"-1G", 0}, {"1P", 0},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseRAM(tc.in, bs)
			if tc.want == 0 {
				assert.ErrorIs(t, err, errUsage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	path := imageFile(t, 100, 0)
	code, _, stderr := dumpformat(t, "-R", "--ram", "lots", path)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, `--ram "lots"`)
	assert.Contains(t, stderr, "see dumpformat -h")
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
}

// writeELFCore writes a minimal little-endian ELF64 x86_64 core file whose
// PT_LOAD segments hold the given physical memory, as QEMU's
// dump-guest-memory would.
func writeELFCore(t *testing.T, path string, segs map[uint64][]byte) {
	t.Helper()
	paddrs := make([]uint64, 0, len(segs))
	for p := range segs {
		paddrs = append(paddrs, p)
	}
	slices.Sort(paddrs)
	const ehsize, phentsize = 64, 56
	hdr := make([]byte, ehsize+phentsize*len(paddrs))
	copy(hdr, "\x7fELF")
	hdr[4], hdr[5], hdr[6] = 2, 1, 1 // ELFCLASS64, ELFDATA2LSB, EV_CURRENT
	le.PutUint16(hdr[16:], 4)        // ET_CORE
	le.PutUint16(hdr[18:], 62)       // EM_X86_64
	le.PutUint32(hdr[20:], 1)
	le.PutUint64(hdr[32:], ehsize)
	le.PutUint16(hdr[52:], ehsize)
	le.PutUint16(hdr[54:], phentsize)
	le.PutUint16(hdr[56:], uint16(len(paddrs)))
	off := uint64(len(hdr))
	var data []byte
	for i, p := range paddrs {
		ph := hdr[ehsize+i*phentsize:]
		le.PutUint32(ph[0:], 1) // PT_LOAD
		le.PutUint32(ph[4:], 6) // PF_R|PF_W
		le.PutUint64(ph[8:], off)
		le.PutUint64(ph[16:], 0xffff880000000000+p)
		le.PutUint64(ph[24:], p)
		le.PutUint64(ph[32:], uint64(len(segs[p])))
		le.PutUint64(ph[40:], uint64(len(segs[p])))
		data = append(data, segs[p]...)
		off += uint64(len(segs[p]))
	}
	require.NoError(t, os.WriteFile(path, append(hdr, data...), 0o644))
}

func TestRehearsalELFCore(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	mem := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	low, high := mem(640<<10), mem(3<<20)
	core := filepath.Join(t.TempDir(), "core.elf")
	writeELFCore(t, core, map[uint64][]byte{0: low, 1 << 20: high})

	path := imageFile(t, 8<<20/bs, 0)
	formatFile(t, path)
	code, out, stderr := rehearse(t, "-m", core, path)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "memory of "+core, out.Source)
	assert.Equal(t, uint64(4<<20/bs), out.MaxPFN)
	assert.Equal(t, uint64((640<<10+3<<20)/bs), out.PagesSaved)
	assert.Zero(t, out.RAMBytes)

	p, n := readBack(t, path)
	assert.Equal(t, out.PagesSaved, n)
	for pg, err := range p.Pages() {
		require.NoError(t, err)
		var want []byte
		switch a := pg.PFN * bs; {
		case a < 640<<10:
			want = low[a : a+bs]
		case a >= 1<<20:
			want = high[a-1<<20 : a-1<<20+bs]
		default:
			t.Fatalf("PFN %d in the hole was dumped", pg.PFN)
		}
		if !bytes.Equal(want, pg.Data) {
			t.Fatalf("PFN %d: dumped page differs from the core's", pg.PFN)
		}
	}

	code, _, stderr = dumpformat(t, "-R", "-m", filepath.Join(t.TempDir(), "missing.elf"), path)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "missing.elf")
	code, _, stderr = dumpformat(t, "-R", "-m", path, path)
	assert.Equal(t, 255, code, "a partition image is not an ELF core")
	assert.Contains(t, stderr, "ELF")
}

// TestRehearsalRefusedEarly: what the kernel cannot do is refused before
// anything is written, with the way out.
func TestRehearsalRefusedEarly(t *testing.T) {
	path := imageFile(t, 51200, 0)
	formatFile(t, path)
	before := readFile(t, path)
	long := strings.Repeat("n", 65)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--ram", "16T"}, "cannot hold the headers and bitmaps"},
		{[]string{"--ram", "1G"}, "use --compress, --dump-level or a smaller --ram"},
		{[]string{"--ram", "5000"}, "give a unit"},
		{[]string{"--total-blocks", "5"}, "--total-blocks cannot be combined with -R"},
		{[]string{"--nodename", long}, "--nodename: 65 bytes"},
		{[]string{"--release", long}, "--release: 65 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			start := time.Now()
			code, _, stderr := dumpformat(t, append(append([]string{"-R"}, tc.args...), path)...)
			assert.Equal(t, 255, code)
			assert.Contains(t, stderr, tc.want)
			assert.Less(t, time.Since(start), 5*time.Second, "refused at once")
		})
	}
	assert.Equal(t, before, readFile(t, path), "nothing written")
}
