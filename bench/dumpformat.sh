#!/usr/bin/env bash
# dumpformat -f vs dd if=/dev/zero bs=1M oflag=direct on 1 GiB (issue 7 and 8, benchmark 4).
#   bench/dumpformat.sh file|loop [SIZE]
# dumpformat -f writes a signature into every block (with O_DIRECT) and
# fsyncs; dd writes zeros with O_DIRECT (conv=fsync on the file also flushes its metadata).
# On a file each run starts from a fresh sparse file, as a first format does.
source "$(dirname "$0")/lib.sh"
kind=${1:-file}; size=${2:-1G}
build
bytes=$(numfmt --from=iec "$size")
img=$BENCH_DIR/fmt.img
rm -f "$img"; truncate -s "$bytes" "$img"
dev=$img
if [ "$kind" = loop ]; then dev=$(losetup --find --show "$img"); trap 'losetup -d "$dev"' EXIT; fi
# Control: the same signatures dumpformat writes, made once into a file on
# /dev/shm and copied by dd with the same flags: it separates the cost of
# the content (a virtual disk may write zeros faster than data) from
# dumpformat's own.
sig=/dev/shm/dumpkit-bench-signatures.img
rm -f "$sig"; truncate -s "$bytes" "$sig"; "$BIN/dumpformat" -f -q "$sig"
RESULTS=$(mktemp)
l0=$(loadavg)
for _ in $(seq "$REPS"); do
  if [ "$kind" = file ]; then rm -f "$img"; truncate -s "$bytes" "$img"; fi
  drop_caches; timed dd dd if=/dev/zero of="$dev" bs=1M count=$((bytes >> 20)) oflag=direct conv=notrunc,fsync status=none
  if [ "$kind" = file ]; then rm -f "$img"; truncate -s "$bytes" "$img"; fi
  drop_caches; timed "dumpformat -f" "$BIN/dumpformat" -f -q "$dev"
  if [ "$kind" = file ]; then rm -f "$img"; truncate -s "$bytes" "$img"; fi
  drop_caches; timed "dd signatures" dd if="$sig" of="$dev" bs=1M count=$((bytes >> 20)) oflag=direct conv=notrunc,fsync status=none
done
rm -f "$sig"
echo "### dumpformat -f vs dd oflag=direct, $size $kind ($REPS runs each, alternating; load $l0 -> $(loadavg))"
echo
summarize dd "$bytes"
rm -f "$RESULTS"
[ "$kind" = loop ] && { losetup -d "$dev"; trap - EXIT; }
rm -f "$img"
echo; machine
