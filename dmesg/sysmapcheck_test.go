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

// rhel4 builds a RHEL4-like machine of arch with a wrapped legacy log and
// returns it with the text the log holds and its System.map.
func rhel4(t *testing.T, arch Arch) (*image, []byte, *SystemMap) {
	release := "2.6.9-89.ELsmp"
	img := newImage(t, arch, release, 128<<10, 0)
	want := buildLegacy(t, img, legacyText(40000), 32768, false)
	return img, want, mapOf(t, img, true)
}

// TestSystemMapEndToEnd is the path for a RHEL4 dump: check the map against
// the dump header, make a VMCOREINFO from it, read the log.
func TestSystemMapEndToEnd(t *testing.T) {
	for _, arch := range []Arch{X86_64, I386} {
		t.Run(arch.String(), func(t *testing.T) {
			img, want, m := rhel4(t, arch)
			require.NoError(t, CheckSystemMap(img.memory(), arch, m, img.uts))
			info, err := m.VMCOREINFO(img.release, pageSize)
			require.NoError(t, err)
			log, err := Read(img.memory(), arch, info)
			require.NoError(t, err)
			assert.Equal(t, Legacy, log.Layout)
			assert.Equal(t, string(want), string(log.Raw))
		})
	}
}

func TestCheckSystemMapMismatch(t *testing.T) {
	img, _, m := rhel4(t, X86_64)
	tests := []struct {
		name  string
		want  func(u Utsname) Utsname
		field string
	}{
		{"other release", func(u Utsname) Utsname { u.Release = "2.6.9-78.ELsmp"; return u }, "release"},
		{"other build", func(u Utsname) Utsname { u.Version = "#1 SMP Wed Jan 1 00:00:00 EST 2009"; return u }, "version"},
		{"other machine", func(u Utsname) Utsname { u.Machine = "i686"; return u }, "machine"},
		{"other host", func(u Utsname) Utsname { u.Nodename = "db1"; return u }, "nodename"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSystemMap(img.memory(), X86_64, m, tc.want(img.uts))
			var me *MismatchError
			require.ErrorAs(t, err, &me)
			assert.ErrorIs(t, err, ErrMapMismatch)
			assert.Equal(t, tc.field, me.Field)
			assert.Equal(t, "system_utsname", me.Symbol)
		})
	}
}

func TestCheckSystemMapBanner(t *testing.T) {
	img, _, full := rhel4(t, X86_64)
	var syms []Symbol
	for _, s := range full.Symbols {
		if s.Name != "system_utsname" {
			syms = append(syms, s)
		}
	}
	var b bytes.Buffer
	require.NoError(t, WriteSystemMap(&b, syms, 64))
	m, err := ParseSystemMap(&b)
	require.NoError(t, err)
	require.NoError(t, CheckSystemMap(img.memory(), X86_64, m, img.uts))
	other := img.uts
	other.Version = "#2 SMP"
	err = CheckSystemMap(img.memory(), X86_64, m, other)
	var me *MismatchError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "linux_banner", me.Symbol)
}

func TestCheckSystemMapUnusable(t *testing.T) {
	img, _, _ := rhel4(t, X86_64)
	t.Run("stub", func(t *testing.T) {
		m, err := ParseSystemMap(bytes.NewReader([]byte("ffffffffffffffff B The real System.map is in the linux-image-6.1.0-57-amd64-dbg package\n")))
		require.NoError(t, err)
		require.ErrorIs(t, CheckSystemMap(img.memory(), X86_64, m, img.uts), ErrMissingKey)
	})
	t.Run("symbol outside the dump", func(t *testing.T) {
		m, err := ParseSystemMap(bytes.NewReader([]byte("ffffffff80900000 D system_utsname\n")))
		require.NoError(t, err)
		err = CheckSystemMap(img.memory(), X86_64, m, img.uts)
		require.ErrorIs(t, err, errNotInDump)
		var ae *AddrError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "system_utsname", ae.Field)
	})
	t.Run("ia64", func(t *testing.T) {
		_, err := ParseArch("ia64")
		require.ErrorIs(t, err, ErrUnsupportedArch)
		require.ErrorIs(t, CheckSystemMap(img.memory(), Arch(0), &SystemMap{}, img.uts), ErrUnsupportedArch)
	})
}

// TestLegacyWithOtherReaders reads the RHEL4 machine's ELF vmcore, whose
// VMCOREINFO was made from the System.map, with vmcore-dmesg (x86_64 and
// i386): it prints the same region as we do (doc/DMESG.md §8.2). (crash
// 8.0.2 --log does not open these ELF files: "no VMCOREINFO data"; it is
// for KDUMP files.)
func TestLegacyWithOtherReaders(t *testing.T) {
	for _, arch := range []Arch{X86_64, I386} {
		img, want, m := rhel4(t, arch)
		info, err := m.VMCOREINFO(img.release, pageSize)
		require.NoError(t, err)
		img.info.Reset()
		img.info.Write(info.Bytes())
		core := filepath.Join(t.TempDir(), "vmcore")
		writeCore(t, core, img)
		t.Run("vmcore-dmesg "+arch.String(), func(t *testing.T) {
			assert.Equal(t, string(want), string(runTool(t, "vmcore-dmesg", core)))
		})
	}
}

// runTool runs name with args and returns its stdout.
func runTool(t *testing.T, name string, args ...string) []byte {
	tool := requireTool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Stdin = nil
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "TERM=dumb")
	out, err := cmd.Output()
	require.NoError(t, err, "%s: %s", name, stderr.String())
	return out
}

func TestFindSymbols(t *testing.T) {
	img, want, m := rhel4(t, X86_64)
	mem := img.memory()
	note := []byte(img.info.String())
	other := img.uts
	other.Release = "2.6.9-78.ELsmp"
	tests := []struct {
		name   string
		src    Sources
		origin Origin
		errs   []error
	}{
		{"note first", Sources{Utsname: img.uts, Note: note, Pages: img.pfns(), Map: m}, FromNote, nil},
		{"note without log keys", Sources{Utsname: img.uts, Note: []byte("OSRELEASE=2.6.9-89.ELsmp\nPAGESIZE=4096\n"), Map: m}, FromSystemMap, nil},
		{"no VMCOREINFO in memory (2.6.9)", Sources{Utsname: img.uts, Pages: img.pfns(), Map: m}, FromSystemMap, nil},
		{"map of another kernel", Sources{Utsname: other, Pages: img.pfns(), Map: m}, 0, []error{ErrNotFound, ErrMapMismatch}},
		{"nothing", Sources{Utsname: img.uts}, 0, []error{ErrNoLogSymbols}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, origin, err := FindSymbols(mem, X86_64, tc.src)
			if tc.errs != nil {
				for _, e := range tc.errs {
					require.ErrorIs(t, err, e)
				}
				assert.NotContains(t, err.Error(), "\n")
				t.Log(err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.origin, origin)
			log, err := Read(mem, X86_64, info)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(log.Raw))
		})
	}
	_, _, err := FindSymbols(mem, Arch(5), Sources{})
	require.ErrorIs(t, err, ErrUnsupportedArch)
}
