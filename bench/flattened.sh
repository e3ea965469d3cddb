#!/usr/bin/env bash
# savecore vs `makedumpfile -R` on a kdump raw-target partition (issue 17):
# both rebuild the vmcore of the flattened stream that `dumpformat -R
# --flattened` wrote over old contents, as the capture kernel's
# `makedumpfile -F | dd` does. Outputs are compared with cmp (they must be
# identical); runs alternate, cold (page cache dropped, root only) and warm.
#   bench/flattened.sh [RAM]   (default 1G: the synthetic machine's memory)
source "$(dirname "$0")/lib.sh"
REPS=${REPS:-3}
ram=${1:-1G}
build
img=$BENCH_DIR/raw-flattened.img
ram_bytes=$(numfmt --from=iec "$ram")
rm -f "$img"
# The partition: room for the stream of an incompressible machine, sparse
# (after a complete stream the old contents are never read).
truncate -s $((ram_bytes + 64*1024*1024)) "$img"
"$BIN/dumpformat" -R -q --flattened --compress zlib --arch x86_64 --ram "$ram" --seed 7 "$img" >&2
stream=$("$BIN/dumpformat" -c --json "$img" | python3 -c 'import json,sys; f=json.load(sys.stdin)["flattened"]; print(f["stream_bytes"], f["vmcore_bytes"], f["records"])' || true)
read -r sbytes vbytes records <<<"$stream"
out=$BENCH_DIR/flat-out; rm -rf "$out"; mkdir -p -m 0700 "$out"
ref=$BENCH_DIR/flat-ref.vmcore
RESULTS=$(mktemp)
l0=$(loadavg)
for temp in cold warm; do
  [ "$temp" = warm ] && cat "$img" >/dev/null
  for _ in $(seq "$REPS"); do
    rm -f "$ref"; settle "$temp"
    timed "makedumpfile -R ($temp)" sh -c "timeout 600 makedumpfile -R '$ref' < '$img'"
    # makedumpfile -R leaves the vmcore in the page cache; savecore's is on
    # the disk when it exits. The same with an fsync of makedumpfile's file:
    rm -f "$ref"; settle "$temp"
    timed "makedumpfile -R + fsync ($temp)" sh -c "timeout 600 makedumpfile -R '$ref' < '$img' && sync '$ref'"
    rm -rf "$out"/127.0.0.1-*; settle "$temp"
    timed "savecore ($temp)" "$BIN/savecore" -q -d "$out" "$img"
    cmp "$ref" "$out"/127.0.0.1-*/vmcore
  done
done
echo "### kdump raw target: flattened KDUMP stream of a $ram synthetic machine ($records records, stream $(numfmt --to=iec-i "$sbytes")B, vmcore $(numfmt --to=iec-i "$vbytes")B); $REPS runs each, alternating; outputs identical (cmp); load $l0 -> $(loadavg)"
echo
machine
echo
python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    n, s, rss = line.rsplit(None, 2)
    runs.setdefault(n, []).append((float(s), int(rss)))
print("| run | n | median s | min s | max s | peak RSS MiB | savecore / (makedumpfile -R + fsync) |")
print("|---|---|---|---|---|---|---|")
for n, v in runs.items():
    ss = sorted(s for s, _ in v)
    temp = n[n.index("("):]
    other = runs.get("makedumpfile -R + fsync " + temp)
    ratio = "%.2f" % (statistics.median(ss) / statistics.median(s for s, _ in other)) if other and n.startswith("savecore") else "-"
    print("| %s | %d | %.2f | %.2f | %.2f | %.1f | %s |" % (n, len(v), statistics.median(ss), ss[0], ss[-1], max(r for _, r in v) / 1024, ratio))
PY
rm -f "$RESULTS" "$ref" "$img"; rm -rf "$out"
