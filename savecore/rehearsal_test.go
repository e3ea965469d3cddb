package savecore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/vmcore"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

// crashTime is the crash time of every rehearsal unless a test sets one.
var crashTime = time.Date(2009, 6, 29, 16, 0, 0, 123456789, time.UTC)

const crashDir = "127.0.0.1-2009-06-29-16:00" // DirName(crashTime, time.UTC)

// memDev is an in-memory partition.
type memDev struct{ *memfile.File }

func (d memDev) Size() int64 { return int64(len(d.Bytes())) }

// rehearsal describes a crash to write with the kernel-exact writer.
type rehearsal struct {
	arch      diskdump.Arch
	mem       uint64 // bytes of physical address space; 0 = 4 MiB
	mix       kernel.PageMix
	compress  bool
	dumpLevel int
	seed      uint64
	time      time.Time
	// cut > 0: power cut after that fraction (per mille) of the block
	// writes a full dump of the same crash makes.
	cut int64
	// devBlocks overrides the partition size in blocks (0 = room for a full dump).
	devBlocks uint64
}

func (r rehearsal) machine() *kernel.SyntheticMachine {
	mem := r.mem
	if mem == 0 {
		mem = 4 << 20
	}
	return kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: r.arch, MemBytes: mem, Seed: r.seed + 1, NoRandomBad: true, Mix: r.mix})
}

func (r rehearsal) blockSize() int { return r.arch.PageSize() }

// fullBlocks is a partition that holds a full dump of the machine.
func (r rehearsal) fullBlocks(m *kernel.SyntheticMachine) uint64 {
	return 3 + 2*diskdump.BitmapBlocksFor(m.MaxPFN(), r.blockSize()) + m.MaxPFN() + 8
}

func (r rehearsal) formatParams() diskdump.FormatParams {
	return diskdump.FormatParams{BlockSize: r.blockSize(), Order: r.arch.ByteOrder(), BlockOrder: 2, SampleRate: 8}
}

func (r rehearsal) config() kernel.Config {
	cfg := kernel.DefaultConfig(r.arch)
	cfg.Compress, cfg.DumpLevel = r.compress, r.dumpLevel
	cfg.Time = r.time
	if cfg.Time.IsZero() {
		cfg.Time = crashTime
	}
	cfg.NrCPUs, cfg.CurrentCPU = 2, 1
	return cfg
}

// write formats dev (of devBlocks blocks) and writes the crash on it,
// returning the machine and what the writer did.
func (r rehearsal) write(t testing.TB, dev kernel.ReadWriterAt, devBlocks uint64) (*kernel.SyntheticMachine, *kernel.Result) {
	t.Helper()
	m := r.machine()
	require.NoError(t, diskdump.FormatInitial(dev, devBlocks, r.formatParams(), nil))
	cfg := r.config()
	if r.cut > 0 {
		// A full run on a scratch device tells how many block writes the
		// dump takes; the real run stops part-way.
		scratch := sparseFile(t, int64(devBlocks)*int64(r.blockSize()))
		require.NoError(t, diskdump.FormatInitial(scratch, devBlocks, r.formatParams(), nil))
		full, err := kernel.WriteDump(scratch, devBlocks, m, cfg)
		require.NoError(t, err)
		cfg.StopAfterBlocks = full.BlocksWritten * r.cut / 1000
	}
	wr, err := kernel.WriteDump(dev, devBlocks, m, cfg)
	require.NoError(t, err)
	return m, wr
}

// imageCache keeps small rehearsal images: several tests use the same
// crash, and writing it (zlib under -race) is the slow part.
var imageCache sync.Map // rehearsal -> *cachedImage

type cachedImage struct {
	once sync.Once
	b    []byte
	m    *kernel.SyntheticMachine
	wr   *kernel.Result
	err  error
}

const maxCachedImage = 32 << 20

// image returns the bytes of a partition holding the crash (shared: do not
// modify), the machine and what the writer did.
func (r rehearsal) image(t testing.TB) ([]byte, *kernel.SyntheticMachine, *kernel.Result) {
	t.Helper()
	m := r.machine()
	blocks := r.devBlocks
	if blocks == 0 {
		blocks = r.fullBlocks(m)
	}
	size := blocks * uint64(r.blockSize())
	build := func() ([]byte, *kernel.SyntheticMachine, *kernel.Result) {
		dev := memfile.New(make([]byte, size))
		m, wr := r.write(t, dev, blocks)
		return dev.Bytes(), m, wr
	}
	if size > maxCachedImage {
		return build()
	}
	v, _ := imageCache.LoadOrStore(r, &cachedImage{})
	c := v.(*cachedImage)
	c.once.Do(func() {
		c.err = errors.New("building the image failed in another test")
		c.b, c.m, c.wr = build()
		c.err = nil
	})
	require.NoError(t, c.err)
	return c.b, c.m, c.wr
}

// memImage makes an in-memory partition holding the crash.
func (r rehearsal) memImage(t testing.TB) (memDev, *kernel.SyntheticMachine, *kernel.Result) {
	t.Helper()
	b, m, wr := r.image(t)
	return memDev{memfile.New(bytes.Clone(b))}, m, wr
}

// fileImage writes the crash into an image file in a temporary directory
// and returns its path. Big images are written to the file directly.
func (r rehearsal) fileImage(t testing.TB) (string, *kernel.SyntheticMachine, *kernel.Result) {
	t.Helper()
	m := r.machine()
	blocks := r.devBlocks
	if blocks == 0 {
		blocks = r.fullBlocks(m)
	}
	size := int64(blocks) * int64(r.blockSize())
	if size > maxCachedImage {
		f := sparseFile(t, size)
		m, wr := r.write(t, f, blocks)
		require.NoError(t, f.Close())
		return f.Name(), m, wr
	}
	b, m, wr := r.image(t)
	p := filepath.Join(t.TempDir(), "part.img")
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p, m, wr
}

// sparseFile creates a sparse file of size bytes, closed when the test ends.
func sparseFile(t testing.TB, size int64) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "part.img"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	require.NoError(t, f.Truncate(size))
	return f
}

// formattedImage is a formatted partition image without a dump.
func formattedImage(t testing.TB, r rehearsal) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "empty.img")
	blocks := r.fullBlocks(r.machine())
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(int64(blocks)*int64(r.blockSize())))
	require.NoError(t, diskdump.FormatInitial(f, blocks, r.formatParams(), nil))
	return p
}

// checkVmcore opens the vmcore at path with our reader and compares every
// page the writer made recoverable with the machine's memory. It returns
// the vmcore.
func checkVmcore(t testing.TB, path string, m *kernel.SyntheticMachine, wr *kernel.Result, partial bool) *vmcore.File {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	require.NoError(t, err)
	assert.Equal(t, FileMode, fi.Mode().Perm(), "vmcore mode")
	v, err := vmcore.Open(f, fi.Size())
	require.NoError(t, err)
	assert.Equal(t, partial, v.Partial(), "vmcore marked partial/incomplete")
	want := make([]byte, v.PageSize())
	var got []byte
	var n uint64
	for pfn := range wr.Recoverable.All() {
		require.NoError(t, m.ReadPage(pfn, want))
		got, err = v.ReadPage(pfn, got)
		require.NoError(t, err, "PFN %d", pfn)
		if !bytes.Equal(want, got) {
			require.Failf(t, "page differs", "PFN %d", pfn)
		}
		n++
	}
	assert.Equal(t, wr.Recoverable.Count(), n)
	if v.Format() != vmcore.FormatELF {
		assert.Equal(t, wr.Recoverable.Count(), v.NumPages(), "pages stored")
	}
	// Pages the writer did not save are absent (or zero in an ELF file).
	zero := make([]byte, v.PageSize())
	for pfn := uint64(0); pfn < v.MaxPFN(); pfn++ {
		if wr.Recoverable.Test(pfn) {
			continue
		}
		got, err = v.ReadPage(pfn, got)
		if err != nil {
			assert.True(t, errors.Is(err, vmcore.ErrPageExcluded) || errors.Is(err, vmcore.ErrNotInDump), "PFN %d: %v", pfn, err)
			continue
		}
		if !bytes.Equal(zero, got) {
			require.Failf(t, "unsaved page has data", "PFN %d", pfn)
		}
	}
	return v
}

// readPagesFile reads a "PFN SHA256" listing (samples, oracle output),
// skipping '#' lines.
func readPagesFile(t testing.TB, b []byte) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		require.Len(t, f, 2, "line %q", line)
		pfn, err := strconv.ParseUint(f[0], 0, 64)
		require.NoError(t, err)
		out[pfn] = strings.ToLower(f[1])
	}
	require.NoError(t, sc.Err())
	return out
}

// vmcorePageHashes hashes every page our reader finds in the vmcore.
func vmcorePageHashes(t testing.TB, path string, pfns map[uint64]string) map[uint64]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	v, err := vmcore.Open(f, fi.Size())
	require.NoError(t, err)
	out := map[uint64]string{}
	var buf []byte
	for pfn := range pfns {
		buf, err = v.ReadPage(pfn, buf)
		require.NoError(t, err, "PFN %d", pfn)
		h := sha256.Sum256(buf)
		out[pfn] = hex.EncodeToString(h[:])
	}
	return out
}

// oracle runs the independent libkdumpfile reader on a vmcore and returns
// its page listing; it skips when the reader is missing, unless CI=true.
func oracle(t testing.TB, path string) map[uint64]string {
	t.Helper()
	script := filepath.Join("..", "..", "shared", "oracle", "vmcore_pages.py")
	py := "/usr/bin/python3"
	_, err1 := os.Stat(script)
	_, err2 := os.Stat(py)
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("oracle missing: %v %v", err1, err2)
		}
		t.Skipf("oracle missing: %v %v", err1, err2)
	}
	out, err := exec.Command(py, script, path).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("vmcore_pages.py %s: %v\n%s", path, err, ee.Stderr)
	}
	require.NoError(t, err)
	return readPagesFile(t, out)
}

// hashMachinePages hashes the machine's pages for the given PFNs.
func hashMachinePages(t testing.TB, m *kernel.SyntheticMachine, bm *diskdump.Bitmap) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	buf := make([]byte, m.PageSize())
	for pfn := range bm.All() {
		require.NoError(t, m.ReadPage(pfn, buf))
		h := sha256.Sum256(buf)
		out[pfn] = hex.EncodeToString(h[:])
	}
	return out
}
