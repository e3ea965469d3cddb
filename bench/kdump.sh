#!/usr/bin/env bash
# KDUMP output vs makedumpfile (issue 8, benchmark 3).
# savecore -F kdump of a raw rehearsal dump (our compression, parallel) vs
# `makedumpfile -c -d 0` turning an ELF vmcore of the same memory (made by
# savecore -F elf from the same partition) into the same kdump-compressed
# format. makedumpfile needs no vmlinux or VMCOREINFO for -d 0: it only
# needs the PT_LOAD segments. Both read page-cache-warm input (the ELF
# vmcore and the partition are read once before) and write to the same
# filesystem, synced before each run; this is a CPU comparison. Throughput
# is the memory size over the wall time; CPU time (user+sys) per GiB of
# memory is reported too, since the machine may be shared.
#   bench/kdump.sh [RAM]
source "$(dirname "$0")/lib.sh"

# timed_cpu NAME CMD...: timed, and appends "NAME user_s sys_s" to $CPU.
timed_cpu() {
  local name=$1; shift
  local tf; tf=$(mktemp)
  /usr/bin/time -f "%e %M %U %S" -o "$tf" "$@" >/dev/null 2>"$tf.err" || { cat "$tf.err" >&2; rm -f "$tf" "$tf.err"; return 1; }
  local e m u s
  read -r e m u s < <(tail -1 "$tf")
  echo "$name $e $m" >> "$RESULTS"
  echo "$name $u $s" >> "$CPU"
  rm -f "$tf" "$tf.err"
}
ram=${1:-1G}
build
raw_dump_with_elf "$BENCH_DIR/part-kdump.img" "$ram" "$BENCH_DIR/kout"
RESULTS=$(mktemp)
CPU=$(mktemp)
l0=$(loadavg)
for _ in $(seq "$REPS"); do
  rm -f "$out/mdf.kdump"; sync
  timed_cpu makedumpfile makedumpfile -c -d 0 "$elf" "$out/mdf.kdump"
  mdf_size=$(stat -c %s "$out/mdf.kdump")
  rm -rf "$out/kd"; mkdir -p -m 0700 "$out/kd"; sync
  timed_cpu savecore-kdump "$BIN/savecore" -q -F kdump -d "$out/kd" "$img"
  our_size=$(stat -c %s "$out"/kd/*/vmcore)
done
echo "### KDUMP output, RAM $ram: savecore -F kdump (raw partition) vs makedumpfile -c -d 0 (ELF vmcore) ($REPS runs each, alternating; load $l0 -> $(loadavg))"
echo
summarize makedumpfile "$ram_bytes"
echo
echo "File sizes: makedumpfile $mdf_size bytes, savecore -F kdump $our_size bytes (ratio $(python3 -c "print('%.3f' % ($our_size/$mdf_size))"))."
python3 - "$CPU" "$ram_bytes" <<'PY'
import sys, statistics, collections
path, nbytes = sys.argv[1], int(sys.argv[2])
cpu = collections.OrderedDict()
for line in open(path):
    n, u, s = line.split()
    cpu.setdefault(n, []).append((float(u), float(s)))
print()
print("CPU time per GiB of memory (median of the runs, user+sys): " + "; ".join(
    "%s %.2f s (user %.2f, sys %.2f)" % (n, statistics.median((u + s) for u, s in v) * 2**30 / nbytes,
        statistics.median(u for u, _ in v) * 2**30 / nbytes, statistics.median(s for _, s in v) * 2**30 / nbytes)
    for n, v in cpu.items()) + ".")
PY
rm -f "$RESULTS" "$CPU"; rm -rf "$out" "$img"
echo; machine
