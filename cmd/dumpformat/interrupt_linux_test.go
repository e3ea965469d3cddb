package main

// Interrupted formatting: the built dumpformat is killed with SIGKILL
// after each piece of a format (savecore.Failpoint "format", armed through
// DUMPKIT_FAILPOINT), and dumpformat -c must then report that the device
// needs a format (exit 2 or 3), never that it is ready (0), until the
// format has really finished. Images are regular files: a kill loses
// nothing written, so this checks the order of the writes; what a power cut
// could reorder is covered by the flush before block 0 (diskdump tests).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/dumpkit/dumpkit/internal/failpoint"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

func buildDumpformat(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dumpformat")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	return bin
}

// runBin runs bin and returns its exit code, or -1 and the signal when it
// was killed.
func runBin(t *testing.T, bin, point string, args ...string) (int, syscall.Signal, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), failpoint.Env+"="+point)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return -1, ws.Signal(), out.String()
		}
		return ws.ExitStatus(), 0, out.String()
	}
	require.NoError(t, err)
	return 0, 0, out.String()
}

func TestInterruptedFormat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dumpformat and kills it repeatedly")
	}
	bin := buildDumpformat(t)
	const bs = 4096
	blocks := 3*1024 + 200 // several 4 MiB pieces
	if os.Getenv("DUMPKIT_KILLHARNESS") == "full" {
		blocks = 16*1024 + 200
	}
	garbage := make([]byte, blocks*bs)
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i+8 <= len(garbage); i += 8 {
		binary.LittleEndian.PutUint64(garbage[i:], r.Uint64())
	}
	// A valid block 0 over garbage: normal format accepts it, and every
	// block it has not reached is still wrong.
	block0 := bytes.Clone(garbage)
	diskdump.FillSignature(block0[:bs], 0, binary.LittleEndian)

	params := []string{"--arch", "x86_64", "--block-order", "2", "--sample-rate", "8"}
	tests := []struct {
		name   string
		before []byte
		mode   []string
		check  []string // extra -c parameters
	}{
		// With total_blocks 300 the kernel samples only the start of the
		// device, which an initial format writes first.
		{"initial, total_blocks 300", garbage, []string{"-f", "--total-blocks", "300"}, []string{"--total-blocks", "300"}},
		{"initial", garbage, []string{"-f"}, nil},
		{"normal", block0, nil, nil},
		{"normal all blocks", block0, []string{"-a"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "part.img")
			check := func() int {
				code, _, out := runBin(t, bin, "", append(append([]string{"-c"}, append(params, tc.check...)...), img)...)
				t.Logf("dumpformat -c: %d %s", code, out)
				return code
			}
			var codes []int
			var written []bool // every block 1.. carries its signature
			for k := 1; ; k++ {
				require.NoError(t, os.WriteFile(img, tc.before, 0o600))
				fp := "format:" + strconv.Itoa(k)
				code, sig, out := runBin(t, bin, fp, append(append(append([]string{}, params...), tc.mode...), img)...)
				if code == 0 {
					require.Greater(t, k, 2, "the format must be interruptible: %s", out)
					break
				}
				require.Equal(t, -1, code, "%s: %s", fp, out)
				require.Equal(t, syscall.SIGKILL, sig)
				codes = append(codes, check())
				written = append(written, allSigned(t, img))
				require.Less(t, k, 10000)
			}
			// The last hit comes after the last write: the format is done
			// but for the final flush.
			last := len(codes) - 1
			for k, c := range codes[:last] {
				if c == 0 && k == last-1 && slices.Contains(tc.mode, "-a") {
					// Two writes are in flight: when the kill comes
					// after the second-to-last piece, the last may be
					// on the device too. Ready is then the truth, and
					// the only acceptable one: every block is written.
					assert.True(t, written[k], "ready after piece %d of %d, yet blocks are missing", k+1, last+1)
					continue
				}
				assert.Contains(t, []int{2, 3}, c, "killed after piece %d of %d: dumpformat -c says %d", k+1, last+1, c)
			}
			assert.Equal(t, 0, codes[last], "killed after the last piece")
			// Formatting again finishes the job.
			require.NoError(t, os.WriteFile(img, tc.before, 0o600))
			code, _, out := runBin(t, bin, "format:1", append(append(append([]string{}, params...), tc.mode...), img)...)
			require.Equal(t, -1, code, out)
			code, _, out = runBin(t, bin, "", append(append(append([]string{}, params...), tc.mode...), img)...)
			require.Equal(t, 0, code, out)
			assert.Equal(t, 0, check())
		})
	}
}

// allSigned reports whether every block of the image but block 0 carries
// its little-endian 4 KiB signature.
func allSigned(t *testing.T, img string) bool {
	t.Helper()
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	const bs = 4096
	for blk := uint64(1); (blk+1)*bs <= uint64(len(b)); blk++ {
		if !diskdump.IsSignatureBlock(b[blk*bs:(blk+1)*bs], blk, binary.LittleEndian) {
			return false
		}
	}
	return true
}
