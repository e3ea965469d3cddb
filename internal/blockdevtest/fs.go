package blockdevtest

import (
	"testing"
)

// Mkfs runs a filesystem-making tool (mkfs.ext4, mkswap, pvcreate, ...) on
// target, a device or image file, with args before the target. It skips
// (or fails under DISKDUMP_REQUIRE_LOOP=1) when the tool is missing.
func Mkfs(t testing.TB, tool, target string, args ...string) {
	t.Helper()
	Run(t, tool, append(args, target)...)
}

// MakeExt4 makes an ext4 filesystem on target with mkfs.ext4.
func MakeExt4(t testing.TB, target string) {
	t.Helper()
	Mkfs(t, "mkfs.ext4", target, "-q", "-F")
}

// Mount mounts dev on a new temporary directory and returns the mount
// point; the filesystem is unmounted in t.Cleanup. fstype may be empty to
// let mount guess. It needs root.
func Mount(t testing.TB, dev, fstype string) string {
	t.Helper()
	RequireLoop(t)
	dir := t.TempDir()
	args := []string{dev, dir}
	if fstype != "" {
		args = append([]string{"-t", fstype}, args...)
	}
	Run(t, "mount", args...)
	t.Cleanup(func() {
		if out, err := TryRun(t, "umount", dir); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// Swapon writes a swap signature on dev with mkswap and enables it; swap is
// disabled in t.Cleanup. It needs root.
func Swapon(t testing.TB, dev string) {
	t.Helper()
	RequireLoop(t)
	Mkfs(t, "mkswap", dev)
	Run(t, "swapon", dev)
	t.Cleanup(func() {
		if out, err := TryRun(t, "swapoff", dev); err != nil {
			t.Errorf("swapoff %s: %v\n%s", dev, err, out)
		}
	})
}
