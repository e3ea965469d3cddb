#!/bin/bash
# Fetches the debug vmlinux of the kernel that dmesg/testdata/real-kernel.sh
# booted (its OUTDIR/release), from Debian's <package>-dbg, into
# OUTDIR/vmlinux, for TestCrashRealKernel:
#
#   dmesg/testdata/real-kernel.sh DIR
#   savecore/testdata/real-vmlinux.sh DIR
#   DMESG_REAL_DIR=DIR go test -run 'RealKernel' ./savecore
#
# Needs: apt-get, dpkg-deb. The package is large (about 860 MB; only the
# vmlinux, about 630 MB, is kept); extracting it takes a minute or two.
set -euo pipefail
out=$(realpath "${1:?usage: real-vmlinux.sh OUTDIR}")
release=$(cat "$out"/release)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download "linux-image-$release-dbg" >/dev/null
dpkg-deb --fsys-tarfile linux-image-"$release"-dbg_*.deb |
	tar x --wildcards "./usr/lib/debug/boot/vmlinux-$release"
mv "usr/lib/debug/boot/vmlinux-$release" "$out"/vmlinux
