# Shared helpers for the benchmark scripts (sourced, bash).
# Each comparison alternates the two sides, repeats REPS times, and reports
# median and spread (min-max) of wall time, plus peak RSS from /usr/bin/time.
set -euo pipefail
REPS=${REPS:-5}
BENCH_DIR=${BENCH_DIR:-/var/tmp/dumpkit-bench}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
mkdir -p "$BENCH_DIR"

build() { (cd "$ROOT" && go build -o "$BIN/" ./cmd/savecore ./cmd/dumpformat); }

# drop_caches: cold runs read from the disk, not the page cache (root only).
# The sync first also makes sure no write-back of the previous run is still
# going on while the next one is timed.
drop_caches() {
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; else echo "warning: cannot drop caches (not root)" >&2; fi
}

# settle TEMP: before each timed run: cold drops the page cache, warm only
# waits for the write-back of the previous run.
settle() { if [ "$1" = cold ]; then drop_caches; else sync; fi; }

# timed NAME CMD...: runs CMD, appends "NAME seconds maxrss_kib" to $RESULTS
# and "NAME user+sys_seconds" to $RESULTS.cpu (CPU time is far less
# disturbed by other jobs on a shared machine than wall time).
timed() {
  local name=$1; shift
  local tf; tf=$(mktemp)
  /usr/bin/time -f "%e %M %U %S" -o "$tf" "$@" >/dev/null 2>"$tf.err" || { cat "$tf.err" >&2; rm -f "$tf" "$tf.err"; return 1; }
  local e m u s
  read -r e m u s < <(tail -1 "$tf")
  echo "$name $e $m" >> "$RESULTS"
  awk -v n="$name" -v u="$u" -v s="$s" 'BEGIN { printf "%s %.2f\n", n, u + s }' >> "$RESULTS.cpu"
  rm -f "$tf" "$tf.err"
}

# summarize BASE [NBYTES]: prints a markdown table of median/min/max seconds,
# MB/s, median CPU seconds (user+sys, when timed recorded them) and peak RSS
# per name, and the ratio of each median to BASE's median.
summarize() {
  python3 - "$RESULTS" "$1" "${2:-0}" <<'PY'
import sys, statistics, collections
path, base, nbytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = collections.OrderedDict()
for line in open(path):
    n, s, rss = line.rsplit(None, 2)
    runs.setdefault(n, []).append((float(s), int(rss)))
med = {n: statistics.median(s for s, _ in v) for n, v in runs.items()}
cpu = collections.defaultdict(list)
try:
    for line in open(path + ".cpu"):
        n, c = line.rsplit(None, 1)
        cpu[n].append(float(c))
except FileNotFoundError:
    pass
print("| run | n | median s | min s | max s | MiB/s (median) | CPU s (median) | peak RSS MiB | ratio to %s |" % base)
print("|---|---|---|---|---|---|---|---|---|")
for n, v in runs.items():
    ss = [s for s, _ in v]
    rate = "%.0f" % (nbytes / med[n] / 2**20) if nbytes and med[n] > 0 else "-"
    ratio = "%.2f" % (med[n] / med[base]) if base in med and med[base] > 0 else "-"
    c = "%.2f" % statistics.median(cpu[n]) if cpu[n] else "-"
    print("| %s | %d | %.2f | %.2f | %.2f | %s | %s | %.1f | %s |" % (n, len(v), med[n], min(ss), max(ss), rate, c, max(r for _, r in v) / 1024, ratio))
PY
}

# raw_dump_with_elf IMG RAM OUT: writes a raw rehearsal dump of a synthetic
# x86_64 machine of RAM (seed 7) to the image file IMG, saves it once as an
# ELF vmcore in OUT/elf (the same memory, for makedumpfile) and reads both
# into the page cache. Sets img, ram_bytes, out and elf.
raw_dump_with_elf() {
  img=$1 out=$3
  ram_bytes=$(numfmt --from=iec "$2")
  rm -f "$img"; truncate -s $((ram_bytes + 1024*1024)) "$img"
  "$BIN/dumpformat" -f -q "$img"
  "$BIN/dumpformat" -R -q --arch x86_64 --dump-level 0 --ram "$2" --seed 7 "$img" >&2
  rm -rf "$out"; mkdir -p -m 0700 "$out/elf"
  "$BIN/savecore" -q -F elf -d "$out/elf" "$img" >/dev/null
  elf=$(ls "$out"/elf/*/vmcore)
  cat "$elf" "$img" >/dev/null
}

# loadavg: the 1-minute load average now (the machine is shared).
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

machine() {
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r), filesystem of $BENCH_DIR: $(df -T "$BENCH_DIR" | awk 'NR==2{print $2" on "$1}'); $(date -u '+%F %H:%M UTC'); load average $(loadavg)"
}
