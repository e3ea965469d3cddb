package blockdev

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const sampleMountinfo = `22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw,lowerdir=/a
36 22 7:3 / /mnt/dump\040area rw,noatime master:1 - ext4 /dev/loop3 rw
37 22 8:17 / /boot rw,relatime shared:2 - ext4 /dev/sdb1 rw
38 22 0:55 /@ /data rw,relatime shared:3 - btrfs /dev/sdc rw,space_cache=v2
39 22 0:5 / /dev rw,nosuid shared:4 opt:x - devtmpfs udev rw
`

func TestParseMountinfo(t *testing.T) {
	mounts, err := parseMountinfo(strings.NewReader(sampleMountinfo))
	require.NoError(t, err)
	require.Len(t, mounts, 5)
	assert.Equal(t, mountEntry{Major: 7, Minor: 3, MountPoint: "/mnt/dump area", FSType: "ext4", Source: "/dev/loop3"}, mounts[1])
	assert.Equal(t, mountEntry{Major: 0, Minor: 55, MountPoint: "/data", FSType: "btrfs", Source: "/dev/sdc"}, mounts[3])
	assert.Equal(t, "devtmpfs", mounts[4].FSType, "optional fields before the separator are skipped")
}

func TestParseMountinfoMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"no separator", "36 22 7:3 / /mnt rw,noatime ext4 /dev/loop3 rw\n"},
		{"no colon", "36 22 73 / /mnt rw - ext4 /dev/loop3 rw\n"},
		{"bad major", "36 22 x:3 / /mnt rw - ext4 /dev/loop3 rw\n"},
		{"bad minor", "36 22 7:-3 / /mnt rw - ext4 /dev/loop3 rw\n"},
		{"short", "36 22 7:3\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseMountinfo(strings.NewReader(tc.in))
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "blockdev: mountinfo line 1"), err.Error())
		})
	}
}

func TestParseSwaps(t *testing.T) {
	in := "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" +
		"/dev/dm-1                               partition\t8388604\t\t0\t\t-2\n" +
		"/var/swap\\040file                       file\t\t1048572\t\t0\t\t-3\n"
	names, err := parseSwaps(strings.NewReader(in))
	require.NoError(t, err)
	assert.Equal(t, []string{"/dev/dm-1", "/var/swap file"}, names)

	names, err = parseSwaps(strings.NewReader("Filename Type Size Used Priority\n"))
	require.NoError(t, err)
	assert.Empty(t, names)
}

func TestUnescapeOctal(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "/mnt/a", "/mnt/a"},
		{"space", `/mnt/a\040b`, "/mnt/a b"},
		{"tab newline backslash", `\011\012\134`, "\t\n\\"},
		{"truncated escape", `/mnt\04`, `/mnt\04`},
		{"not octal", `/mnt\089`, `/mnt\089`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, unescapeOctal(tc.in))
		})
	}
}

// fakeProc points the /proc readers at files in a temporary directory.
func fakeProc(t *testing.T, mountinfo, swaps string) {
	t.Helper()
	dir := t.TempDir()
	mi, sw := filepath.Join(dir, "mountinfo"), filepath.Join(dir, "swaps")
	require.NoError(t, os.WriteFile(mi, []byte(mountinfo), 0o644))
	require.NoError(t, os.WriteFile(sw, []byte(swaps), 0o644))
	oldMI, oldSW := mountinfoPath, swapsPath
	mountinfoPath, swapsPath = mi, sw
	t.Cleanup(func() { mountinfoPath, swapsPath = oldMI, oldSW })
}

func TestMountedMatchesMajorMinor(t *testing.T) {
	fakeProc(t, sampleMountinfo, "Filename Type Size Used Priority\n")
	tests := []struct {
		name     string
		devs     map[uint64]string
		wantMP   string
		wantPart string
	}{
		{"device itself", map[uint64]string{unix.Mkdev(7, 3): ""}, "/mnt/dump area", ""},
		{"partition of whole disk", map[uint64]string{unix.Mkdev(8, 16): "", unix.Mkdev(8, 17): "/dev/sdb1"}, "/boot", "/dev/sdb1"},
		{"not mounted", map[uint64]string{unix.Mkdev(8, 32): ""}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := &target{devs: tc.devs}
			mp, part, err := tg.mounted()
			require.NoError(t, err)
			assert.Equal(t, tc.wantMP, mp)
			assert.Equal(t, tc.wantPart, part)
		})
	}
}

func TestRegularFileSwap(t *testing.T) {
	img := filepath.Join(t.TempDir(), "swap file")
	require.NoError(t, os.WriteFile(img, make([]byte, 4096), 0o600))
	escaped := strings.ReplaceAll(img, " ", `\040`)

	fakeProc(t, sampleMountinfo, "Filename Type Size Used Priority\n")
	ie, err := CheckInUse(img)
	require.NoError(t, err)
	assert.Nil(t, ie)
	swap, err := SwapActive(img)
	require.NoError(t, err)
	assert.False(t, swap)

	fakeProc(t, sampleMountinfo, "Filename Type Size Used Priority\n"+escaped+" file 4 0 -2\n")
	swap, err = SwapActive(img)
	require.NoError(t, err)
	assert.True(t, swap)
	ie, err = CheckInUse(img)
	require.NoError(t, err)
	require.NotNil(t, ie)
	assert.True(t, ie.Swap)
	assert.ErrorIs(t, ie, ErrInUse)

	d, err := Open(img, ReadWrite)
	assert.Nil(t, d)
	assert.ErrorIs(t, err, ErrInUse, "a swap file must not be opened for writing")
	d, err = Open(img, ReadOnly)
	require.NoError(t, err, "reading a swap file is allowed")
	assert.NoError(t, d.Close())
}

func TestCheckInUseErrors(t *testing.T) {
	_, err := CheckInUse(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = CheckInUse(t.TempDir())
	assert.ErrorIs(t, err, ErrNotDevice)
	_, err = SwapActive("/dev/null")
	assert.ErrorIs(t, err, ErrNotDevice)
}

// fakeSysfs builds /sys/dev/block entries for a disk 7:0 with partition
// 259:1 (loop0p1), and for an unrelated partition 8:1.
func fakeSysfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, data string) {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	write("7:0/dev", "7:0\n")
	write("7:0/loop0p1/dev", "259:1\n")
	write("7:0/loop0p1/partition", "1\n")
	write("7:0/queue/dev", "not a partition\n") // a directory without "partition"
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "7:0/holders"), 0o755))
	write("8:1/partition", "1\n")
	write("8:1/holders/dm-3", "")
	old := sysDevBlock
	sysDevBlock = dir
	t.Cleanup(func() { sysDevBlock = old })
	return dir
}

func TestBlockFamily(t *testing.T) {
	fakeSysfs(t)
	tests := []struct {
		name string
		dev  uint64
		want map[uint64]string
	}{
		{"whole disk", unix.Mkdev(7, 0), map[uint64]string{unix.Mkdev(7, 0): "", unix.Mkdev(259, 1): "/dev/loop0p1"}},
		{"partition", unix.Mkdev(8, 1), map[uint64]string{unix.Mkdev(8, 1): ""}},
		{"unknown to sysfs", unix.Mkdev(9, 9), map[uint64]string{unix.Mkdev(9, 9): ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, blockFamily(tc.dev))
		})
	}
}

func TestHolder(t *testing.T) {
	fakeSysfs(t)
	tests := []struct {
		name string
		devs map[uint64]string
		want string
		part string
	}{
		{"held", map[uint64]string{unix.Mkdev(8, 1): ""}, "dm-3", ""},
		{"partition held", map[uint64]string{unix.Mkdev(8, 0): "", unix.Mkdev(8, 1): "/dev/sda1"}, "dm-3", "/dev/sda1"},
		{"empty holders", map[uint64]string{unix.Mkdev(7, 0): ""}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			holder, part := (&target{devs: tc.devs}).holder()
			assert.Equal(t, tc.want, holder)
			assert.Equal(t, tc.part, part)
		})
	}
}
