// Package blockdev is dumpkit's only window onto the operating system's
// block devices.
//
// Red Hat diskdump has the crashing kernel write memory to a raw partition;
// after the reboot savecore copies it out and dumpformat prepares the
// partition beforehand. Everything those tools need from the host goes
// through this package:
//
//   - [Open] opens a block device or a regular image file as a [Device] with
//     io.ReaderAt/io.WriterAt semantics, a size fixed at open, and the
//     logical and physical sector sizes. Opening for writing uses O_EXCL on
//     block devices, so a mounted, swapped-on or otherwise held device is
//     refused with an [*InUseError] (errors.Is(err, [ErrInUse])).
//   - [OpenLocked] is [Open] after a flock(2) on the device or image file
//     (exclusive or shared), waiting a bounded time for another savecore or
//     dumpformat ([*LockedError], errors.Is(err, [ErrLocked]), names the
//     holder); [LockFile] locks any open file, e.g. a directory.
//   - [CheckInUse] reports the same condition without opening for writing,
//     by matching major:minor numbers in /proc/self/mountinfo and
//     /proc/swaps, looking for holders in sysfs, and, for an image file,
//     for a loop device it backs.
//   - [Probe] recognizes existing content (swap, ext2/3/4, XFS, Btrfs, VFAT,
//     LVM2 PV, LUKS) so dumpformat never overwrites a filesystem by mistake.
//     It is a pure function over an io.ReaderAt.
//   - Host helpers: [FreeSpace], [SyncDir], [Preallocate], [IsTerminal],
//     [SwapActive].
//
// Symbolic links such as /dev/disk/by-id/... are resolved at open;
// [Device.Path] keeps the name the user gave and [Device.RealPath] the
// device node actually used.
//
// The package never logs or prints. Errors from system calls keep their
// errno inside an *os.PathError; the package's own errors start with
// "blockdev: ".
//
// Package blockdevtest holds shared test helpers: loop devices, mkfs, mount
// and swap set-up for root-only tests, and a fault-injecting device.
package blockdev
