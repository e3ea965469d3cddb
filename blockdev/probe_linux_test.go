// Probe against images made by the real tools. Hand-made buffers in
// probe_test.go check the offsets we read; only mkfs.ext2/3/4, mkfs.xfs,
// mkfs.btrfs, mkfs.vfat, mkswap, pvcreate and cryptsetup show that those
// offsets and feature flags match what the tools actually write, in the
// versions installed. Most run on a plain image file without root;
// pvcreate refuses anything but a block device, so it needs a loop device.

package blockdev_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

// lvmConfig keeps pvcreate away from udev and the system devices file, so it
// works on a throw-away loop device in a container.
const lvmConfig = "devices { use_devicesfile = 0 obtain_device_list_from_udev = 0 } " +
	"activation { udev_sync = 0 udev_rules = 0 } global { use_lvmetad = 0 }"

func TestProbeRealTools(t *testing.T) {
	tests := []struct {
		name     string
		tool     string
		args     []string
		size     int64
		loop     bool // the tool needs a block device
		wantKind string
		wantOff  int64
	}{
		{"ext2", "mkfs.ext2", []string{"-q", "-F"}, 32 << 20, false, "ext2", 1024 + 0x38},
		{"ext3", "mkfs.ext3", []string{"-q", "-F"}, 32 << 20, false, "ext3", 1024 + 0x38},
		{"ext4", "mkfs.ext4", []string{"-q", "-F"}, 32 << 20, false, "ext4", 1024 + 0x38},
		{"ext4 without journal", "mkfs.ext4", []string{"-q", "-F", "-O", "^has_journal"}, 32 << 20, false, "ext4", 1024 + 0x38},
		{"xfs", "mkfs.xfs", []string{"-q", "-f"}, 320 << 20, false, "xfs", 0},
		{"btrfs", "mkfs.btrfs", []string{"-q", "-f"}, 256 << 20, false, "btrfs", 65536 + 0x40},
		{"vfat16", "mkfs.vfat", []string{"-F", "16"}, 32 << 20, false, "vfat", 54},
		{"vfat32", "mkfs.vfat", []string{"-F", "32"}, 64 << 20, false, "vfat", 82},
		{"swap", "mkswap", nil, 16 << 20, false, "swap", int64(os.Getpagesize() - 10)},
		{"lvm2", "pvcreate", []string{"-q", "-y", "-ff", "--config", lvmConfig}, 16 << 20, true, "LVM2_member", 512},
		{"luks2", "cryptsetup", []string{"luksFormat", "--batch-mode", "--type", "luks2",
			"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "KEYFILE"}, 32 << 20, false, "crypto_LUKS", 0},
		{"luks1", "cryptsetup", []string{"luksFormat", "--batch-mode", "--type", "luks1",
			"--pbkdf-force-iterations", "1000", "--key-file", "KEYFILE"}, 32 << 20, false, "crypto_LUKS", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			blockdevtest.RequireTool(t, tc.tool)
			img := blockdevtest.Image(t, tc.size)
			target := img
			if tc.loop {
				target = blockdevtest.AttachLoop(t, img)
			}
			key := filepath.Join(t.TempDir(), "key")
			require.NoError(t, os.WriteFile(key, []byte("not a secret"), 0o600))
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				if a == "KEYFILE" {
					a = key
				}
				args[i] = a
			}
			blockdevtest.Mkfs(t, tc.tool, target, args...)

			d, err := blockdev.Open(target, blockdev.ReadOnly)
			require.NoError(t, err)
			defer d.Close()
			sigs, err := blockdev.Probe(d, d.Size())
			require.NoError(t, err)
			require.Len(t, sigs, 1, "%s must leave exactly one signature we know: %v", tc.tool, sigs)
			assert.Equal(t, tc.wantKind, sigs[0].Kind, "%v", sigs)
			assert.Equal(t, tc.wantOff, sigs[0].Off, "%v", sigs)
			t.Logf("%v", sigs)
		})
	}
}
