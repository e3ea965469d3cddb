package vmcore

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/require"
)

// Helpers shared by the flattened-format tests.

// flattenedToolTimeout bounds every makedumpfile run: on a stream without an
// end marker `makedumpfile -R` would wait 600 s for more input.
const flattenedToolTimeout = "60"

// requireMakedumpfile skips the test when makedumpfile (and, with perl, its
// makedumpfile-R.pl) is missing, unless CI=true, where that is a failure.
func requireMakedumpfile(t *testing.T, perl bool) {
	t.Helper()
	var why string
	if _, err := exec.LookPath("makedumpfile"); err != nil {
		why = "makedumpfile not installed (apt-get install makedumpfile)"
	} else if _, err := exec.LookPath("timeout"); err != nil {
		why = "timeout (coreutils) not found"
	} else if _, err := exec.LookPath("makedumpfile-R.pl"); perl && err != nil {
		why = "makedumpfile-R.pl not installed (package makedumpfile)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// runFlattenedTool runs name under timeout with stdin from the file in, and
// returns its combined output and error.
func runFlattenedTool(t *testing.T, in string, name string, args ...string) ([]byte, error) {
	t.Helper()
	f, err := os.Open(in)
	require.NoError(t, err)
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "timeout", append([]string{flattenedToolTimeout, name}, args...)...)
	cmd.Stdin = f
	return cmd.CombinedOutput()
}

// makedumpfileRearrange runs `makedumpfile -R OUT < stream` and returns OUT.
func makedumpfileRearrange(t *testing.T, stream []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "stream.flat"), filepath.Join(dir, "out")
	require.NoError(t, os.WriteFile(in, stream, 0o600))
	msg, err := runFlattenedTool(t, in, "makedumpfile", "-R", out)
	require.NoError(t, err, "makedumpfile -R: %s", msg)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

// perlRearrange runs `makedumpfile-R.pl OUT < stream` and returns OUT. The
// script exits 0 even when it fails, so its output must say "Completed.".
func perlRearrange(t *testing.T, stream []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "stream.flat"), filepath.Join(dir, "out")
	require.NoError(t, os.WriteFile(in, stream, 0o600))
	msg, err := runFlattenedTool(t, in, "makedumpfile-R.pl", out)
	require.NoError(t, err, "makedumpfile-R.pl: %s", msg)
	require.Contains(t, string(msg), "Completed.", "makedumpfile-R.pl: %s", msg)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

// makedumpfileFlatten runs `makedumpfile -F ARGS core.elf` and returns the
// stream it writes on stdout.
func makedumpfileFlatten(t *testing.T, elf []byte, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "core.elf")
	require.NoError(t, os.WriteFile(in, elf, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	argv := append(append([]string{flattenedToolTimeout, "makedumpfile", "-F"}, args...), in)
	cmd := exec.CommandContext(ctx, "timeout", argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "makedumpfile %v: %s", argv[2:], stderr.String())
	return stdout.Bytes()
}

// rearrangeBytes rearranges stream in memory and returns the file.
func rearrangeBytes(t testing.TB, stream []byte, opts *RearrangeOptions) ([]byte, *RearrangeResult) {
	t.Helper()
	dst := memfile.New(nil)
	res, err := Rearrange(dst, bytes.NewReader(stream), int64(len(stream)), opts)
	require.NoError(t, err)
	return dst.Bytes(), res
}

// flattenedTestELF builds a small x86_64 ELF vmcore that makedumpfile 1.7.2
// accepts with -d 0 or -d 1 and no debug information: a PT_NOTE holding one
// NT_PRSTATUS-sized note and no VMCOREINFO (makedumpfile then needs none for
// those dump levels), and two PT_LOADs of npages pages each, a kernel-text
// mapping and a direct mapping. A third of the pages are zero, a third random
// and a third a compressible pattern, drawn from r.
func flattenedTestELF(r *rand.Rand, npages int) []byte {
	const ehsize, phsize, phnum, page = 64, 56, 3, 4096
	le := binary.LittleEndian
	var note []byte
	note = le.AppendUint32(note, 5)   // namesz, "CORE\0"
	note = le.AppendUint32(note, 336) // descsz, x86_64 prstatus
	note = le.AppendUint32(note, 1)   // NT_PRSTATUS
	note = append(note, "CORE\x00\x00\x00\x00"...)
	note = append(note, make([]byte, 336)...)
	noteOff := int64(ehsize + phnum*phsize)
	dataOff := (noteOff + int64(len(note)) + page - 1) / page * page
	memsz := int64(npages * page)

	f := []byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	f = le.AppendUint16(f, 4)  // ET_CORE
	f = le.AppendUint16(f, 62) // EM_X86_64
	f = le.AppendUint32(f, 1)
	f = le.AppendUint64(f, 0)      // e_entry
	f = le.AppendUint64(f, ehsize) // e_phoff
	f = le.AppendUint64(f, 0)      // e_shoff
	f = le.AppendUint32(f, 0)      // e_flags
	for _, v := range []uint16{ehsize, phsize, phnum, 64, 0, 0} {
		f = le.AppendUint16(f, v)
	}
	phdr := func(typ, flags uint32, off, vaddr, paddr, filesz, memsz int64) {
		f = le.AppendUint32(f, typ)
		f = le.AppendUint32(f, flags)
		for _, v := range []int64{off, vaddr, paddr, filesz, memsz, 0} {
			f = le.AppendUint64(f, uint64(v))
		}
	}
	phdr(4, 0, noteOff, 0, 0, int64(len(note)), int64(len(note)))
	phdr(1, 7, dataOff, -0x7f000000, 0x1000000, memsz, memsz)   // 0xffffffff81000000
	phdr(1, 7, dataOff+memsz, -0x778000000000, 0, memsz, memsz) // 0xffff888000000000
	f = append(f, note...)
	f = append(f, make([]byte, dataOff-int64(len(f)))...)
	for i := range 2 * npages {
		pg := make([]byte, page)
		switch i % 3 {
		case 1: // incompressible
			for j := range pg {
				pg[j] = byte(r.Uint32())
			}
		case 2: // compressible
			seed := byte(r.Uint32())
			for j := range pg {
				pg[j] = seed + byte(j/64)
			}
		}
		f = append(f, pg...)
	}
	return f
}

// bytesEqualFlattened compares two files without printing megabytes on a
// mismatch.
func bytesEqualFlattened(a, b []byte) bool { return bytes.Equal(a, b) }

// appendFlattenedHeader appends a raw record header, plausible or not.
func appendFlattenedHeader(b []byte, off, size int64) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(off))
	return binary.BigEndian.AppendUint64(b, uint64(size))
}

// appendFlattenedRecord appends a record that puts data at off.
func appendFlattenedRecord(b []byte, off int64, data []byte) []byte {
	return append(appendFlattenedHeader(b, off, int64(len(data))), data...)
}

// appendFlattenedEnd appends the end marker.
func appendFlattenedEnd(b []byte) []byte { return appendFlattenedHeader(b, -1, -1) }
