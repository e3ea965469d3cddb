#!/usr/bin/env bash
# Creates the benchmark filesystem (root): an ext4 filesystem, mounted
# without `discard`, on a sparse image file attached with
# `losetup --direct-io=on` (no double caching). Needed where / is mounted
# with discard: deleting a 1 GiB file there issues synchronous discards
# that take minutes. Prints the mount point; use it as BENCH_DIR:
#   BENCH_DIR=$(bench/setup-fs.sh) bench/savecore.sh raw 1G file
#   bench/setup-fs.sh --remove     # unmount, detach, delete
set -euo pipefail
base=${BENCH_BASE:-/var/tmp/dumpkit-bench}
size=${BENCH_FS_SIZE:-30G}
img=$base/fs.img mnt=$base/fs
if [ "${1:-}" = --remove ]; then
  if mountpoint -q "$mnt"; then
    dev=$(findmnt -no SOURCE "$mnt"); umount "$mnt"; losetup -d "$dev"
  fi
  rm -f "$img"; exit 0
fi
mkdir -p "$mnt"
if ! mountpoint -q "$mnt"; then
  [ -f "$img" ] || { truncate -s "$size" "$img"; mkfs.ext4 -q -F -E nodiscard "$img"; }
  dev=$(losetup --find --show --direct-io=on "$img")
  mount -o nodiscard "$dev" "$mnt"
fi
echo "$mnt"
