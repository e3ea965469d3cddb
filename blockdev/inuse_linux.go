package blockdev

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Paths of the kernel interfaces CheckInUse reads; variables so that a
// test can point them elsewhere.
var (
	mountinfoPath = "/proc/self/mountinfo"
	swapsPath     = "/proc/swaps"
	sysDevBlock   = "/sys/dev/block"
)

// target is a resolved device or file whose use we look up.
type target struct {
	path, real string
	fi         os.FileInfo
	// devs maps the device number of a block device, and of each of its
	// partitions if it is a whole disk, to a display name ("" for the
	// device itself, "/dev/sdb1" for a partition).
	devs map[uint64]string
}

func newTarget(path string) (*target, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	if real, err = filepath.Abs(real); err != nil {
		return nil, err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	t := &target{path: path, real: real, fi: fi}
	switch {
	case isBlock(fi):
		t.devs = blockFamily(rdev(fi))
	case fi.Mode().IsRegular():
	default:
		return nil, &os.PathError{Op: "stat", Path: real, Err: ErrNotDevice}
	}
	return t, nil
}

// rdev returns the device number a block device node stands for.
func rdev(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Rdev) // uint32 on some architectures
	}
	return 0
}

// blockFamily returns dev and, when sysfs lists it as a whole disk, its
// partitions. Without sysfs the device alone is matched.
func blockFamily(dev uint64) map[uint64]string {
	devs := map[uint64]string{dev: ""}
	dir := filepath.Join(sysDevBlock, devNum(dev))
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		return devs // a partition has no partitions of its own
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return devs
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "dev"))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "partition")); err != nil {
			continue
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min); err == nil {
			devs[unix.Mkdev(maj, min)] = "/dev/" + e.Name()
		}
	}
	return devs
}

func devNum(dev uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
}

// CheckInUse reports whether path is mounted, active swap or held by another
// kernel driver (device-mapper, md, ...), without opening it for writing.
// It returns (nil, nil) when it finds no use. For a whole disk, its
// partitions count too. Mounts are found by major:minor in
// /proc/self/mountinfo, and by mount source for filesystems such as Btrfs
// that report an anonymous device number. A regular file can only be found
// as a swap file. An O_EXCL open by another process is invisible here; only
// [Open] with [ReadWrite] detects it.
func CheckInUse(path string) (*InUseError, error) {
	t, err := newTarget(path)
	if err != nil {
		return nil, err
	}
	ie := &InUseError{Path: path, Dev: t.real}
	if t.devs != nil {
		mp, part, err := t.mounted()
		if err != nil {
			return nil, err
		}
		if mp != "" {
			ie.MountPoint, ie.Part = mp, part
			return ie, nil
		}
	}
	swap, part, err := t.swap()
	if err != nil {
		return nil, err
	}
	if swap {
		ie.Swap, ie.Part = true, part
		return ie, nil
	}
	if h, part := t.holder(); h != "" {
		ie.Holder, ie.Part = h, part
		return ie, nil
	}
	if t.devs == nil {
		if loop := t.backedLoop(); loop != "" {
			ie.Holder = loopHolder(loop)
			return ie, nil
		}
	}
	return nil, nil
}

// sysBlock lists the block devices; a variable so that tests can point it
// elsewhere.
var sysBlock = "/sys/block"

// backedLoop returns the loop device (/dev/loopN) whose backing file is
// the regular file t, or "". A file attached to a loop device is in use
// exactly like the device: writing one behind the other's back corrupts
// whatever the loop device holds.
func (t *target) backedLoop() string {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sysBlock, e.Name(), "loop", "backing_file"))
		if err != nil {
			continue // not attached
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if fi, err := os.Stat(name); err == nil && os.SameFile(fi, t.fi) {
			return "/dev/" + e.Name()
		}
		if sameLoopInode("/dev/"+e.Name(), t.fi) {
			return "/dev/" + e.Name()
		}
	}
	return ""
}

// sameLoopInode asks the loop device which inode backs it (the path in
// sysfs may belong to another mount namespace or have been renamed).
func sameLoopInode(loop string, fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	f, err := os.Open(loop)
	if err != nil {
		return false
	}
	defer f.Close()
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	return err == nil && info.Inode == st.Ino && info.Device == uint64(st.Dev)
}

// loopHolder names a loop device for messages, with its own use: "loop
// device /dev/loop3 (mounted on /mnt)".
func loopHolder(loop string) string {
	h := "loop device " + loop
	if ie, err := CheckInUse(loop); err == nil && ie != nil {
		why := strings.TrimPrefix(ie.Error(), "blockdev: "+ie.name()+" is in use: ")
		h += " (" + why + ")"
	}
	return h
}

// holder returns a kernel holder (device-mapper, md, bcache, ...) of the
// device or one of its partitions (named by part), as listed in sysfs.
func (t *target) holder() (holder, part string) {
	for dev, part := range t.devs {
		ents, err := os.ReadDir(filepath.Join(sysDevBlock, devNum(dev), "holders"))
		if err == nil && len(ents) > 0 {
			return ents[0].Name(), part
		}
	}
	return "", ""
}

// SwapActive reports whether path, a block device (or one of its partitions)
// or a swap file, is listed in /proc/swaps.
func SwapActive(path string) (bool, error) {
	t, err := newTarget(path)
	if err != nil {
		return false, err
	}
	swap, _, err := t.swap()
	return swap, err
}

func (t *target) mounted() (mountPoint, part string, err error) {
	f, err := os.Open(mountinfoPath)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	mounts, err := parseMountinfo(f)
	if err != nil {
		return "", "", err
	}
	for _, m := range mounts {
		if p, ok := t.devs[unix.Mkdev(m.Major, m.Minor)]; ok {
			return m.MountPoint, p, nil
		}
	}
	// Btrfs (and anything else on an anonymous device number) shows 0:N in
	// mountinfo; the mount source still names the real device.
	for _, m := range mounts {
		if !strings.HasPrefix(m.Source, "/dev/") {
			continue
		}
		if p, ok := t.matchDev(m.Source); ok {
			return m.MountPoint, p, nil
		}
	}
	return "", "", nil
}

// matchDev reports whether name is a block device in t.devs.
func (t *target) matchDev(name string) (part string, ok bool) {
	fi, err := os.Stat(name)
	if err != nil || !isBlock(fi) {
		return "", false
	}
	part, ok = t.devs[rdev(fi)]
	return part, ok
}

func (t *target) swap() (swap bool, part string, err error) {
	b, err := os.ReadFile(swapsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return false, "", nil // kernel without swap support
	}
	if err != nil {
		return false, "", err
	}
	names, err := parseSwaps(strings.NewReader(string(b)))
	if err != nil {
		return false, "", err
	}
	for _, name := range names {
		if t.devs != nil {
			if p, ok := t.matchDev(name); ok {
				return true, p, nil
			}
			continue
		}
		if fi, err := os.Stat(name); err == nil && os.SameFile(fi, t.fi) {
			return true, "", nil
		}
	}
	return false, "", nil
}
