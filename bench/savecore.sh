#!/usr/bin/env bash
# savecore vs cp (issue 8, benchmarks 1, 2 and 5).
#   bench/savecore.sh raw 1G file|loop   savecore of a raw dump -> ELF, vs cp --sparse=always of the partition
#   bench/savecore.sh cmp 1G file|loop   savecore of a compressed dump -> DISKDUMP, vs dd of the written part
# savecore fsyncs its vmcore (and the directories) before it returns; cp does
# not, so each baseline is also timed followed by an fsync of its copy
# ("+fsync"), which is the like-for-like comparison, and "disk write" (dd
# oflag=direct conv=fsync of as many bytes from /dev/zero) gives the disk's
# durable write time for the dump's size, the floor for a durable save.
# Cold runs drop the page cache before each run (root); warm runs follow.
# Prints markdown tables for BENCHMARKS.md. REPS (default 5) repetitions, alternating.
# IMG=path reuses a partition image made earlier by this script (or by the
# same dumpformat commands) instead of writing a new one, and keeps it;
# SAVECORE_FLAGS adds flags to every savecore run (e.g. --verify).
source "$(dirname "$0")/lib.sh"
mode=${1:-raw}; ram=${2:-1G}; kind=${3:-file}; temps=${TEMPS:-cold warm}
build
img=${IMG:-$BENCH_DIR/part-$mode-$ram.img}
read -r -a scflags <<< "${SAVECORE_FLAGS:-}"
if [ -z "${IMG:-}" ]; then
  ram_bytes=$(numfmt --from=iec "$ram")
  # The partition is just large enough for the dump (headers, bitmaps and one
  # block per page, plus 1 MiB), so that cp copies what savecore reads.
  rm -f "$img"; truncate -s $((ram_bytes + 1024*1024)) "$img"
  "$BIN/dumpformat" -f -q "$img"
  args=(--arch x86_64 --dump-level 0 --ram "$ram" --seed 7)
  [ "$mode" = cmp ] && args+=(--compress)
  "$BIN/dumpformat" -R -q "${args[@]}" "$img" >&2
fi
dev=$img
if [ "$kind" = loop ]; then
  dev=$(losetup --find --show "$img"); trap 'losetup -d "$dev"' EXIT
fi
read -r written part < <("$BIN/dumpformat" -c --json "$dev" | python3 -c 'import json,sys; d=json.load(sys.stdin); h=d["header"]; print(h["written_blocks"]*h["block_size"], d["device_bytes"])' || true)
[ -n "$written" ] || { echo "cannot read written_blocks" >&2; exit 1; }
out=$BENCH_DIR/out; rm -rf "$out"; mkdir -p -m 0700 "$out"

one_cp() {
  if [ "$mode" = raw ]; then
    timed "cp" cp --sparse=always "$dev" "$out/copy"; rm -f "$out/copy"; settle "$1"
    timed "cp+fsync" sh -c 'cp --sparse=always "$1" "$2" && sync "$2"' sh "$dev" "$out/copy"
  else
    timed "dd" dd if="$dev" of="$out/copy" bs=1M count="$written" iflag=count_bytes status=none; rm -f "$out/copy"; settle "$1"
    timed "dd+fsync" dd if="$dev" of="$out/copy" bs=1M count="$written" iflag=count_bytes conv=fsync status=none
  fi
  rm -f "$out/copy"
  # The disk's own durable write speed for the same number of bytes, with
  # no reading at all: the floor of any save that must be on the disk when
  # it ends (savecore's contract), whatever it reads.
  settle "$1"
  timed "disk write" dd if=/dev/zero of="$out/copy" bs=1M count="$written" iflag=count_bytes oflag=direct conv=fsync status=none
  rm -f "$out/copy"
}
# FORMATS="elf diskdump kdump" times savecore -F for each format instead of
# the default one (ELF for raw dumps, DISKDUMP for compressed ones).
one_sc() {
  if [ -z "${FORMATS:-}" ]; then
    timed "savecore" "$BIN/savecore" -q -f "${scflags[@]}" -d "$out" "$dev"; rm -rf "$out"/127.0.0.1-*
    return
  fi
  for f in $FORMATS; do
    settle "$1"; timed "savecore -F $f" "$BIN/savecore" -q -f "${scflags[@]}" -F "$f" -d "$out" "$dev"
    echo "$f $(stat -c '%s %b' "$out"/127.0.0.1-*/vmcore)" >> "$SIZES"; rm -rf "$out"/127.0.0.1-*
  done
}

base=cp; [ "$mode" = cmp ] && base=dd
for temp in $temps; do
  RESULTS=$(mktemp); SIZES=$(mktemp)
  [ $temp = warm ] && { cat "$dev" >/dev/null; }
  l0=$(loadavg)
  for _ in $(seq "$REPS"); do
    settle $temp; one_cp $temp
    settle $temp; one_sc $temp
  done
  echo; echo "### $mode dump, RAM $ram, $kind, $temp cache ($REPS runs each, alternating; partition $part bytes, dump $written bytes; load $l0 -> $(loadavg))"
  echo
  summarize "$base" "$written"
  if [ -s "$SIZES" ]; then echo; echo "vmcore sizes (bytes, 512-byte blocks allocated):"; sort -u "$SIZES" | sed 's/^/    /'; fi
  rm -f "$RESULTS" "$SIZES"
done
echo; machine
[ "$kind" = loop ] && { losetup -d "$dev"; trap - EXIT; }
[ -z "${IMG:-}" ] && rm -f "$img"; rm -rf "$out"
