#!/bin/sh
# Compare `dumpformat -f` (initial format: a signature in every 4 KiB block,
# then fsync) with `dd if=/dev/zero bs=1M oflag=direct conv=fsync` on a 1 GiB image
# file and on a 1 GiB loop device (root only). Run from the repository root:
#   sh bench/dumpformat.sh [DIR]
# DIR (default /var/tmp) must be on the disk to measure, not on tmpfs.
# Each case runs RUNS times (default 3); the best time is reported.
set -eu
dir=${1:-/var/tmp}
runs=${RUNS:-3}
size_mib=1024
work=$(mktemp -d "$dir/dumpformat-bench.XXXXXX")
loop=
cleanup() {
	[ -n "$loop" ] && losetup -d "$loop" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

go build -o "$work/dumpformat" ./cmd/dumpformat

# best CMD...: the smallest wall time in seconds of RUNS runs.
best() {
	b=
	i=0
	while [ "$i" -lt "$runs" ]; do
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || true
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
		i=$((i + 1))
	done
	echo "$b"
}

report() { # name seconds [rate]: rate only for cases that write all 1 GiB
	if [ $# -gt 2 ]; then
		printf '%-40s %7.2f s %8.1f MiB/s\n' "$1" "$2" "$(echo "$size_mib / $2" | bc -l)"
	else
		printf '%-40s %7.2f s\n' "$1" "$2"
	fi
}

img="$work/disk.img"
fresh() { rm -f "$img"; truncate -s ${size_mib}M "$img"; }

fresh
report "dumpformat -f, file" "$(best sh -c "rm -f $img; truncate -s ${size_mib}M $img; $work/dumpformat -f -q $img")" rate
report "dd bs=1M oflag=direct conv=fsync, file" "$(best sh -c "rm -f $img; truncate -s ${size_mib}M $img; dd if=/dev/zero of=$img bs=1M count=$size_mib oflag=direct conv=notrunc,fsync status=none")" rate

if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
	fresh
	loop=$(losetup --find --show "$img")
	report "dumpformat -f, loop device" "$(best "$work/dumpformat" -f -q "$loop")" rate
	report "dd bs=1M oflag=direct conv=fsync, loop" "$(best dd if=/dev/zero of="$loop" bs=1M count=$size_mib oflag=direct conv=fsync status=none)" rate
	"$work/dumpformat" -f -q "$loop"
	report "dumpformat (normal), loop device" "$(best "$work/dumpformat" -q "$loop")"
	report "dumpformat -c, loop device" "$(best "$work/dumpformat" -c "$loop")"
else
	echo "loop device cases skipped (need root and losetup)"
fi
