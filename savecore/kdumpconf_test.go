package savecore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseKdumpConf(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		ok      bool
		devices []string
		dir     string
	}{
		{name: "raw target", ok: true, devices: []string{"/dev/disk/by-id/wwn-0x5000-part3"}, dir: "/var/crash/raw",
			text: "# kdump.conf\nraw /dev/disk/by-id/wwn-0x5000-part3\npath \"/var/crash/raw\"  # saved here\ncore_collector makedumpfile -F -l --message-level 7 -d 31\n"},
		{name: "two raw lines, tabs", ok: true, devices: []string{"/dev/sdb1", "/dev/sdc1"},
			text: "raw\t/dev/sdb1\nraw '/dev/sdc1'\nfailure_action reboot\n"},
		{name: "filesystem target", ok: true, dir: "/var/crash", text: "path /var/crash\ncore_collector makedumpfile -l -d 31\n"},
		{name: "sysconfig file", text: "DEVICE=/dev/sdb1\nDUMPDIR=/var/crash\n"},
		{name: "no raw, path or collector", text: "failure_action reboot\n"},
		{name: "unknown keyword", text: "raw /dev/sdb1\nfrobnicate yes\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ok, err := ParseKdumpConf(strings.NewReader(tc.text), "kdump.conf")
			require.NoError(t, err)
			require.Equal(t, tc.ok, ok)
			if !ok {
				return
			}
			assert.Equal(t, tc.devices, cfg.Devices)
			assert.Equal(t, tc.dir, cfg.DumpDir)
		})
	}
	_, ok, err := ParseKdumpConf(strings.NewReader("raw\npath /x\n"), "kdump.conf")
	assert.True(t, ok)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 1, ce.Line)
}

// TestLoadConfigKdumpConf: -C accepts kdump.conf and the sysconfig file
// alike, told apart by their syntax.
func TestLoadConfigKdumpConf(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kdump.conf")
	require.NoError(t, os.WriteFile(kc, []byte("raw /dev/sdb1\npath /srv/crash\n"), 0o644))
	cfg, err := LoadConfig(kc)
	require.NoError(t, err)
	assert.Equal(t, []string{"/dev/sdb1"}, cfg.Devices)
	assert.Equal(t, "/srv/crash", cfg.DumpDir)
	sc := filepath.Join(dir, "diskdump")
	require.NoError(t, os.WriteFile(sc, []byte("DEVICE=/dev/sda3:/dev/hda\n"), 0o644))
	cfg, err = LoadConfig(sc)
	require.NoError(t, err)
	assert.Equal(t, []string{"/dev/sda3", "/dev/hda"}, cfg.Devices)
}

func FuzzParseKdumpConf(f *testing.F) {
	f.Add("raw /dev/sdb1\npath /var/crash\ncore_collector makedumpfile -F -l\n")
	f.Add("DEVICE=/dev/sda3\n")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, ok, err := ParseKdumpConf(strings.NewReader(s), "fuzz")
		if ok && err == nil {
			require.NotNil(t, cfg)
			for _, d := range cfg.Devices {
				require.NotEmpty(t, d)
			}
		}
	})
}
