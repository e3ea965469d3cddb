#!/usr/bin/env bash
# The built-in demo: rehearse a crash on a partition image in a file and save it.
#   1. build savecore and dumpformat into ./bin
#   2. make a 160 MiB partition image (sparse file) and give it an initial format
#   3. write a kernel-exact rehearsal dump of a synthetic 128 MiB x86_64 machine
#      (compressed, dump_level 19), as the diskdump module does at panic time
#   4. run savecore on it (as at boot), deleting the dump once the vmcore is durable
#   5. show the result: the vmcore, its header, and the partition ready again
# No root needed. Everything lands in ./demo (removed first).
set -euo pipefail
cd "$(dirname "$0")/.."
out=demo
rm -rf "$out"; mkdir -p "$out" bin
echo "+ go build -o bin/ ./cmd/savecore ./cmd/dumpformat ./cmd/dumpfilter"
go build -o bin/ ./cmd/savecore ./cmd/dumpformat ./cmd/dumpfilter

run() { echo "+ $*"; "$@"; }
run truncate -s 160M "$out/part.img"
run bin/dumpformat -f "$out/part.img"
run bin/dumpformat -c -v "$out/part.img" || true
run bin/dumpformat -R --arch x86_64 --compress --dump-level 19 --ram 128M --seed 1 --system-map "$out/System.map" "$out/part.img"
run bin/dumpformat -c -v "$out/part.img" || true
mkdir -p -m 0700 "$out/crash"
run bin/savecore -D -v --system-map "$out/System.map" -d "$out/crash" "$out/part.img"
run ls -l "$out"/crash/*/
echo "+ tail -4 $out/crash/*/vmcore-dmesg.txt   (the panic, read without a vmlinux)"; tail -4 "$out"/crash/*/vmcore-dmesg.txt
run bin/dumpformat -c "$out/part.img" && echo "partition is ready for the next panic (dumpformat -c exit 0)"
if command -v crash >/dev/null 2>&1; then
  echo "+ crash -d1 --log $out/crash/*/vmcore   (the analyst's tool reads our header)"
  crash -d1 --log "$out"/crash/*/vmcore 2>&1 | grep -E 'signature|header_version|utsname|status|block_size|max_mapnr|nr_cpus|total_valid' | head -20 || true
fi
