#!/usr/bin/env bash
# Dump level 31 on the memory of a real Linux guest (issue 18):
#   savecore --dump-level 31 -F kdump --compress zstd|zlib  (our side)
#   makedumpfile -c -d 31                                    (the reference)
# of the same 4 GiB of memory.
#
# The memory: bench/guest.sh boots Debian 12's kernel (6.1, amd64) in QEMU
# (TCG) with 4 GiB of RAM and the vmcoreinfo device; its initramfs reads
# about 390 MiB of files from an ext4 disk (page cache), copies 280 MiB into
# a tmpfs, keeps 256 MiB in two processes' buffers (anonymous memory), lets
# a third process fill 256 MiB and exit (free pages that are not zero) and
# leaves the rest untouched; then QEMU's dump-guest-memory saves it as an
# ELF core (paging off) with the kernel's VMCOREINFO note. See guest.sh.
#
# makedumpfile reads that ELF core directly: VMCOREINFO tells it where
# struct page and the free lists are, so -d 31 drops zero, cache, private
# cache, user and free pages. dumpformat -R -m writes the same memory into a
# diskdump partition image the way the RHEL4 kernel module would, once
# compressed (--compress) and once raw, with dump_level 0; savecore then
# applies --dump-level 31 while saving. An ELF core carries no page flags,
# so the partition's page_flags are all 0 and diskdump's level 31 can only
# leave out the zero pages (bit 2); savecore says which bits it could not
# apply. That, not the compressor, is why the files differ in size.
#
# Each tool runs REPS times (default 3), alternating, warm (inputs read once
# before, sync before each run) then cold (caches dropped before each run).
# savecore fsyncs its vmcore; makedumpfile does not, so it is also timed
# followed by `sync FILE` ("+sync"). Wall time, user+sys CPU and peak RSS
# come from /usr/bin/time. Then, once, every output is read back with
# libkdumpfile (../shared/oracle/vmcore_pages.py beside the clone, or $VMCORE_PAGES) and
# each page it holds is compared, by SHA-256, with the same page of the ELF
# core; the ELF core's non-zero pages are counted too.
#   bench/dumplevel.sh [GUEST.elf]   (default: make one with bench/guest.sh)
# Needs root (drop_caches), makedumpfile, python3-libkdumpfile; about 16 GB
# free in $BENCH_DIR.
REPS=${REPS:-3}
source "$(dirname "$0")/lib.sh"
VMCORE_PAGES=${VMCORE_PAGES:-$ROOT/../shared/oracle/vmcore_pages.py}
elf=${1:-}
[ -n "$elf" ] || elf=$(bash "$ROOT/bench/guest.sh" | tail -1)
[ -f "$elf" ] || { echo "no guest ELF core $elf" >&2; exit 1; }
build
out=$BENCH_DIR/dl-out; rm -rf "$out"; mkdir -p "$out"; chmod 0700 "$out"

# The partitions: one block per page of the core's PT_LOADs plus room for
# the headers and bitmaps.
part_bytes=$(( ($(stat -c %s "$elf") / 1048576 + 64) * 1048576 ))
# The dumped kernel's release, from the VMCOREINFO note, for the headers.
release=$(head -c 1048576 "$elf" | strings | sed -n 's/^OSRELEASE=//p' | head -1)
for kind in z raw; do
  img=$BENCH_DIR/part-dl-$kind.img
  rm -f "$img"; truncate -s "$part_bytes" "$img"
  "$BIN/dumpformat" -f -q "$img"
  flags=(--release "$release" --nodename guest); [ "$kind" = z ] && flags+=(--compress)
  "$BIN/dumpformat" -R -m "$elf" "${flags[@]}" "$img" >&2
done

sc() { # sc KIND ALGO
  local d=$out/sc-$1-$2
  rm -rf "$d"; mkdir -m 0700 "$d"; settle "$temp"
  timed "savecore $1 $2" "$BIN/savecore" -q --dump-level 31 -F kdump --compress "$2" -d "$d" "$BENCH_DIR/part-dl-$1.img"
}
mdf() { # mdf [sync]
  rm -f "$out/mdf.kdump"; settle "$temp"
  if [ -z "${1:-}" ]; then
    timed "makedumpfile" makedumpfile -c -d 31 "$elf" "$out/mdf.kdump"
  else
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's
    timed "makedumpfile+sync" sh -c 'makedumpfile -c -d 31 "$1" "$2" && sync "$2"' sh "$elf" "$out/mdf.kdump"
  fi
}

machine
echo
echo "Guest core: $elf ($(stat -c %s "$elf") bytes); partitions of $part_bytes bytes"
for temp in warm cold; do
  RESULTS=$(mktemp)
  [ "$temp" = warm ] && cat "$elf" "$BENCH_DIR"/part-dl-*.img >/dev/null
  l0=$(loadavg)
  for _ in $(seq "$REPS"); do
    mdf; mdf sync
    sc z zstd; sc z zlib; sc raw zstd; sc raw zlib
  done
  echo
  echo "### dump level 31 of a 4 GiB guest, $temp cache ($REPS runs each, alternating; load $l0 -> $(loadavg))"
  echo
  summarize makedumpfile+sync
  rm -f "$RESULTS" "$RESULTS.cpu"
done

# What each tool says about the pages it left out (one more run each).
echo
echo "### what the tools say (one more run each, not timed)"
echo
rm -f "$out/mdf.kdump"
makedumpfile --message-level 23 -c -d 31 "$elf" "$out/mdf.kdump" 2>&1 | tr '\r' '\n' | grep -v '^ *$\|: \[ *[0-9.]* %\]' | sed 's/^/    /'
for kind in z raw; do
  rm -rf "$out/sc-$kind-zstd"; mkdir -m 0700 "$out/sc-$kind-zstd"
  "$BIN/savecore" --dump-level 31 -F kdump --compress zstd -d "$out/sc-$kind-zstd" "$BENCH_DIR/part-dl-$kind.img" 2>&1 | sed 's/^/    /'
done

# Pages and sizes, and every stored page against the guest core.
echo
echo "### what each output holds (read back with libkdumpfile)"
echo
/usr/bin/python3 "$VMCORE_PAGES" "$elf" | grep -v '^#' > "$out/elf.pages"
zero=$(python3 -c 'import hashlib; print(hashlib.sha256(bytes(4096)).hexdigest())')
echo "guest core: $(wc -l < "$out/elf.pages") pages, $(grep -vc " $zero\$" "$out/elf.pages") of them not zero"
echo
echo "| output | bytes | pages | zero pages kept | pages differing from the core | libkdumpfile exit |"
echo "|---|---|---|---|---|---|"
for f in "$out"/mdf.kdump "$out"/sc-*/*/vmcore; do
  rc=0; /usr/bin/python3 "$VMCORE_PAGES" "$f" | grep -v '^#' > "$out/f.pages" || rc=$?
  # A page differs when the core has no such PFN or another digest.
  diff=$(awk 'NR==FNR { h[$1] = $2; next } !($1 in h) || h[$1] != $2' "$out/elf.pages" "$out/f.pages" | wc -l)
  name=${f#"$out"/}; name=${name%%/*}
  echo "| $name | $(stat -c %s "$f") | $(wc -l < "$out/f.pages") | $(grep -c " $zero\$" "$out/f.pages") | $diff | $rc |"
done
rm -f "$out/f.pages"
