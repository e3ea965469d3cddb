package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/fixtures"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

const bs = 4096

var le = binary.LittleEndian

func TestMain(m *testing.M) {
	// The host's diskdump module (if any) must not change the defaults.
	procDiskdumpPath = "/nonexistent/proc/diskdump"
	sysParamsDir = "/nonexistent/sys/module/diskdump/parameters"
	os.Exit(m.Run())
}

// dumpformat runs the command and returns its exit code, stdout and stderr.
func dumpformat(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// imageFile creates a sparse image of blocks blocks (plus extra bytes).
func imageFile(t *testing.T, blocks int64, extra int64) string {
	t.Helper()
	return memoryImage(t, blocks*bs+extra)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func damageBlock(t *testing.T, path string, blk int64) {
	t.Helper()
	writeAt(t, path, []byte("garbage!"), blk*bs+100)
}

func formatFile(t *testing.T, path string, args ...string) {
	t.Helper()
	code, _, stderr := dumpformat(t, append(append([]string{"-f", "-q"}, args...), path)...)
	require.Equal(t, 0, code, stderr)
}

func dumpHeader(t *testing.T, deviceBlocks uint32) []byte {
	t.Helper()
	h := &diskdump.Header{Layout: diskdump.LayoutOf(diskdump.ArchX86_64), Signature: diskdump.DumpSignature,
		Utsname: diskdump.Utsname{Sysname: "Linux", Nodename: "crashed.example.com", Release: "2.6.9-89.ELsmp", Version: "#1 SMP", Machine: "x86_64"},
		Sec:     1246291200, Frac: 123456789, Status: diskdump.StatusShortArea | diskdump.StatusCompressed, BlockSize: bs, SubHdrSize: 1,
		BitmapBlocks: 2, MaxMapnr: 8192, TotalRAMBlocks: 8000, DeviceBlocks: deviceBlocks, WrittenBlocks: deviceBlocks - 3,
		NrCPUs: 2, CurrentCPU: 1, Tasks: []uint64{0xffff0000, 0xffff1000}}
	b, err := h.EncodeBlock(bs)
	require.NoError(t, err)
	return b
}

func mkswap(t *testing.T, path string) {
	t.Helper()
	blockdevtest.Mkfs(t, "mkswap", path)
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		t.Run(arg, func(t *testing.T) {
			code, stdout, stderr := dumpformat(t, arg)
			assert.Equal(t, 0, code)
			assert.Empty(t, stderr)
			assert.Contains(t, stdout, "dumpformat [-v|-q] [-i] [[-a] [-p] [-f] [-n] | -c] [--json]")
			assert.Contains(t, stdout, "dumpformat -V")
			assert.Contains(t, stdout, "dumpformat -R [-v|-q] [-m CORE.elf]")
			assert.Contains(t, stdout, "8    DEVICE stayed locked")
			for _, line := range []string{
				"0    done", "7    DEVICE is mounted or in use", "255  any other error",
				"0    ready", "1    holds a dump", "2    needs initial format", "3    needs format",
				"4    not suitable", "5    swap partition", "6    swap partition holding a dump", "7    mounted or in use",
			} {
				assert.Contains(t, stdout, line)
			}
			// Every flag is documented.
			var o options
			fs := newFlagSet(&o, new(string))
			fs.VisitAll(func(f *flag.Flag) {
				prefix := "  -"
				if len(f.Name) > 1 {
					prefix = "--"
				}
				assert.Contains(t, stdout, prefix+f.Name+" ", "flag %s", f.Name)
			})
		})
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := dumpformat(t, "-V")
	assert.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(stdout, "dumpformat (dumpkit) "), stdout)
}

func TestUsageErrors(t *testing.T) {
	img := imageFile(t, 100, 0)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no device", nil, "exactly one DEVICE"},
		{"two devices", []string{img, img}, "exactly one DEVICE"},
		{"unknown flag", []string{"-x", img}, "-x"},
		{"check and initial", []string{"-c", "-f", img}, "-c cannot be combined with -f"},
		{"check and all", []string{"-c", "-a", img}, "-c cannot be combined with -a"},
		{"check and dry run", []string{"-c", "-n", img}, "-c cannot be combined with -n"},
		{"json without -c", []string{"--json", img}, "--json needs"},
		{"bad arch", []string{"--arch", "sparc", img}, "--arch"},
		{"alias arch", []string{"--arch", "amd64", img}, "--arch"},
		{"-m without -R", []string{"-m", "core", img}, "-m needs -R"},
		{"ram without -R", []string{"--ram", "1G", img}, "-ram needs -R"},
		{"block order", []string{"--block-order", "31", img}, "--block-order"},
		{"sample rate", []string{"--sample-rate", "-2", img}, "--sample-rate"},
		{"bad number", []string{"--sample-rate", "x", img}, "sample-rate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := dumpformat(t, tc.args...)
			assert.Equal(t, 255, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
			assert.Contains(t, stderr, "see dumpformat -h")
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		})
	}
	assert.Equal(t, make([]byte, 100*bs), readFile(t, img), "nothing written")
}

// sampleImage unpacks a golden sample partition into a temporary file.
func sampleImage(t *testing.T, name string) (string, map[string]any) {
	t.Helper()
	dir := fixtures.SampleDir()
	f, err := os.Open(filepath.Join(dir, name+".part.gz"))
	if os.IsNotExist(err) {
		t.Skipf("golden samples absent: %v", err)
	}
	require.NoError(t, err)
	defer f.Close()
	path := memoryImage(t, 0)
	out, err := os.Create(path)
	require.NoError(t, err)
	// The gzip tool is much faster than compress/gzip under -race.
	if gz, err := exec.LookPath("gzip"); err == nil {
		cmd := exec.Command(gz, "-dc")
		cmd.Stdin, cmd.Stdout = f, out
		require.NoError(t, cmd.Run())
	} else {
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		_, err = io.Copy(out, zr)
		require.NoError(t, err)
	}
	require.NoError(t, out.Close())
	var meta map[string]any
	require.NoError(t, json.Unmarshal(readFile(t, filepath.Join(dir, name+".json")), &meta))
	return path, meta
}

func checkJSONOf(t *testing.T, args ...string) (int, checkJSON) {
	t.Helper()
	code, stdout, stderr := dumpformat(t, append([]string{"-c", "--json"}, args...)...)
	var out checkJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &out), "stdout %q stderr %q", stdout, stderr)
	assert.Equal(t, code, out.Status)
	assert.NotEmpty(t, out.Reason)
	return code, out
}

func TestCheck(t *testing.T) {
	const blocks = 1100
	tests := []struct {
		name    string
		blocks  int64
		prepare func(t *testing.T, path string)
		args    []string
		want    diskdump.CheckStatus
	}{
		{"zeroed", blocks, nil, nil, diskdump.CheckNeedsInitial},
		{"formatted", blocks, func(t *testing.T, p string) { formatFile(t, p) }, nil, diskdump.CheckReady},
		{"sampled block damaged", blocks, func(t *testing.T, p string) { formatFile(t, p); damageBlock(t, p, 1024) }, nil, diskdump.CheckNeedsFormat},
		{"unsampled block damaged", blocks, func(t *testing.T, p string) { formatFile(t, p); damageBlock(t, p, 1023) }, nil, diskdump.CheckReady},
		{"hand-written dump header", blocks, func(t *testing.T, p string) {
			formatFile(t, p)
			writeAt(t, p, dumpHeader(t, blocks), bs)
		}, nil, diskdump.CheckHoldsDump},
		{"after a rehearsal dump", blocks, func(t *testing.T, p string) {
			formatFile(t, p)
			code, _, stderr := dumpformat(t, "-R", "-q", "--ram", "2M", p)
			require.Equal(t, 0, code, stderr)
		}, nil, diskdump.CheckHoldsDump},
		{"mkswap", blocks, func(t *testing.T, p string) { mkswap(t, p) }, nil, diskdump.CheckSwap},
		{"swap holding a dump", blocks, func(t *testing.T, p string) {
			mkswap(t, p)
			writeAt(t, p, dumpHeader(t, blocks), bs)
		}, nil, diskdump.CheckSwapDump},
		{"too small", 4, func(t *testing.T, p string) { formatFile(t, p) }, nil, diskdump.CheckUnsuitable},
		{"smaller than blocks 0-2", 2, nil, nil, diskdump.CheckUnsuitable},
		{"too small for total_blocks", blocks, func(t *testing.T, p string) { formatFile(t, p) }, []string{"--total-blocks", "100000000"}, diskdump.CheckUnsuitable},
		{"formatted as ppc64, checked as x86_64", blocks, func(t *testing.T, p string) { formatFile(t, p, "--arch", "ppc64") }, nil, diskdump.CheckNeedsInitial},
		{"formatted as ppc64, checked as ppc64", blocks, func(t *testing.T, p string) { formatFile(t, p, "--arch", "ppc64") }, []string{"--arch", "ppc64"}, diskdump.CheckReady},
		{"ia64 16 KiB blocks", blocks, func(t *testing.T, p string) { formatFile(t, p, "--arch", "ia64") }, []string{"--arch", "ia64"}, diskdump.CheckReady},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := imageFile(t, tc.blocks, 0)
			if tc.prepare != nil {
				tc.prepare(t, path)
			}
			before := sha256.Sum256(readFile(t, path))
			code, out := checkJSONOf(t, append(tc.args, path)...)
			assert.Equal(t, int(tc.want), code, out.Reason)
			assert.Equal(t, tc.want.String(), out.StatusText)
			assert.Equal(t, path, out.Device)
			// Without --json: the same exit code, nothing on stdout.
			code2, stdout, stderr := dumpformat(t, append(append([]string{"-c"}, tc.args...), path)...)
			assert.Equal(t, code, code2)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, path)
			assert.Equal(t, before, sha256.Sum256(readFile(t, path)), "-c writes nothing")
		})
	}
}

func TestCheckUnreadable(t *testing.T) {
	dir := t.TempDir()
	for name, path := range map[string]string{"missing": filepath.Join(dir, "nope"), "directory": dir, "char device": "/dev/null"} {
		t.Run(name, func(t *testing.T) {
			code, out := checkJSONOf(t, path)
			assert.Equal(t, int(diskdump.CheckUnsuitable), code)
			assert.Nil(t, out.Header)
		})
	}
}

func TestCheckSample(t *testing.T) {
	path, meta := sampleImage(t, "raw-x86_64-dl0-bo2")
	hdr := meta["header"].(map[string]any)
	code, out := checkJSONOf(t, path)
	require.Equal(t, int(diskdump.CheckHoldsDump), code)
	require.NotNil(t, out.Header)
	h := out.Header
	assert.Equal(t, "DISKDUMP", h.Signature)
	assert.Equal(t, hdr["written_blocks"], float64(h.WrittenBlocks))
	assert.Equal(t, hdr["total_ram_blocks"], float64(h.TotalRAMBlocks))
	assert.Equal(t, hdr["max_mapnr"], float64(h.MaxMapnr))
	assert.Equal(t, hdr["device_blocks"], float64(h.DeviceBlocks))
	assert.Equal(t, hdr["status"], float64(h.Status))
	assert.Equal(t, hdr["utsname"].(map[string]any)["nodename"], h.Utsname["nodename"])
	assert.Equal(t, hdr["timestamp"].(map[string]any)["sec"], float64(h.Timestamp["sec"]))
	assert.Equal(t, "2009-06-29T16:00:00.123456789Z", h.Time)
	assert.True(t, h.Complete)
	assert.Equal(t, meta["geometry"].(map[string]any)["min_device_blocks_for_complete_dump"], float64(h.NeededBlocks))
	assert.Equal(t, 4, len(h.Tasks))
	geo := meta["geometry"].(map[string]any)
	assert.Equal(t, geo["header_blocks"], float64(h.HeaderBlocks))
	assert.Equal(t, geo["data_start"], float64(h.FirstDataBlock))

	code, stdout, _ := dumpformat(t, "-c", "-v", path)
	assert.Equal(t, 1, code)
	for _, want := range []string{
		path + ": holds a dump (1)",
		"dump time:   2009-06-29 16:00:00 UTC",
		"utsname:     Linux oracle.example.com 2.6.9-89.ELsmp",
		"status:      COMPLETED (0x0): complete, uncompressed",
		"pages:       3899 RAM pages, max_mapnr 4096, 4 CPUs",
		"blocks:      3903 written, 3903 needed for a full dump, device 3908",
	} {
		assert.Contains(t, stdout, want)
	}

	cpath, _ := sampleImage(t, "cmp-x86_64-dl0-bo2")
	code, out = checkJSONOf(t, cpath)
	assert.Equal(t, 1, code)
	require.NotNil(t, out.Header)
	assert.True(t, out.Header.Compressed)
	assert.Equal(t, "COMPLETED|COMPRESSED", out.Header.StatusNames)
}

func TestCheckVerbose(t *testing.T) {
	path := imageFile(t, 1100, 0)
	formatFile(t, path)
	damageBlock(t, path, 1099)
	code, stdout, stderr := dumpformat(t, "-c", "-v", "-i", path)
	assert.Equal(t, 3, code)
	assert.Contains(t, stdout, path+": needs format (3)")
	assert.Contains(t, stdout, "first: block 1099")
	assert.Contains(t, stdout, "11 sampled blocks checked, 1 bad")
	assert.Contains(t, stderr, "-i accepted and ignored")

	writeAt(t, path, dumpHeader(t, 1100), bs)
	code, stdout, _ = dumpformat(t, "-c", "-v", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "status:      SHORT_AREA|COMPRESSED (0xc): incomplete, compressed")
	assert.Contains(t, stdout, "blocks:      1097 written, 8005 needed for a full dump, device 1100")
}

// assertSignatures checks every block of the image: blocks in want (or all
// when want is nil) must carry their signature, the others must not.
func assertSignatures(t *testing.T, path string, fp diskdump.FormatParams, want func(blk uint64) bool) {
	t.Helper()
	img := readFile(t, path)
	b := fp.BlockSize
	for blk := uint64(0); blk < uint64(len(img)/b); blk++ {
		ok := diskdump.IsSignatureBlock(img[int(blk)*b:int(blk+1)*b], blk, fp.Order)
		if ok != want(blk) {
			t.Fatalf("block %d: signature %v, want %v", blk, ok, want(blk))
		}
	}
}

var defaultFP = diskdump.FormatParams{BlockSize: bs, Order: le, BlockOrder: 2, SampleRate: 8}

func TestInitialFormat(t *testing.T) {
	tests := []struct {
		name string
		args []string
		fp   diskdump.FormatParams
	}{
		{"x86_64", nil, defaultFP},
		{"i386", []string{"--arch", "i386"}, defaultFP},
		{"ppc64", []string{"--arch", "ppc64"}, diskdump.FormatParams{BlockSize: bs, Order: binary.BigEndian}},
		{"ia64", []string{"--arch", "ia64"}, diskdump.FormatParams{BlockSize: 16384, Order: le}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := imageFile(t, 2100, 1000)
			writeAt(t, path, []byte("tail"), 2100*bs+10)
			code, stdout, stderr := dumpformat(t, append(append([]string{"-f"}, tc.args...), path)...)
			require.Equal(t, 0, code, stderr)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, path+": formatted (initial")
			assertSignatures(t, path, tc.fp, func(uint64) bool { return true })
			img := readFile(t, path)
			assert.Equal(t, "tail", string(img[2100*bs+10:2100*bs+14]), "bytes past the last whole block untouched")
		})
	}
}

func TestNormalFormat(t *testing.T) {
	const blocks = 2100
	for _, all := range []bool{false, true} {
		name := "sampled"
		args := []string{}
		if all {
			name, args = "all", []string{"-a"}
		}
		t.Run(name, func(t *testing.T) {
			path := imageFile(t, blocks, 0)
			formatFile(t, path)
			// Damage every block; bytes 4-7 of block 0 are not checked by
			// the kernel, so block 0 stays valid but shows whether it is
			// rewritten.
			img := readFile(t, path)
			for blk := 1; blk < blocks; blk++ {
				img[blk*bs+200] ^= 0xff
			}
			copy(img[4:8], "XXXX")
			require.NoError(t, os.WriteFile(path, img, 0o644))

			code, _, stderr := dumpformat(t, append(args, path)...)
			require.Equal(t, 0, code, stderr)
			want := map[uint64]bool{}
			for c := range diskdump.NormalFormatBlocks(blocks, defaultFP) {
				for b := c.Blk; b < c.Blk+c.N; b++ {
					want[b] = true
				}
			}
			require.Len(t, want, 3+4+4+4) // chunks 0 (minus block 0), 1024, 2048, tail 2096
			assertSignatures(t, path, defaultFP, func(blk uint64) bool { return blk != 0 && (all || want[blk]) })
			assert.Equal(t, "XXXX", string(readFile(t, path)[4:8]), "block 0 not written")
			code, _ = checkJSONOf(t, path)
			assert.Equal(t, 0, code)
		})
	}
}

func TestNormalFormatUsesModuleParams(t *testing.T) {
	const blocks = 3000
	dir := t.TempDir()
	proc := filepath.Join(dir, "diskdump")
	require.NoError(t, os.WriteFile(proc, []byte("# sample_rate: 6\n# block_order: 1\n# fallback_on_err: 1\n# allow_risky_dumps: 1\n# dump_level: 0\n# compress: 0\n# total_blocks: 2500\n#\nsdb1 63 24000\n"), 0o644))
	sys := filepath.Join(dir, "parameters")
	require.NoError(t, os.Mkdir(sys, 0o755))
	for k, v := range map[string]string{"sample_rate": "4294967295\n", "block_order": "3\n", "total_blocks": "1000\n", "compress": "0\n"} {
		require.NoError(t, os.WriteFile(filepath.Join(sys, k), []byte(v), 0o644))
	}
	path := imageFile(t, blocks, 0)
	formatFile(t, path)

	tests := []struct {
		name string
		proc string
		sys  string
		args []string
		want diskdump.FormatParams
		from string
	}{
		{"defaults", "/nonexistent", "/nonexistent", nil, defaultFP, "defaults"},
		{"proc", proc, sys, nil, diskdump.FormatParams{BlockSize: bs, Order: le, BlockOrder: 1, SampleRate: 6, TotalBlocks: 2500}, proc},
		{"sysfs", "/nonexistent", sys, nil, diskdump.FormatParams{BlockSize: bs, Order: le, BlockOrder: 3, SampleRate: -1, TotalBlocks: 1000}, sys},
		{"flags win", proc, sys, []string{"--block-order", "0", "--sample-rate", "5", "--total-blocks", "0"}, diskdump.FormatParams{BlockSize: bs, Order: le, BlockOrder: 0, SampleRate: 5}, proc},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			procDiskdumpPath, sysParamsDir = tc.proc, tc.sys
			t.Cleanup(func() {
				procDiskdumpPath = "/nonexistent/proc/diskdump"
				sysParamsDir = "/nonexistent/sys/module/diskdump/parameters"
			})
			code, stdout, stderr := dumpformat(t, append(append([]string{"-n", "--json"}, tc.args...), path)...)
			require.Equal(t, 0, code, stderr)
			var p planJSON
			require.NoError(t, json.Unmarshal([]byte(stdout), &p))
			assert.Equal(t, tc.want.BlockOrder, p.BlockOrder)
			assert.Equal(t, tc.want.SampleRate, p.SampleRate)
			assert.Equal(t, tc.want.TotalBlocks, p.TotalBlocks)
			var want [][2]uint64
			var n uint64
			for c := range diskdump.NormalFormatBlocks(blocks, tc.want) {
				want = append(want, [2]uint64{c.Blk, c.N})
				n += c.N
			}
			assert.Equal(t, want, p.Chunks)
			assert.Equal(t, n, p.WriteBlocks)
			assert.Equal(t, "normal", p.Mode)

			code, out := checkJSONOf(t, append(tc.args, path)...)
			assert.Equal(t, 0, code)
			assert.Equal(t, tc.from, out.Params)
		})
	}
}

func TestRefusals(t *testing.T) {
	const blocks = 2100
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    string
	}{
		{"zeroed: needs initial format", func(t *testing.T, p string) {}, "needs initial format (dumpformat -f)"},
		{"ext4", func(t *testing.T, p string) { blockdevtest.MakeExt4(t, p) }, "carries ext4 at offset 0x438"},
		{"ext4 over a formatted device", func(t *testing.T, p string) { formatFile(t, p); blockdevtest.MakeExt4(t, p) }, "carries ext4"},
		{"mkswap", func(t *testing.T, p string) { mkswap(t, p) }, "carries swap at offset 0xff6"},
		{"LVM", func(t *testing.T, p string) {
			lvm := make([]byte, 512)
			copy(lvm, "LABELONE")
			le.PutUint64(lvm[8:], 1)
			copy(lvm[24:], "LVM2 001")
			writeAt(t, p, lvm, 512)
		}, "carries LVM2_member"},
		{"holds a dump", func(t *testing.T, p string) {
			formatFile(t, p)
			writeAt(t, p, dumpHeader(t, blocks), bs)
		}, "holds a dump, run savecore first"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := imageFile(t, blocks, 0)
			tc.prepare(t, path)
			before := sha256.Sum256(readFile(t, path))
			for _, args := range [][]string{{}, {"-a"}, {"-n"}} {
				code, stdout, stderr := dumpformat(t, append(args, path)...)
				assert.Equal(t, 255, code, "%v", args)
				assert.Empty(t, stdout)
				assert.Contains(t, stderr, path)
				assert.Contains(t, stderr, tc.want)
				assert.Equal(t, before, sha256.Sum256(readFile(t, path)), "nothing written (%v)", args)
			}
			// -f overrides the refusal and says what it overwrites.
			code, _, stderr := dumpformat(t, "-f", path)
			require.Equal(t, 0, code, stderr)
			assertSignatures(t, path, defaultFP, func(uint64) bool { return true })
			code, _ = checkJSONOf(t, path)
			assert.Equal(t, 0, code)
		})
	}
}

func TestDryRun(t *testing.T) {
	const blocks = 2100
	path := imageFile(t, blocks, 0)
	for _, args := range [][]string{{"-f"}, {"-f", "-v"}, {"-f", "--json"}} {
		code, stdout, stderr := dumpformat(t, append(append([]string{"-n"}, args...), path)...)
		require.Equal(t, 0, code, stderr)
		assert.NotEmpty(t, stdout)
	}
	assert.Equal(t, make([]byte, blocks*bs), readFile(t, path), "-n writes nothing")

	code, stdout, _ := dumpformat(t, "-n", "-f", path)
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "would format "+path+" (initial): 2100 of 2100 blocks of 4096 bytes (8.2 MiB) in 1 chunks")

	formatFile(t, path)
	damageBlock(t, path, 1024)
	before := readFile(t, path)
	code, stdout, _ = dumpformat(t, "-n", "-v", path)
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "(normal): 15 of 2100 blocks")
	assert.Contains(t, stdout, "blocks 1-3\n  blocks 1024-1027\n  blocks 2048-2051\n  blocks 2096-2099\n")
	code, stdout, _ = dumpformat(t, "-n", "-a", "--json", path)
	assert.Equal(t, 0, code)
	var p planJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &p))
	assert.Equal(t, "all", p.Mode)
	assert.Equal(t, uint64(blocks-1), p.WriteBlocks)
	assert.Equal(t, [][2]uint64{{1, blocks - 1}}, p.Chunks)
	assert.Equal(t, before, readFile(t, path), "-n writes nothing")
}

func TestTooSmallToFormat(t *testing.T) {
	path := imageFile(t, 2, 0)
	code, _, stderr := dumpformat(t, "-f", path)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "cannot hold blocks 0-2")
}

// Test64GiBSparse normal-formats a 64 GiB sparse file and counts the
// blocks that got allocated: one 4-block chunk per 4 MiB.
func Test64GiBSparse(t *testing.T) {
	const size = 64 << 30
	path := memoryImage(t, size)
	b0 := make([]byte, bs)
	diskdump.FillSignature(b0, 0, le)
	writeAt(t, path, b0, 0)
	code, _, stderr := dumpformat(t, path)
	require.Equal(t, 0, code, stderr)
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(path, &st))
	allocated := st.Blocks * 512 / bs
	if allocated > size/bs/64 {
		t.Skipf("the filesystem of %s does not keep files sparse (%d blocks allocated)", path, allocated)
	}
	// Block 0 (written above), 16384 grid chunks of 4 blocks minus block 0,
	// and the device's tail chunk: 1/256 of the device plus 4 blocks.
	// The filesystem adds extent-tree blocks for the 16385 extents (about
	// 50 on ext4): allow 1%.
	assert.LessOrEqual(t, allocated, int64(size/bs/256+4)*101/100, "blocks allocated")
	assert.GreaterOrEqual(t, allocated, int64(size/bs/256+4))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, bs)
	for _, blk := range []int64{1, 2, 3, 1024, 1027, size/bs - 1024, size/bs - 4, size/bs - 1} {
		_, err := f.ReadAt(b, blk*bs)
		require.NoError(t, err)
		assert.True(t, diskdump.IsSignatureBlock(b, uint64(blk), le), "block %d", blk)
	}
	for _, blk := range []int64{4, 1023, 1028, size/bs - 5} {
		_, err := f.ReadAt(b, blk*bs)
		require.NoError(t, err)
		assert.Equal(t, make([]byte, bs), b, "block %d not written", blk)
	}
}

// memoryImage is a sparse file on tmpfs (/dev/shm) when there is one, else
// in the test's temporary directory. tmpfs counts allocated blocks exactly
// and its fsync costs nothing, so tests that format do not wait for a
// shared disk.
func memoryImage(t *testing.T, size int64) string {
	t.Helper()
	var fs syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if err := syscall.Statfs("/dev/shm", &fs); err != nil || fs.Type != tmpfsMagic {
		return blockdevtest.Image(t, size)
	}
	dir, err := os.MkdirTemp("/dev/shm", "dumpformat-test-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "disk.img")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	require.NoError(t, os.Truncate(path, size))
	return path
}

func TestProgress(t *testing.T) {
	path := imageFile(t, 3000, 0)
	code, stdout, stderr := dumpformat(t, "-f", "-p", path)
	require.Equal(t, 0, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "\r"+path+": ")
	assert.Regexp(t, `3000/3000 blocks \(100\.0%\), [0-9.]+ [KMG]iB/s\s*\n`, stderr)

	code, _, stderr = dumpformat(t, "-f", "-q", path)
	require.Equal(t, 0, code)
	assert.Empty(t, stderr, "-q: nothing but errors")
}

func TestStatusSignal(t *testing.T) {
	// The test catches SIGUSR1 itself too, so a signal that arrives before
	// or after run listens cannot kill the test binary.
	mine := make(chan os.Signal, 16)
	signal.Notify(mine, statusSignal)
	defer signal.Stop(mine)
	path := imageFile(t, 64<<20/bs, 0)
	done := make(chan struct{})
	var stderr bytes.Buffer
	var code int
	go func() {
		defer close(done)
		code = run([]string{"-f", path}, io.Discard, &stderr)
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
		}
	}
	require.Equal(t, 0, code)
	// The format may be too quick for any signal on a fast disk; it is
	// 16384 blocks, so normally several arrive.
	if !strings.Contains(stderr.String(), "blocks (") {
		t.Skip("format finished before a SIGUSR1 was handled")
	}
	assert.Regexp(t, `(?m)^dumpformat: .*: \d+/16384 blocks \(\d+\.\d%\)(, [0-9.]+ [KMG]?i?B/s(, ETA [0-9hms.]+)?)?$`, stderr.String())
}

func TestFormattedBlock0IsNotProbed(t *testing.T) {
	// Probe must not mistake a diskdump signature for something to protect.
	for _, a := range diskdump.Arches {
		b := make([]byte, 128<<10)
		for blk := 0; blk < len(b)/a.PageSize(); blk++ {
			diskdump.FillSignature(b[blk*a.PageSize():(blk+1)*a.PageSize()], uint64(blk), a.ByteOrder())
		}
		sigs, err := blockdev.Probe(bytes.NewReader(b), int64(len(b)))
		require.NoError(t, err)
		assert.Empty(t, sigs, "%v", a)
	}
}
