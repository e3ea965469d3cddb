#!/usr/bin/env bash
# Makes the memory of a real Linux guest for the dump level benchmark
# (bench/dumplevel.sh, issue 18): boots Debian 12's own kernel in QEMU with
# 4 GiB of RAM and QEMU's vmcoreinfo device, lets a small initramfs put the
# memory to typical use, and saves the guest's memory with the QEMU monitor's
# dump-guest-memory as an ELF core ($GUEST_DIR/guest.elf).
#
# What the guest does (its /init, written below):
#   - mounts proc, sys, devtmpfs; loads qemu_fw_cfg, with which the kernel
#     hands its VMCOREINFO to QEMU (the core then carries the VMCOREINFO note
#     that makedumpfile needs for -d 31);
#   - loads virtio and ext4 and mounts, read-only, a disk with the files of
#     the kernel package (its modules, about 390 MiB) and reads every file:
#     page cache;
#   - copies the kernel's drivers/ tree (about 280 MiB) into a tmpfs: shmem;
#   - starts two processes that keep a buffer each, full and never freed:
#     64 MiB from /dev/urandom and 192 MiB of the module files (anonymous
#     user memory; busybox dd blocks writing its buffer to a pipe nobody
#     reads);
#   - runs one process that fills 256 MiB from /dev/urandom and exits: its
#     pages are free again but keep their bytes (the kernel zeroes pages
#     when they are allocated, not when they are freed);
#   - leaves the rest (about 3 GiB) untouched, so zero, and prints
#     DUMPKIT-GUEST-READY with /proc/meminfo on the serial console.
#
# Needs root (apt-get download, dpkg -x, mkfs.ext4 -d), qemu-system-x86_64,
# cpio, python3. Runs QEMU's TCG emulation by default (GUEST_ACCEL=kvm to
# use KVM: on the benchmark machine, a VM itself, a KVM guest hung in the
# firmware with no console output, so TCG it is; the boot takes about 30 s).
#   bench/guest.sh            -> prints the path of guest.elf
# Environment: GUEST_DIR (default $BENCH_DIR/guest), GUEST_RAM (default 4G),
# GUEST_ACCEL (default tcg).
source "$(dirname "$0")/lib.sh"
GUEST_DIR=${GUEST_DIR:-$BENCH_DIR/guest}
GUEST_RAM=${GUEST_RAM:-4G}
mkdir -p "$GUEST_DIR"; GUEST_DIR=$(realpath "$GUEST_DIR")
cd "$GUEST_DIR" || exit 1

# The Debian 12 kernel and busybox, unpacked here (never installed).
fetch_packages() {
  if [ -d pkg/boot ] && [ -x pkg/bin/busybox ]; then return; fi
  rm -rf debs pkg; mkdir -p debs pkg
  local kpkg
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
  (cd debs && apt-get download "$kpkg" busybox-static) >&2
  for d in debs/*.deb; do dpkg -x "$d" pkg; done
}

# modules_in_order NAME...: the .ko paths of NAME and what it depends on
# (the depends= field of each module's .modinfo), dependencies first.
modules_in_order() {
  local kdir; kdir=$(echo pkg/lib/modules/*)
  declare -A seen=()
  visit() {
    local name=$1 ko deps d
    [ -n "${seen[$name]:-}" ] && return
    seen[$name]=1
    ko=$(find "$kdir/kernel" -name "$name.ko" | head -1)
    [ -n "$ko" ] || { echo "no module $name in $kdir" >&2; exit 1; }
    deps=$(strings -a "$ko" | sed -n 's/^depends=//p' | head -1)
    for d in ${deps//,/ }; do visit "$d"; done
    echo "$ko"
  }
  for m in "$@"; do visit "$m"; done
}

build_initramfs() {
  rm -rf initramfs; mkdir -p initramfs/{bin,dev,proc,sys,mnt/disk,mnt/tmp,modules}
  cp pkg/bin/busybox initramfs/bin/busybox
  # crc32c_generic: ext4 asks the crypto API for crc32c at mount time, and
  # the initramfs has no modprobe to load it on demand.
  local i=0 ko
  for ko in $(modules_in_order qemu_fw_cfg crc32c_generic virtio_pci virtio_blk ext4); do
    i=$((i + 1)); cp "$ko" "initramfs/modules/$(printf %02d "$i")-$(basename "$ko")"
  done
  cat > initramfs/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in /modules/*.ko; do insmod "$m" || echo "insmod $m failed"; done
ls /sys/firmware/qemu_fw_cfg/by_name/etc >/dev/null 2>&1 && echo "fw_cfg: present"
mount -t ext4 -o ro /dev/vda /mnt/disk
find /mnt/disk -type f -exec cat {} + > /dev/null
mount -t tmpfs -o size=1G tmp /mnt/tmp
cp -a /mnt/disk/lib/modules/*/kernel/drivers /mnt/tmp/
dd if=/dev/urandom bs=64M count=1 iflag=fullblock 2>/dev/null | sleep 1000000 &
find /mnt/disk/lib/modules -type f -name '*.ko' -exec cat {} + | dd bs=192M count=1 iflag=fullblock 2>/dev/null | sleep 1000000 &
dd if=/dev/urandom of=/dev/null bs=256M count=1 iflag=fullblock 2>/dev/null
sleep 5; sync
cat /proc/meminfo
echo DUMPKIT-GUEST-READY
exec sleep 1000000
INIT
  chmod 755 initramfs/init
  (cd initramfs && find . | cpio -o -H newc --quiet) | gzip -1 > initramfs.cpio.gz
}

build_disk() {
  rm -f disk.img
  mkfs.ext4 -q -F -L dumpkit -d pkg disk.img "$(( $(du -sm pkg | cut -f1) + 128 ))M"
}

# qmp CMD [ARGS_JSON]: one QMP command to the QEMU on qmp.sock; prints the
# reply (dump-guest-memory without detach returns when the file is written).
qmp() {
  local args=${2:-'{}'}
  python3 - "$GUEST_DIR/qmp.sock" "$1" "$args" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
f = s.makefile("rw")
def reply():
    while True:
        m = json.loads(f.readline())
        if "return" in m or "error" in m:
            return m
json.loads(f.readline())  # greeting
f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n"); f.flush(); reply()
f.write(json.dumps({"execute": sys.argv[2], "arguments": json.loads(sys.argv[3])}) + "\n"); f.flush()
r = reply(); print(json.dumps(r))
sys.exit(1 if "error" in r else 0)
PY
}

boot_and_dump() {
  local accel=${GUEST_ACCEL:-tcg}
  rm -f console.log qmp.sock guest.elf
  qemu-system-x86_64 -machine pc,accel="$accel" -m "$GUEST_RAM" -smp 2 \
    -kernel pkg/boot/vmlinuz-* -initrd initramfs.cpio.gz \
    -append "console=ttyS0 panic=-1" \
    -drive file=disk.img,if=virtio,format=raw,readonly=on \
    -device vmcoreinfo -nic none -display none -no-reboot \
    -serial file:console.log -qmp unix:qmp.sock,server=on,wait=off &
  local qpid=$! t=0
  until grep -q DUMPKIT-GUEST-READY console.log 2>/dev/null; do
    kill -0 "$qpid" 2>/dev/null || { tail -30 console.log >&2; echo "guest died" >&2; exit 1; }
    t=$((t + 2)); [ "$t" -lt 1200 ] || { kill "$qpid"; echo "guest not ready in 20 min" >&2; exit 1; }
    sleep 2
  done
  echo "guest ready after ${t}s ($accel)" >&2
  qmp dump-guest-memory "{\"paging\": false, \"protocol\": \"file:$GUEST_DIR/guest.elf\"}" >&2
  qmp quit >/dev/null || true
  wait "$qpid" || true
  grep -E '^(MemTotal|MemFree|Cached|Shmem|AnonPages|Buffers|Slab)' console.log | tr -d '\r' >&2
}

# phdrs_after_ehdr ELF: QEMU 7.2 writes its section header table right after
# the ELF header and the program headers after that (e_phoff 192);
# makedumpfile 1.7.2 reads the program headers at offset 64 whatever e_phoff
# says, finds no PT_LOAD and stops ("Can't get the number of PT_LOAD"). This
# moves the program headers to offset 64 and drops the section table (on
# x86_64 it holds only its own .shstrtab); notes and memory stay where they
# are, byte for byte. The original first 4 KiB are kept in ELF.qemu-head.
phdrs_after_ehdr() {
  python3 - "$1" <<'PY'
import struct, sys
path = sys.argv[1]
with open(path, "r+b") as f:
    head = f.read(4096)
    (phoff, shoff, _, _, phentsize, phnum, _, _, _) = struct.unpack_from("<QQIHHHHHH", head, 0x20)
    if phoff == 64:
        sys.exit(0)
    phdrs = head[phoff:phoff + phentsize * phnum]
    first = min(struct.unpack_from("<Q", phdrs, i * phentsize + 8)[0] for i in range(phnum))
    if 64 + len(phdrs) > first:
        sys.exit("no room for the program headers before offset %d" % first)
    open(path + ".qemu-head", "wb").write(head)
    f.seek(0x20); f.write(struct.pack("<QQ", 64, 0))
    f.seek(0x3c); f.write(struct.pack("<HH", 0, 0))
    f.seek(64); f.write(phdrs + bytes(first - 64 - len(phdrs)))
print("%s: program headers moved from offset %d to 64, section table (at %d) dropped" % (path, phoff, shoff), file=sys.stderr)
PY
}

fetch_packages
build_initramfs
[ -f disk.img ] || build_disk
boot_and_dump
phdrs_after_ehdr "$GUEST_DIR/guest.elf"
echo "$GUEST_DIR/guest.elf"
