#!/usr/bin/env bash
# KDUMP page compressions (issue 18): savecore -F kdump --compress
# zlib|lzo|snappy|zstd and savecore -F elf of the same raw rehearsal dump,
# and makedumpfile -c (zlib) and -l (lzo) of the same memory, fed to it as
# the ELF vmcore savecore makes of that partition (makedumpfile needs no
# vmlinux for -d 0). All runs alternate, REPS times each, warm (the
# partition and the ELF vmcore read once first, sync before each run) or
# cold (caches dropped before each run). savecore's vmcore is fsynced when
# it exits; makedumpfile's is not. File sizes are printed last.
#   bench/compress.sh [RAM] [warm|cold]
# COMPRESS="elf lzo" and MDF="l" restrict the runs (default: all).
source "$(dirname "$0")/lib.sh"
ram=${1:-1G}
mode=${2:-warm}
build
img=$BENCH_DIR/part-compress.img
ram_bytes=$(numfmt --from=iec "$ram")
rm -f "$img"; truncate -s $((ram_bytes + 1024*1024)) "$img"
"$BIN/dumpformat" -f -q "$img"
"$BIN/dumpformat" -R -q --arch x86_64 --dump-level 0 --ram "$ram" --seed 7 "$img" >&2
out=$BENCH_DIR/cout; rm -rf "$out"; mkdir -p -m 0700 "$out/elf"
"$BIN/savecore" -q -F elf -d "$out/elf" "$img" >/dev/null
elf=$(ls "$out"/elf/*/vmcore)
cat "$elf" "$img" >/dev/null
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
  for m in ${MDF:-c l}; do
    rm -f "$out/mdf-$m.kdump"; settle "$mode"
    timed "makedumpfile-$m" makedumpfile -$m -d 0 "$elf" "$out/mdf-$m.kdump"
    size[mdf-$m]=$(du -k "$out/mdf-$m.kdump" | cut -f1)
  done
done
echo "### savecore -F kdump --compress X vs -F elf vs makedumpfile, RAM $ram, $mode ($REPS runs each, alternating; load $l0 -> $(loadavg))"
echo
summarize savecore-elf "$ram_bytes"
echo
for k in elf zlib lzo snappy zstd mdf-c mdf-l; do [ -z "${size[$k]:-}" ] || echo "- $k: ${size[$k]} KiB allocated"; done
