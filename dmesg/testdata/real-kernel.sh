#!/bin/bash
# Makes the real-kernel dump that TestRealKernel reads (doc/DMESG.md §9
# recipe 1): boots a Debian 6.1 kernel under QEMU (TCG, no initrd) until it
# panics on the missing root file system, then dumps the guest's memory as
# an ELF file from the QEMU monitor. The guest has no fw_cfg driver loaded,
# so the dump carries no VMCOREINFO note: the test finds it in memory.
# QEMU 7.2 puts section headers between the ELF header and the program
# headers; makedumpfile 1.7.2 looks for the program headers right after the
# ELF header, so they are moved there.
#
# Usage: real-kernel.sh OUTDIR    (then DMESG_REAL_DIR=OUTDIR go test ./dmesg)
# Needs: apt-get, dpkg-deb, qemu-system-x86_64, python3. About 1-2 minutes
# and 130 MiB in OUTDIR.
set -euo pipefail
out=$(realpath "${1:?usage: real-kernel.sh OUTDIR}")
pkg=${DMESG_KERNEL_PKG:-linux-image-6.1.0-50-amd64-unsigned}
args=${DMESG_KERNEL_ARGS:-console=ttyS0 log_buf_len=1M}
mkdir -p "$out"
work=$(mktemp -d)
qemu_pid=
cleanup() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
apt-get download "$pkg" >/dev/null
dpkg-deb --fsys-tarfile "$pkg"_*.deb | tar x --wildcards './boot/vmlinuz-*'
release=$(basename boot/vmlinuz-*)
release=${release#vmlinuz-}

# panic=0 (the default) leaves the panicked guest spinning, so its memory
# can be dumped; -device vmcoreinfo is harmless without the guest driver.
qemu-system-x86_64 -display none -no-reboot -m 128 -smp 1 \
	-kernel boot/vmlinuz-"$release" -append "$args" -device vmcoreinfo \
	-serial file:"$out"/serial.log -monitor unix:"$work"/mon.sock,server,nowait &
qemu_pid=$!
for _ in $(seq 1 300); do
	grep -q 'end Kernel panic' "$out"/serial.log 2>/dev/null && break
	sleep 1
done
grep -q 'end Kernel panic' "$out"/serial.log || { echo "guest did not panic" >&2; exit 1; }

rm -f "$out"/vmcore.elf
python3 - "$work"/mon.sock "$out" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(600)
def prompt():
    buf = b""
    while b"(qemu)" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
prompt()
for cmd in ("stop", "dump-guest-memory %s/vmcore.elf" % sys.argv[2]):
    s.sendall(cmd.encode() + b"\n")
    prompt()
s.sendall(b"quit\n")
PY
wait "$qemu_pid" || true
qemu_pid=
chmod u+w "$out"/vmcore.elf
python3 - "$out"/vmcore.elf <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    h = bytearray(f.read(64))
    phoff, = struct.unpack_from("<Q", h, 32)
    phentsize, phnum = struct.unpack_from("<HH", h, 54)
    f.seek(phoff)
    ph = f.read(phentsize * phnum)
    first = min(struct.unpack_from("<Q", ph, i * phentsize + 8)[0] for i in range(phnum))
    if 64 + len(ph) > first:
        sys.exit("no room for the program headers after the ELF header")
    struct.pack_into("<Q", h, 32, 64)           # e_phoff
    struct.pack_into("<Q", h, 40, 0)            # e_shoff
    struct.pack_into("<H", h, 52, 64)           # e_ehsize (QEMU 7.2 writes 8)
    struct.pack_into("<HHH", h, 58, 0, 0, 0)    # no section headers
    f.seek(0)
    f.write(h)
    f.write(ph)
PY
echo "$release" > "$out"/release
ls -l "$out"
