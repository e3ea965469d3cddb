package savecore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		devices []string
		dumpDir string
		vars    map[string]string
	}{
		{name: "colon list", src: "DEVICE=/dev/sda3:/dev/hda\n", devices: []string{"/dev/sda3", "/dev/hda"}},
		{name: "single", src: "DEVICE=/dev/sde1", devices: []string{"/dev/sde1"}},
		{name: "space list quoted", src: `DEVICE="/dev/sda3 /dev/hda"`, devices: []string{"/dev/sda3", "/dev/hda"}},
		{name: "mixed separators", src: "DEVICE='/dev/a: /dev/b\t/dev/c::'\n", devices: []string{"/dev/a", "/dev/b", "/dev/c"}},
		{name: "comments and blanks", src: "# diskdump config\n\n   # indented comment\nDEVICE=/dev/sdb1 # trailing comment\nDUMPDIR=/srv/crash\n",
			devices: []string{"/dev/sdb1"}, dumpDir: "/srv/crash"},
		{name: "hash inside word", src: "DUMPDIR=/var/crash#1\n", dumpDir: "/var/crash#1"},
		{name: "export", src: "export DEVICE=/dev/sdb1 DUMPDIR=/x\nexport DEVICE\n", devices: []string{"/dev/sdb1"}, dumpDir: "/x"},
		{name: "semicolons", src: "DEVICE=/dev/a; DUMPDIR=/d;\n", devices: []string{"/dev/a"}, dumpDir: "/d"},
		{name: "several per line", src: "A=1 B=2\n", vars: map[string]string{"A": "1", "B": "2"}},
		{name: "expansion", src: "D1=/dev/sda3\nD2=/dev/hda\nDEVICE=\"$D1:${D2}\"\nE=\nX=$E-\n", devices: []string{"/dev/sda3", "/dev/hda"},
			vars: map[string]string{"X": "-"}},
		{name: "single quotes are literal", src: `V='$D1 "x" \n'`, vars: map[string]string{"V": `$D1 "x" \n`}},
		{name: "double quote escapes", src: `V="a\"b\\c\$d\e"`, vars: map[string]string{"V": `a"b\c$d\e`}},
		{name: "unquoted escapes", src: `V=a\ b\"c`, vars: map[string]string{"V": `a b"c`}},
		{name: "continuation", src: "DEVICE=/dev/a:\\\n/dev/b\n", devices: []string{"/dev/a", "/dev/b"}},
		{name: "multi-line quote", src: "DEVICE=\"/dev/a\n/dev/b\"\nDUMPDIR=/d\n", devices: []string{"/dev/a", "/dev/b"}, dumpDir: "/d"},
		{name: "empty value", src: "DEVICE=\nDUMPDIR=''\n"},
		{name: "opts kept", src: "SAVECORE_OPTS=\"-D -v\"\nDISKDUMPFMT_OPTS=-a\n", vars: map[string]string{"SAVECORE_OPTS": "-D -v", "DISKDUMPFMT_OPTS": "-a"}},
		{name: "dollar alone", src: "V=a$\n", vars: map[string]string{"V": "a$"}},
		{name: "crlf", src: "DEVICE=/dev/a\r\nDUMPDIR=/d\r\n", devices: []string{"/dev/a"}, dumpDir: "/d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(strings.NewReader(tc.src), "test.conf")
			require.NoError(t, err)
			assert.Equal(t, tc.devices, c.Devices)
			assert.Equal(t, tc.dumpDir, c.DumpDir)
			for k, v := range tc.vars {
				assert.Equal(t, v, c.Vars[k], "variable %s", k)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
	}{
		{name: "unquoted list", src: "# c\nDEVICE=/dev/sda3 /dev/hda\n", line: 2},
		{name: "command", src: "modprobe diskdump\n", line: 1},
		{name: "unterminated single", src: "A=1\nV='abc\n\n", line: 2},
		{name: "unterminated double", src: "V=\"abc\n", line: 1},
		{name: "command substitution", src: "A=1\n\nV=`hostname`\n", line: 3},
		{name: "dollar paren", src: "V=$(hostname)\n", line: 1},
		{name: "redirect", src: "V=a>b\n", line: 1},
		{name: "bad brace", src: "V=${A:-x}\n", line: 1},
		{name: "unterminated brace", src: "V=${A\n", line: 1},
		{name: "export garbage", src: "export /x\n", line: 1},
		{name: "MAXDUMPS not a number", src: "A=1\nMAXDUMPS=many\n", line: 2},
		{name: "MAXDUMPS negative", src: "MAXDUMPS=-1\n", line: 1},
		{name: "MINFREE SI unit", src: "\n\nMINFREE=1M\n", line: 3},
		{name: "environment variable", src: "DEVICE=/dev/sdb1\nDUMPDIR=$HOME/crash\n", line: 2},
		{name: "environment variable in braces", src: "DUMPDIR=\"${HOME}/crash\"\n", line: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(tc.src), "x.conf")
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "x.conf", ce.Path)
			assert.Equal(t, tc.line, ce.Line)
			assert.True(t, strings.HasPrefix(err.Error(), "savecore: x.conf:"), err.Error())
		})
	}
}

func TestParseConfigLimits(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		maxDumps int
		minFree  int64
	}{
		{name: "unset", src: "DEVICE=/dev/sdb1\n"},
		{name: "empty", src: "MAXDUMPS=\nMINFREE=''\n"},
		{name: "KiB", src: "MAXDUMPS=5\nMINFREE=2048\n", maxDumps: 5, minFree: 2 << 20},
		{name: "IEC", src: "MAXDUMPS=\"3\" MINFREE=1Gi\n", maxDumps: 3, minFree: 1 << 30},
		{name: "zero keeps all", src: "MAXDUMPS=0\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(strings.NewReader(tc.src), "x.conf")
			require.NoError(t, err)
			assert.Equal(t, tc.maxDumps, c.MaxDumps)
			assert.Equal(t, tc.minFree, c.MinFree)
		})
	}
}

func TestParseConfigTooBig(t *testing.T) {
	_, err := ParseConfig(strings.NewReader(strings.Repeat("#", maxConfigBytes+1)), "big")
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "diskdump")
	require.NoError(t, os.WriteFile(p, []byte("DEVICE=/dev/sda3:/dev/hda\nDUMPDIR=/srv/crash\n"), 0o644))
	c, err := LoadConfig(p)
	require.NoError(t, err)
	assert.Equal(t, []string{"/dev/sda3", "/dev/hda"}, c.Devices)
	assert.Equal(t, "/srv/crash", c.DumpDir)

	_, err = LoadConfig(filepath.Join(dir, "missing"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"DEVICE=/dev/sda3:/dev/hda\n", "export A=\"x $B\" C='d'\n# c\n", "V=a\\\nb", "V=${A}$B$", "MAXDUMPS=3\nMINFREE=512Mi\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConfig(strings.NewReader(s), "fuzz")
		if err != nil {
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			return
		}
		for _, d := range c.Devices {
			assert.NotEmpty(t, d)
			assert.NotContains(t, d, ":")
		}
	})
}

func TestConfigDumpLevel(t *testing.T) {
	c, err := ParseConfig(strings.NewReader("DEVICE=/dev/sdb1\nDUMPLEVEL=19\n"), "diskdump")
	require.NoError(t, err)
	assert.Equal(t, 19, c.DumpLevel)
	for _, bad := range []string{"32", "-1", "x"} {
		_, err := ParseConfig(strings.NewReader("DUMPLEVEL="+bad+"\n"), "diskdump")
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, bad)
		assert.Contains(t, ce.Msg, "want diskdump's dump_level, 0 to 31")
	}
}
