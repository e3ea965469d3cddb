package vmcore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dumpkit/dumpkit/diskdump"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests that read our vmcore files with independent readers (see the
// oracle README in the shared folder): libkdumpfile through
// vmcore_pages.py, and crash.

const oracleScript = "../../shared/oracle/vmcore_pages.py"

// requireOracle skips the test when the readers are missing, unless CI=true
// or DISKDUMP_REQUIRE_ORACLE=1, where their absence is a failure.
func requireOracle(t *testing.T, crash bool) {
	t.Helper()
	why := oracleMissing(crash)
	if why == "" {
		return
	}
	requireOracleUnderCI(t, why)
	t.Skip(why)
}

// requireOracleUnderCI fails the test when the readers must be there.
func requireOracleUnderCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" || os.Getenv("DISKDUMP_REQUIRE_ORACLE") == "1" {
		t.Fatal(why)
	}
}

// oracleMissing says why the independent readers cannot run, or "".
func oracleMissing(crash bool) string {
	if _, err := os.Stat(oracleScript); err != nil {
		return "oracle script not found: " + err.Error()
	} else if out, err := exec.Command("/usr/bin/python3", "-c", "import kdumpfile").CombinedOutput(); err != nil {
		return "python3-libkdumpfile not installed (run install-readers.sh): " + strings.TrimSpace(string(out))
	} else if _, err := exec.LookPath("crash"); crash && err != nil {
		return "crash not installed (run install-readers.sh)"
	}
	return ""
}

// oracleListing is what vmcore_pages.py printed.
type oracleListing struct {
	header map[string]string
	pages  map[uint64]string // PFN -> SHA-256, or "ERROR ..."
	order  []uint64
	rc     int
}

func runVmcorePages(t *testing.T, path string, args ...string) *oracleListing {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", append(append([]string{oracleScript}, args...), path)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	l := &oracleListing{header: map[string]string{}, pages: map[uint64]string{}}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		l.rc = ee.ExitCode()
	} else {
		require.NoError(t, err, "vmcore_pages.py: %s", stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": "); ok && strings.HasPrefix(line, "# ") {
			if _, dup := l.header[k]; !dup {
				l.header[k] = v
			}
			continue
		}
		pfnStr, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		pfn, err := strconv.ParseUint(pfnStr, 10, 64)
		if err != nil {
			continue
		}
		l.pages[pfn] = rest
		l.order = append(l.order, pfn)
	}
	require.NoError(t, sc.Err())
	if l.rc != 0 {
		t.Logf("vmcore_pages.py %s: exit %d: %s", path, l.rc, stderr.String())
	}
	return l
}

var crashField = regexp.MustCompile(`^\s*([a-z_]+(?:\[nr_cpus\])?): ?(.*)$`)

// runCrash runs crash on a DISKDUMP or KDUMP vmcore without a kernel
// image. `crash -d1 --log` prints the header it parsed and exits 0 on a
// DISKDUMP file; on a KDUMP file --log insists on a log buffer described
// by VMCOREINFO, so there `crash -d1 --osrelease` is used: same header
// dump, then the OSRELEASE of the file's VMCOREINFO, exit 0.
func runCrash(t *testing.T, path string, f Format) (map[string]string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mode := "--log"
	if f == FormatKdump {
		mode = "--osrelease"
	}
	cmd := exec.CommandContext(ctx, "crash", "-d1", mode, path)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "crash -d1 %s %s:\n%s", mode, path, out)
	fields := map[string]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if m := crashField.FindStringSubmatch(line); m != nil {
			if _, dup := fields[m[1]]; !dup {
				fields[m[1]] = strings.TrimSpace(m[2])
			}
		}
	}
	return fields, string(out)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkOracle runs vmcore_pages.py on a vmcore and checks that it lists
// exactly the pages of want (PFN -> SHA-256) for DISKDUMP and KDUMP, and
// for ELF every PFN below maxPFN, the ones of want with their content and
// the others as zeros.
func checkOracle(t *testing.T, path string, f Format, want map[uint64]string, maxPFN uint64, pageSize int) {
	t.Helper()
	l := runVmcorePages(t, path)
	if l.rc != 0 {
		var bad []string
		for _, pfn := range l.order {
			if strings.HasPrefix(l.pages[pfn], "ERROR") && len(bad) < 5 {
				bad = append(bad, strconv.FormatUint(pfn, 10)+" "+l.pages[pfn])
			}
		}
		require.Equal(t, 0, l.rc, "vmcore_pages.py exit status; header %v; first errors %q", l.header, bad)
	}
	assert.True(t, strings.HasPrefix(l.header["bounds"], "ok"), "bounds: %s", l.header["bounds"])
	assert.Equal(t, strconv.Itoa(pageSize), l.header["page_size"])
	assert.Equal(t, strconv.FormatUint(maxPFN, 10), l.header["max_pfn"])
	switch f {
	case FormatELF:
		assert.Equal(t, "elf", l.header["format"])
		zero := sha(make([]byte, pageSize))
		require.Len(t, l.pages, int(maxPFN))
		for pfn := range maxPFN {
			w, ok := want[pfn]
			if !ok {
				w = zero
			}
			if l.pages[pfn] != w {
				require.Equal(t, w, l.pages[pfn], "PFN %d (recovered: %v)", pfn, ok)
			}
		}
	default:
		assert.Equal(t, "diskdump", l.header["format"])
		require.Len(t, l.pages, len(want))
		for pfn, w := range want {
			if l.pages[pfn] != w {
				require.Equal(t, w, l.pages[pfn], "PFN %d", pfn)
			}
		}
	}
}

// checkCrash checks the header values crash reports for a DISKDUMP or
// KDUMP vmcore against the header we wrote.
func checkCrash(t *testing.T, path string, f Format, h *diskdump.Header, stored uint64) {
	t.Helper()
	fields, out := runCrash(t, path, f)
	assert.Equal(t, `"`+h.Signature+`"`, fields["signature"], out)
	assert.Equal(t, strconv.Itoa(int(h.Version)), fields["header_version"])
	assert.Equal(t, h.Utsname.Sysname, fields["sysname"])
	assert.Equal(t, h.Utsname.Nodename, fields["nodename"])
	assert.Equal(t, h.Utsname.Release, fields["release"])
	assert.Equal(t, h.Utsname.Machine, fields["machine"])
	st, _, _ := strings.Cut(fields["status"], " ")
	assert.Equal(t, strconv.FormatUint(uint64(h.Status), 16), st, "status (crash prints hex)")
	assert.Equal(t, strconv.Itoa(int(h.BlockSize)), fields["block_size"])
	assert.Equal(t, strconv.FormatUint(uint64(h.BitmapBlocks), 10), fields["bitmap_blocks"])
	mx, _, _ := strings.Cut(fields["max_mapnr"], " ")
	assert.Equal(t, strconv.FormatUint(uint64(h.MaxMapnr), 10), mx)
	assert.Equal(t, strconv.Itoa(int(h.NrCPUs)), fields["nr_cpus"])
	assert.Equal(t, strconv.FormatUint(stored, 10), fields["total_valid_pages"])
	if f == FormatKdump {
		assert.Contains(t, out, "\n"+h.Utsname.Release+"\n", "OSRELEASE from VMCOREINFO")
	}
}

// oracleReads says whether libkdumpfile 0.5.1 can read a vmcore: it cannot
// infer the page size of ppc64 and ia64 (both have several) from an ELF
// file without VMCOREINFO, which netdump-style files do not carry; the
// ELF structure of those is checked with debug/elf instead.
func oracleReads(a diskdump.Arch, f Format) bool {
	return f != FormatELF || a == diskdump.ArchX86_64 || a == diskdump.ArchI386
}

// crashReads says whether the installed crash can open a vmcore: it is
// built for the host (x86_64) and refuses other machine types, and for ELF
// files it has no header dump that works without a kernel image.
func crashReads(a diskdump.Arch, f Format) bool {
	return f != FormatELF && a == diskdump.ArchX86_64
}

// writeTemp writes img to a file in a test directory.
func writeTemp(t *testing.T, name string, img []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, img, 0o644))
	return p
}

func TestOracleSynthetic(t *testing.T) {
	requireOracle(t, true)
	// The architecture matrix (TestMatrix) runs the readers on
	// partitions of the real writer; here only what it cannot produce:
	// records the reader reports lost.
	for _, tc := range synthCases() {
		if tc.name != "x86_64 partial lost" {
			continue
		}
		d := newSynthDump(t, tc.cfg)
		want := map[uint64]string{}
		for pfn, p := range d.want {
			want[pfn] = sha(p)
		}
		for _, f := range allFormats {
			t.Run(tc.name+"/"+f.String(), func(t *testing.T) {
				var buf writerAtBuffer
				res, err := writeSource(&buf, d.source(), f, Options{ShareZeroPage: f == FormatKdump})
				require.NoError(t, err)
				path := writeTemp(t, "vmcore", buf.b)
				if oracleReads(d.arch, f) {
					checkOracle(t, path, f, want, uint64(d.hdr.MaxMapnr), d.b)
				}
				if crashReads(d.arch, f) {
					v, err := Open(bytes.NewReader(buf.b), int64(len(buf.b)))
					require.NoError(t, err)
					checkCrash(t, path, f, v.Header(), res.Pages)
				}
			})
		}
	}
}

// writerAtBuffer is an io.WriterAt on a growing slice that is not a
// Truncater, to exercise the writers' other way of setting the length.
type writerAtBuffer struct{ b []byte }

func (w *writerAtBuffer) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(w.b)) {
		if end > int64(cap(w.b)) {
			nb := make([]byte, end, max(end, 2*int64(cap(w.b))))
			copy(nb, w.b)
			w.b = nb
		}
		w.b = w.b[:end]
	}
	copy(w.b[off:], p)
	return len(p), nil
}

func TestOracleSamples(t *testing.T) {
	requireOracle(t, true)
	for _, name := range sampleNames {
		for _, f := range allFormats {
			t.Run(name+"/"+f.String(), func(t *testing.T) {
				s := loadSample(t, name)
				p := s.open(t)
				img, res := sampleFile(t, s, p, f)
				path := writeTemp(t, "vmcore", img)
				checkOracle(t, path, f, s.pages, uint64(p.Header().MaxMapnr), p.BlockSize())
				if f != FormatELF {
					v, err := Open(bytes.NewReader(img), int64(len(img)))
					require.NoError(t, err)
					checkCrash(t, path, f, v.Header(), res.Pages)
					h := p.Header()
					vh := v.Header()
					assert.Equal(t, h.Utsname, vh.Utsname)
					assert.Equal(t, h.MaxMapnr, vh.MaxMapnr)
					assert.Equal(t, h.NrCPUs, vh.NrCPUs)
					if f == FormatDiskdump {
						assert.Equal(t, int32(1), vh.Version)
						assert.Equal(t, h.Status, vh.Status)
					} else {
						assert.Equal(t, int32(KdumpHeaderVersion), vh.Version)
						want := KdumpStatusZlib
						if res.PagesMissing {
							want |= KdumpStatusIncomplete
						}
						assert.Equal(t, want, vh.Status)
					}
				}
			})
		}
	}
}
