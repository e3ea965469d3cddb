package dmesg

import (
	"bytes"
	"context"
	"encoding/binary"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pfns yields every page frame of the image.
func (img *image) pfns() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		for a := img.paddr; a < img.paddr+uint64(len(img.data)); a += pageSize {
			if !yield(a / pageSize) {
				return
			}
		}
	}
}

// findImage is a 6.1-like machine with a lockless log; its VMCOREINFO text
// is not yet in its memory.
func findImage(t *testing.T) *image {
	img := newImage(t, X86_64, "6.1.0-57-amd64", 128<<10, 0)
	buildLockless(t, img, testMessages, locklessOpts{countBits: 4, sizeBits: 10, firstID: 1})
	return img
}

func TestFindVMCOREINFO(t *testing.T) {
	tests := []struct {
		name  string
		place func(img *image, text []byte) // where the kernel keeps the text
	}{
		{"page aligned", func(img *image, text []byte) {
			img.put(img.alloc(len(text), pageSize), text)
		}},
		{"note copy at offset 24", func(img *image, text []byte) {
			var note bytes.Buffer
			writeNote(&note, "VMCOREINFO", 0, text)
			b := note.Bytes()
			binary.LittleEndian.PutUint32(b[4:], uint32(len(text)))
			a := img.alloc(len(b)+16, pageSize)
			img.put(a, b)
			img.put(a+uint64(len(b)), []byte("JUNK=after the note\n")) // not part of descsz
		}},
		{"inside a page", func(img *image, text []byte) {
			img.put(img.alloc(len(text)+1, 8)+1000, text)
			img.next += 1000
		}},
		{"across two pages", func(img *image, text []byte) {
			a := img.alloc(2*pageSize, pageSize) + pageSize - 7
			img.put(a, text)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := findImage(t)
			text := []byte(img.info.String())
			// Decoys: a page with the right prefix that does not parse,
			// and a VMCOREINFO of another release.
			img.put(img.alloc(pageSize, pageSize), []byte("OSRELEASE=6.1.0-57-amd64\nnot key value\n"))
			img.put(img.alloc(pageSize, pageSize), []byte("OSRELEASE=6.1.0-58-amd64\nPAGESIZE=4096\nSYMBOL(prb)=1\n"))
			tc.place(img, text)
			info, err := FindVMCOREINFO(img.memory(), X86_64, "6.1.0-57-amd64", img.pfns())
			require.NoError(t, err)
			assert.Equal(t, string(text), string(info.Bytes()))
			want, err := Read(img.memory(), X86_64, img.vmcoreinfo(t))
			require.NoError(t, err)
			got, err := Read(img.memory(), X86_64, info)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

func TestFindVMCOREINFOErrors(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		img := findImage(t)
		_, err := FindVMCOREINFO(img.memory(), X86_64, "6.1.0-57-amd64", img.pfns())
		require.ErrorIs(t, err, ErrNotFound)
	})
	t.Run("utsname of another kernel", func(t *testing.T) {
		img := findImage(t)
		info := img.vmcoreinfo(t)
		uts, _ := info.Symbol("init_uts_ns")
		other := img.uts
		other.Release = "6.1.0-56-amd64"
		img.put(uts+4, other.Bytes())
		img.put(img.alloc(pageSize, pageSize), []byte(img.info.String()))
		_, err := FindVMCOREINFO(img.memory(), X86_64, "6.1.0-57-amd64", img.pfns())
		require.ErrorIs(t, err, ErrNotFound)
		var me *MismatchError
		require.ErrorAs(t, err, &me)
		assert.Equal(t, "release", me.Field)
	})
	t.Run("no release", func(t *testing.T) {
		img := findImage(t)
		_, err := FindVMCOREINFO(img.memory(), X86_64, "", img.pfns())
		require.ErrorIs(t, err, ErrNotFound)
	})
	t.Run("ppc64", func(t *testing.T) {
		img := findImage(t)
		_, err := FindVMCOREINFO(img.memory(), Arch(7), "6.1.0-57-amd64", img.pfns())
		require.ErrorIs(t, err, ErrUnsupportedArch)
	})
}

// TestFoundVMCOREINFOWithMakedumpfile gives makedumpfile the text we found
// in memory (-i FILE, doc/DMESG.md §9 recipe 4); its log must equal ours.
func TestFoundVMCOREINFOWithMakedumpfile(t *testing.T) {
	tool := requireTool(t, "makedumpfile")
	img := findImage(t)
	img.put(img.alloc(pageSize, pageSize), []byte(img.info.String()))
	info, err := FindVMCOREINFO(img.memory(), X86_64, "6.1.0-57-amd64", img.pfns())
	require.NoError(t, err)
	dir := t.TempDir()
	core, file, out := filepath.Join(dir, "vmcore"), filepath.Join(dir, "vmcoreinfo"), filepath.Join(dir, "out")
	writeCore(t, core, img)
	require.NoError(t, os.WriteFile(file, info.Bytes(), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msg, err := exec.CommandContext(ctx, tool, "--dump-dmesg", "-i", file, core, out).CombinedOutput()
	require.NoError(t, err, "%s", msg)
	want, err := os.ReadFile(out)
	require.NoError(t, err)
	_, got := ours(t, img)
	assert.Equal(t, string(want), string(got))
}
