package dmesg

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests that compare our text with makedumpfile --dump-dmesg (1.7.2) on
// synthetic ELF vmcores in each layout (doc/DMESG.md §9 recipe 2).

// requireTool skips the test when the tool is missing, unless CI=true,
// where its absence is a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	why := name + " not installed (apt-get install -y " + name + "): " + err.Error()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// dumpDmesg runs makedumpfile --dump-dmesg on core and returns the text.
func dumpDmesg(t *testing.T, core string) []byte {
	t.Helper()
	tool := requireTool(t, "makedumpfile")
	out := filepath.Join(t.TempDir(), "dmesg.txt")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msg, err := exec.CommandContext(ctx, tool, "--dump-dmesg", core, out).CombinedOutput()
	require.NoError(t, err, "makedumpfile: %s", msg)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

// ours returns our text for an image.
func ours(t *testing.T, img *image) (*Log, []byte) {
	t.Helper()
	log, err := Read(img.memory(), img.arch, img.vmcoreinfo(t))
	require.NoError(t, err)
	var b bytes.Buffer
	_, err = log.WriteTo(&b)
	require.NoError(t, err)
	return log, b.Bytes()
}

// layoutCase builds one synthetic machine.
type layoutCase struct {
	name   string
	layout Layout
	build  func(t testing.TB) *image
}

func layoutCases() []layoutCase {
	return []layoutCase{
		{"lockless 6.1", Lockless, func(t testing.TB) *image {
			img := newImage(t, X86_64, "6.1.0-test-amd64", 256<<10, 0)
			buildLockless(t, img, testMessages, locklessOpts{countBits: 4, sizeBits: 10, firstID: 0x3ffa, firstLpos: 3*1024 + 1024 - 96})
			return img
		}},
		{"lockless 5.10 phys_base direct map", Lockless, func(t testing.TB) *image {
			img := newImage(t, X86_64, "5.10.0-28-amd64", 256<<10, 0x2000000)
			buildLockless(t, img, testMessages, locklessOpts{countBits: 5, sizeBits: 11, firstID: 7, firstLpos: 0, direct: true})
			return img
		}},
		{"structured 4.19 printk_log wrapped", Structured, func(t testing.TB) *image {
			img := newImage(t, X86_64, "4.19.0-27-amd64", 256<<10, 0)
			buildStructured(t, img, testMessages, 1024, 600, "printk_log", false)
			return img
		}},
		{"structured 3.10 log direct map", Structured, func(t testing.TB) *image {
			img := newImage(t, X86_64, "3.10.0-1160.el7.x86_64", 256<<10, 0)
			buildStructured(t, img, testMessages, 2048, 0, "log", true)
			return img
		}},
		{"legacy 2.6.9 wrapped", Legacy, func(t testing.TB) *image {
			img := newImage(t, X86_64, "2.6.9-89.ELsmp", 256<<10, 0)
			buildLegacy(t, img, legacyText(40000), 16384, false)
			return img
		}},
		{"legacy 2.6.9 unwrapped", Legacy, func(t testing.TB) *image {
			img := newImage(t, X86_64, "2.6.9-89.ELsmp", 256<<10, 0)
			buildLegacy(t, img, legacyText(3000), 16384, false)
			return img
		}},
		{"legacy 3.2 direct map wrapped", Legacy, func(t testing.TB) *image {
			img := newImage(t, X86_64, "3.2.0-4-amd64", 256<<10, 0)
			buildLegacy(t, img, legacyText(20000), 8192, true)
			return img
		}},
	}
}

func TestMakedumpfileIdentical(t *testing.T) {
	for _, tc := range layoutCases() {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.build(t)
			core := filepath.Join(t.TempDir(), "vmcore")
			writeCore(t, core, img)
			want := dumpDmesg(t, core)
			log, got := ours(t, img)
			assert.Equal(t, tc.layout, log.Layout)
			require.NotEmpty(t, want)
			assert.Equal(t, string(want), string(got))
		})
	}
}
