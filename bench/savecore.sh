#!/usr/bin/env bash
# savecore vs cp (issue 8, benchmarks 1, 2 and 5).
#   bench/savecore.sh raw  1G file|loop   savecore of a raw dump -> ELF, vs cp --sparse=always of the partition
#   bench/savecore.sh cmp  1G file|loop   savecore of a compressed dump -> DISKDUMP, vs cp of the written part
# Cold runs drop the page cache before each run (root); warm runs follow.
# Prints markdown tables for BENCHMARKS.md. REPS (default 5) repetitions, alternating.
source "$(dirname "$0")/lib.sh"
mode=${1:-raw}; ram=${2:-1G}; kind=${3:-file}
build
img=$BENCH_DIR/part-$mode-$ram.img
ram_bytes=$(numfmt --from=iec "$ram")
rm -f "$img"; truncate -s $((ram_bytes + 96*1024*1024)) "$img"
"$BIN/dumpformat" -f "$img" >/dev/null
args=(--arch x86_64 --dump-level 0 --ram "$ram" --seed 7)
[ "$mode" = cmp ] && args+=(--compress)
"$BIN/dumpformat" -R "${args[@]}" "$img" >&2
dev=$img
if [ "$kind" = loop ]; then
  dev=$(losetup --find --show "$img"); trap 'losetup -d "$dev"' EXIT
fi
written=$("$BIN/dumpformat" -c --json "$dev" | python3 -c 'import json,sys; d=json.load(sys.stdin); h=d.get("header",d); print(h["written_blocks"]*h["block_size"])' || true)
[ -n "$written" ] || { echo "cannot read written_blocks" >&2; exit 1; }
out=$BENCH_DIR/out; rm -rf "$out"; mkdir -p -m 0700 "$out"

one_cp() {
  if [ "$mode" = raw ]; then timed "cp$1" cp --sparse=always "$dev" "$out/copy"
  else timed "cp$1" dd if="$dev" of="$out/copy" bs=1M count="$written" iflag=count_bytes status=none; fi
  rm -f "$out/copy"
}
one_sc() { timed "savecore$1" "$BIN/savecore" -f -d "$out" "$dev"; rm -rf "$out"/127.0.0.1-*; }

for temp in cold warm; do
  RESULTS=$(mktemp)
  for _ in $(seq "$REPS"); do
    [ $temp = cold ] && drop_caches; one_cp ""
    [ $temp = cold ] && drop_caches; one_sc ""
  done
  echo; echo "### $mode dump, RAM $ram, $kind, $temp cache ($REPS runs each, alternating; data read: $written bytes)"
  summarize cp "$written"
  rm -f "$RESULTS"
done
echo; machine
rm -f "$img"
