package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/dmesg"
	"github.com/dumpkit/dumpkit/savecore"
)

// TestRehearsalKernelLog: -R --system-map writes the map of the synthetic
// kernel, whose log savecore --dmesg reads back from the partition: the
// boot log of kernel.BootLog, wrapped around the ring for a machine of
// 512 MiB, ending in the panic. A machine too small for the log, or an
// architecture without a log reader, refuses --system-map.
func TestRehearsalKernelLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		mib  int64
		args []string
		arch diskdump.Arch
		ram  uint64
	}{
		{"x86_64 compressed, wrapped", 40, []string{"--compress", "--ram", "512Mi", "--dump-level", "19"}, diskdump.ArchX86_64, 512 << 20},
		{"i386 raw", 16, []string{"--ram", "8Mi"}, diskdump.ArchI386, 8 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := imageFile(t, tc.mib<<20/bs, 0)
			archArgs := []string{"--arch", tc.arch.String()}
			formatFile(t, path, archArgs...)
			sMap := filepath.Join(t.TempDir(), "System.map")
			code, _, stderr := rehearse(t, append(append(archArgs, tc.args...), "--system-map", sMap, path)...)
			require.Equal(t, 0, code, stderr)
			mf, err := os.Open(sMap)
			require.NoError(t, err)
			defer mf.Close()
			m, err := dmesg.ParseSystemMap(mf)
			require.NoError(t, err)
			for _, name := range []string{"log_buf", "log_end", "log_buf_len", "logged_chars", "system_utsname"} {
				_, err := m.Lookup(name)
				assert.NoError(t, err, name)
			}
			var out bytes.Buffer
			require.NoError(t, savecore.WriteDmesg(&out, path, sMap))
			text := kernel.BootLog(tc.arch, kernel.DefaultUtsname(tc.arch), tc.ram)
			want := text[max(0, len(text)-kernel.LogBufLen):]
			assert.Equal(t, string(want), out.String())
			assert.True(t, strings.HasSuffix(out.String(), "Kernel panic - not syncing: Fatal exception\n"))
			assert.Equal(t, len(text) > kernel.LogBufLen, tc.ram >= 512<<20, "wrapped")
		})
	}
	t.Run("refused", func(t *testing.T) {
		for _, args := range [][]string{{"--arch", "ppc64", "--ram", "16Mi"}, {"--ram", "4Mi"}} {
			path := imageFile(t, 16<<20/bs, 0)
			formatFile(t, path, args[:len(args)-2]...)
			code, _, stderr := rehearse(t, append(args, "--system-map", filepath.Join(t.TempDir(), "m"), path)...)
			assert.NotEqual(t, 0, code)
			assert.Contains(t, stderr, "--system-map")
		}
	})
}

// TestRehearsalSystemMapWithCore: -m dumps the core's memory as it is, so
// there is no System.map to write.
func TestRehearsalSystemMapWithCore(t *testing.T) {
	path := imageFile(t, 16<<20/bs, 0)
	code, _, stderr := rehearse(t, "-m", "core.elf", "--system-map", "map", path)
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "--system-map cannot be used with -m")
}
