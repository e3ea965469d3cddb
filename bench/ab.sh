#!/usr/bin/env bash
# Before/after of one optimisation: two savecore binaries on the same
# partition, alternating, REPS runs each, cold or warm page cache.
#   bench/ab.sh OLD_SAVECORE NEW_SAVECORE DEVICE cold|warm [savecore flags...]
source "$(dirname "$0")/lib.sh"
old=$1 new=$2 dev=$3 temp=$4; shift 4
out=$BENCH_DIR/ab; rm -rf "$out"; mkdir -p -m 0700 "$out"
RESULTS=$(mktemp)
[ "$temp" = warm ] && cat "$dev" >/dev/null
l0=$(loadavg)
for _ in $(seq "$REPS"); do
  settle "$temp"; timed before "$old" -q -f -d "$out" "$@" "$dev"; rm -rf "$out"/127.0.0.1-*
  settle "$temp"; timed after "$new" -q -f -d "$out" "$@" "$dev"; rm -rf "$out"/127.0.0.1-*
done
echo "### $dev, $temp cache, savecore $* ($REPS runs each, alternating; load $l0 -> $(loadavg))"
echo
summarize before "$(stat -L -c %s "$dev" 2>/dev/null || echo 0)"
rm -f "$RESULTS"; rm -rf "$out"
