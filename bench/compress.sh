#!/usr/bin/env bash
# KDUMP page compressions (issue 18): savecore -F kdump --compress
# zlib|lzo|snappy|zstd and savecore -F elf of the same raw rehearsal dump,
# and makedumpfile -c (zlib) and -l (lzo) of the same memory, fed to it as
# the ELF vmcore savecore makes of that partition (makedumpfile needs no
# vmlinux for -d 0). All runs alternate, REPS times each, warm (the
# partition and the ELF vmcore read once first, sync before each run) or
# cold (caches dropped before each run). savecore's vmcore is fsynced when
# it exits; makedumpfile's is not, so `makedumpfile-l+fsync` also runs
# `sync FILE` after it (the durable equivalent). File sizes are printed
# last.
#
# WRITE_MBPS=N limits writes to the block device under BENCH_DIR to N MB/s
# for the whole run (root; cgroup v1 blkio or v2 io.max of the root group,
# which also holds the kernel's write-back threads), to see how the result
# depends on the speed of the disk the vmcore goes to. The limit is removed
# on exit.
# COMPRESS="elf lzo" and MDF="l l+fsync" restrict the runs (default: all).
#   [WRITE_MBPS=N] [COMPRESS=...] [MDF=...] bench/compress.sh [RAM] [warm|cold]
source "$(dirname "$0")/lib.sh"
ram=${1:-1G}
mode=${2:-warm}
build

# throttle_writes MBPS: limits writes to BENCH_DIR's device; prints what
# was done. unthrottle undoes it.
throttle_dev=""
throttle_writes() {
  local src majmin
  src=$(df --output=source "$BENCH_DIR" | tail -1)
  majmin=$(lsblk -no MAJ:MIN "$src" | head -1 | tr -d ' ')
  throttle_dev=$majmin
  if [ -w /sys/fs/cgroup/blkio/blkio.throttle.write_bps_device ]; then
    echo "$majmin $(($1 * 1000000))" > /sys/fs/cgroup/blkio/blkio.throttle.write_bps_device
  elif [ -w /sys/fs/cgroup/io.max ]; then
    echo "$majmin wbps=$(($1 * 1000000))" > /sys/fs/cgroup/io.max
  else
    echo "cannot limit writes: no writable blkio throttle or io.max" >&2; exit 1
  fi
  echo "writes to $src ($majmin) limited to $1 MB/s" >&2
}
unthrottle() {
  [ -n "$throttle_dev" ] || return 0
  if [ -w /sys/fs/cgroup/blkio/blkio.throttle.write_bps_device ]; then
    echo "$throttle_dev 0" > /sys/fs/cgroup/blkio/blkio.throttle.write_bps_device
  else
    echo "$throttle_dev wbps=max" > /sys/fs/cgroup/io.max
  fi
}
trap unthrottle EXIT

raw_dump_with_elf "$BENCH_DIR/part-compress.img" "$ram" "$BENCH_DIR/cout"
[ -z "${WRITE_MBPS:-}" ] || throttle_writes "$WRITE_MBPS"
RESULTS=$(mktemp)
declare -A size
l0=$(loadavg)
for _ in $(seq "$REPS"); do
  for c in ${COMPRESS:-elf zlib lzo snappy zstd}; do
    rm -rf "$out/$c"; mkdir -p -m 0700 "$out/$c"; settle "$mode"
    if [ "$c" = elf ]; then
      timed savecore-elf "$BIN/savecore" -q -F elf -d "$out/$c" "$img"
    else
      timed "savecore-kdump-$c" "$BIN/savecore" -q -F kdump --compress "$c" -d "$out/$c" "$img"
    fi
    size[$c]=$(du -k "$out"/$c/*/vmcore | cut -f1)
  done
  for m in ${MDF:-c l l+fsync}; do
    f=$out/mdf-${m%+fsync}.kdump
    rm -f "$f"; settle "$mode"
    if [ "$m" = l+fsync ]; then
      timed "makedumpfile-$m" sh -c 'makedumpfile -l -d 0 "$1" "$2" && sync "$2"' sh "$elf" "$f"
    else
      timed "makedumpfile-$m" makedumpfile -"$m" -d 0 "$elf" "$f"
    fi
    size[mdf-${m%+fsync}]=$(du -k "$f" | cut -f1)
  done
done
echo "### savecore -F kdump --compress X vs -F elf vs makedumpfile, RAM $ram, $mode${WRITE_MBPS:+, writes limited to $WRITE_MBPS MB/s} ($REPS runs each, alternating; load $l0 -> $(loadavg))"
echo
machine
echo
summarize savecore-elf "$ram_bytes"
echo
for k in elf zlib lzo snappy zstd mdf-c mdf-l; do [ -z "${size[$k]:-}" ] || echo "- $k: ${size[$k]} KiB allocated"; done
rm -f "$RESULTS" "$RESULTS.cpu"
