#!/usr/bin/env bash
# Issue 18: our LZO1X encoder (internal/lzo, through lzobench) against
# liblzo2's lzo1x_1_compress (makedumpfile -l; through lzo1x1.c) on the
# same pages of the synthetic machine. Needs gcc, liblzo2-dev and valgrind.
#   bench/lzo/run.sh [CORPUS...]      (default: all corpora)
# For each corpus: instructions per page under callgrind (load-independent;
# liblzo2 also without the memset of its 32 KiB dictionary, which callgrind
# counts as one instruction per byte, rep stosb), then the median of REPS
# alternating wall-clock runs (ns per page) and the ratio. OLD=path of an
# lzobench built from another commit adds a third column set.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${BENCH_DIR:-/var/tmp/dumpkit-bench}/lzo
REPS=${REPS:-5}
mkdir -p "$DIR"
(cd "$ROOT" && go build -o "$DIR/lzobench" ./bench/lzo/lzobench)
gcc -O2 -Wall -o "$DIR/lzo1x1" "$ROOT/bench/lzo/lzo1x1.c" -llzo2
cd "$DIR"
[ -f pages-4096.bin ] || ./lzobench corpus .
corpora=("$@")
[ ${#corpora[@]} -gt 0 ] || corpora=(pages-4096.bin pages-4096-text.bin pages-4096-pattern.bin pages-4096-sparse.bin pages-4096-random.bin pages-16384.bin pages-65536.bin)
declare -A prog=([go]=./lzobench [c]=./lzo1x1 [old]=${OLD:-})
sides=(go c)
[ -z "${OLD:-}" ] || sides=(old go c)
fn() { case $1 in c) echo lzo1x_1_compress ;; *) echo '*lzo.(*Compressor).Compress' ;; esac; }
run() { # run SIDE FILE SIZE [REPS]
  local p=${prog[$1]}
  if [ "$1" = c ]; then "$p" "${@:2}"; else "$p" compress "${@:2}"; fi
}
echo "| corpus | pages | side | instr/page | instr/page w/o memset | ns/page (median of $REPS) | ratio |"
echo "|---|---|---|---|---|---|---|"
for f in "${corpora[@]}"; do
  size=$(echo "$f" | sed 's/pages-\([0-9]*\).*/\1/')
  n=$(( $(stat -c %s "$f") / size ))
  declare -A ns=()
  for side in "${sides[@]}"; do ns[$side]=""; done
  for _ in $(seq "$REPS"); do
    for side in "${sides[@]}"; do
      ns[$side]+=" $(run "$side" "$f" "$size" 10 | awk '{print $11}')"
    done
  done
  for side in "${sides[@]}"; do
    out=$DIR/cg.$side.$f
    GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind --callgrind-out-file="$out" \
      "--toggle-collect=$(fn "$side")" ${prog[$side]} $([ "$side" = c ] || echo compress) "$f" "$size" 2>"$out.err" >"$out.txt"
    ir=$(grep -o 'Collected : [0-9]*' "$out.err" | awk '{print $3}')
    ms=$(callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk '/memset|memclr/ {gsub(",", "", $1); s += $1} END {print s + 0}')
    ratio=$(awk '{print $9}' "$out.txt")
    med=$(echo "${ns[$side]}" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "| $f | $n | $side | $((ir / n)) | $(((ir - ms) / n)) | $med | $ratio |"
  done
done
