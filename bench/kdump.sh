#!/usr/bin/env bash
# KDUMP output vs makedumpfile (issue 8, benchmark 3).
# savecore -F kdump of a raw rehearsal dump (our compression, parallel) vs
# `makedumpfile -c -d 0` turning an ELF vmcore of the same memory (made by
# savecore -F elf from the same partition) into the same kdump-compressed
# format. makedumpfile needs no vmlinux or VMCOREINFO for -d 0: it only
# needs the PT_LOAD segments. Both read page-cache-warm input (the ELF
# vmcore and the partition are read once before) and write to the same
# filesystem, synced before each run; this is a CPU comparison. Throughput
# is the memory size over the wall time.
#   bench/kdump.sh [RAM]
source "$(dirname "$0")/lib.sh"
ram=${1:-1G}
build
img=$BENCH_DIR/part-kdump.img
ram_bytes=$(numfmt --from=iec "$ram")
rm -f "$img"; truncate -s $((ram_bytes + 1024*1024)) "$img"
"$BIN/dumpformat" -f -q "$img"
"$BIN/dumpformat" -R -q --arch x86_64 --dump-level 0 --ram "$ram" --seed 7 "$img" >&2
out=$BENCH_DIR/kout; rm -rf "$out"; mkdir -p -m 0700 "$out/elf"
"$BIN/savecore" -q -F elf -d "$out/elf" "$img" >/dev/null
elf=$(ls "$out"/elf/*/vmcore)
cat "$elf" "$img" >/dev/null
RESULTS=$(mktemp)
l0=$(loadavg)
for _ in $(seq "$REPS"); do
  rm -f "$out/mdf.kdump"; sync
  timed makedumpfile makedumpfile -c -d 0 "$elf" "$out/mdf.kdump"
  mdf_size=$(stat -c %s "$out/mdf.kdump")
  rm -rf "$out/kd"; mkdir -p -m 0700 "$out/kd"; sync
  timed savecore-kdump "$BIN/savecore" -q -F kdump -d "$out/kd" "$img"
  our_size=$(stat -c %s "$out"/kd/*/vmcore)
done
echo "### KDUMP output, RAM $ram: savecore -F kdump (raw partition) vs makedumpfile -c -d 0 (ELF vmcore) ($REPS runs each, alternating; load $l0 -> $(loadavg))"
echo
summarize makedumpfile "$ram_bytes"
echo
echo "File sizes: makedumpfile $mdf_size bytes, savecore -F kdump $our_size bytes (ratio $(python3 -c "print('%.3f' % ($our_size/$mdf_size))"))."
rm -f "$RESULTS"; rm -rf "$out" "$img"
echo; machine
