package blockdev_test

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dumpkit/dumpkit/blockdev"
)

func TestInUseError(t *testing.T) {
	busy := &os.PathError{Op: "open", Path: "/dev/sdb", Err: syscall.EBUSY}
	tests := []struct {
		name string
		err  *blockdev.InUseError
		want string
	}{
		{"mounted", &blockdev.InUseError{Path: "/dev/sdb", Dev: "/dev/sdb", MountPoint: "/boot"},
			"blockdev: /dev/sdb is in use: mounted on /boot"},
		{"symlink partition mounted", &blockdev.InUseError{Path: "/dev/disk/by-id/x", Dev: "/dev/sdb", Part: "/dev/sdb1", MountPoint: "/boot"},
			"blockdev: /dev/disk/by-id/x (/dev/sdb) is in use: partition /dev/sdb1 mounted on /boot"},
		{"swap", &blockdev.InUseError{Path: "/dev/sdb2", Dev: "/dev/sdb2", Swap: true},
			"blockdev: /dev/sdb2 is in use: active swap"},
		{"holder", &blockdev.InUseError{Path: "/dev/sdc", Holder: "dm-0"},
			"blockdev: /dev/sdc is in use: held by dm-0"},
		{"busy", &blockdev.InUseError{Path: "/dev/sdb", Dev: "/dev/sdb", Err: busy},
			"blockdev: /dev/sdb is in use: open /dev/sdb: device or resource busy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.err.Error())
			assert.ErrorIs(t, tc.err, blockdev.ErrInUse)
			var ie *blockdev.InUseError
			assert.True(t, errors.As(error(tc.err), &ie))
		})
	}
	wrapped := &blockdev.InUseError{Path: "/dev/sdb", Err: busy}
	assert.ErrorIs(t, wrapped, syscall.EBUSY, "the errno must survive")
	assert.NotErrorIs(t, &blockdev.InUseError{Path: "/dev/sdb"}, syscall.EBUSY)
}

func TestRangeError(t *testing.T) {
	err := &blockdev.RangeError{Op: "write", Path: "/dev/sdb", Off: 0x1000, NBytes: 512, Size: 0x1000}
	assert.Equal(t, "blockdev: /dev/sdb write: 512 bytes at offset 0x1000 outside device size 0x1000", err.Error())
	assert.ErrorIs(t, err, blockdev.ErrOutOfRange)
	assert.NotErrorIs(t, err, blockdev.ErrInUse)
}
