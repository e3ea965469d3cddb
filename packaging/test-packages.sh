#!/usr/bin/env bash
# test-packages.sh: checks the .deb and .rpm that `make packages` builds, as
# an admin would use them. Run by `make test-packages` (and .ci/run) as root
# from the repository root:
#
#   bash packaging/test-packages.sh DEB RPM UPGRADE_DEB UPGRADE_RPM VERSION
#
# UPGRADE_* are the same packages at a higher version. Steps:
#  1. contents of both packages (dpkg-deb -c, rpm -qlp) against the list
#     this script derives from the source tree (every cmd/*, every man/*),
#     file modes, the one configuration file, no maintainer scripts;
#  2. make install / make uninstall into a DESTDIR give the same files;
#  3. dpkg -i, then savecore -V, man -w savecore, man 8 savecore, a format,
#     rehearsal dump and save with the installed binaries, nothing enabled;
#     an upgrade keeps an edited /etc/sysconfig/diskdump; dpkg -r leaves
#     only that file; dpkg -P removes it;
#  4. the same install, upgrade and erase with rpm into a scratch root.
# It installs dumpkit on this machine and removes it again: it refuses to
# run where dumpkit, /usr/sbin/savecore or /etc/sysconfig/diskdump exist.
set -euo pipefail
export LC_ALL=C

if [ $# -ne 5 ]; then
	echo "usage: $0 DEB RPM UPGRADE_DEB UPGRADE_RPM VERSION" >&2
	exit 2
fi
DEB=$1 RPM=$2 DEB2=$3 RPM2=$4 VERSION=$5
CONFIG=/etc/sysconfig/diskdump
TMP=$(mktemp -d)
installed=0
cleanup() {
	if [ "$installed" = 1 ]; then
		dpkg -P dumpkit >/dev/null 2>&1 || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
	echo "test-packages: FAIL: $*" >&2
	exit 1
}
t0=$(date +%s%N)
passed=0
# step reports a passed check with the time since the start.
step() {
	passed=$((passed + 1))
	ms=$((($(date +%s%N) - t0) / 1000000))
	printf 'test-packages: ok  %-66s %4d.%03ds\n' "$1" $((ms / 1000)) $((ms % 1000))
}

# expected prints the files both packages must hold, sorted, derived from
# the tree: a new command or manual page is expected without editing this.
expected() {
	for d in cmd/*/; do echo "/usr/sbin/$(basename "$d")"; done
	for p in man/*.[1-9]; do
		n=$(basename "$p")
		echo "/usr/share/man/man${n##*.}/$n.gz"
	done
	for s in dist/scripts/*; do echo "/usr/share/doc/dumpkit/examples/$(basename "$s")"; done
	printf '%s\n' /usr/lib/systemd/system/savecore.service \
		/usr/share/doc/dumpkit/diskdump.init /usr/share/doc/dumpkit/diskdump.sysconfig \
		/usr/share/doc/dumpkit/README.md /usr/share/doc/dumpkit/copyright "$CONFIG"
}
expected | sort >"$TMP/expected"

# same NAME FILE: FILE must equal the expected list.
same() {
	if ! diff -u "$TMP/expected" "$2" >"$TMP/diff"; then
		echo "test-packages: $1 differs from the expected files (- missing, + extra):" >&2
		cat "$TMP/diff" >&2
		exit 1
	fi
}

# executables prints the files that must be mode 0755.
executables() {
	grep -E '^/usr/sbin/|/examples/|/diskdump\.init$' "$TMP/expected"
}

check_deb() {
	dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {print $1, substr($6, 2)}' | sort -k2 >"$TMP/deb-modes"
	awk '{print $2}' "$TMP/deb-modes" >"$TMP/deb-files"
	same "dpkg-deb -c $DEB" "$TMP/deb-files"
	executables | while read -r f; do
		grep -qx -- "-rwxr-xr-x $f" "$TMP/deb-modes" || fail "$f is not mode 0755 in the .deb"
	done
	grep -v -E '^-rwxr-xr-x ' "$TMP/deb-modes" | grep -v -E '^-rw-r--r-- ' && fail "a file of the .deb is neither 0644 nor 0755"
	[ "$(dpkg-deb -f "$DEB" Architecture)" = "$(basename "$DEB" .deb | sed 's/.*_//')" ] ||
		fail "Architecture $(dpkg-deb -f "$DEB" Architecture) does not match the file name $DEB"
	mkdir "$TMP/control"
	dpkg-deb -e "$DEB" "$TMP/control"
	[ "$(cat "$TMP/control/conffiles")" = "$CONFIG" ] || fail "conffiles: $(cat "$TMP/control/conffiles")"
	scripts=$(ls "$TMP/control" | grep -v -x -e control -e md5sums -e conffiles || true)
	[ -z "$scripts" ] || fail "the .deb has maintainer scripts: $scripts"
	step "deb contents, modes, conffiles, no scripts"
}

check_rpm() {
	rpm -qlp "$RPM" 2>/dev/null | sort >"$TMP/rpm-files"
	same "rpm -qlp $RPM" "$TMP/rpm-files"
	rpm -qp --qf '[%{FILEMODES:perms} %{FILEFLAGS:fflags} %{FILENAMES}\n]' "$RPM" 2>/dev/null >"$TMP/rpm-modes"
	executables | while read -r f; do
		grep -qx -- "-rwxr-xr-x  $f" "$TMP/rpm-modes" || fail "$f is not mode 0755 in the .rpm"
	done
	grep -qx -- "-rw-r--r-- cn $CONFIG" "$TMP/rpm-modes" || fail "$CONFIG is not %config(noreplace) 0644 in the .rpm"
	[ "$(rpm -qcp "$RPM" 2>/dev/null)" = "$CONFIG" ] || fail "config files: $(rpm -qcp "$RPM")"
	[ -z "$(rpm -qp --scripts "$RPM" 2>/dev/null)" ] || fail "the .rpm has scripts: $(rpm -qp --scripts "$RPM")"
	arch=$(rpm -qp --qf '%{ARCH}' "$RPM" 2>/dev/null)
	case $RPM in *."$arch".rpm) ;; *) fail "rpm architecture $arch does not match the file name $RPM" ;; esac
	step "rpm contents, modes, %config(noreplace), no scripts"
}

check_make_install() {
	make -s install DESTDIR="$TMP/destdir" PREFIX=/usr >/dev/null
	(cd "$TMP/destdir" && find . -type f | sed 's|^\.||' | sort) >"$TMP/make-files"
	same "make install DESTDIR=… PREFIX=/usr" "$TMP/make-files"
	echo "DEVICE=/dev/sdz1" >>"$TMP/destdir$CONFIG"
	make -s install DESTDIR="$TMP/destdir" PREFIX=/usr >/dev/null
	grep -qx "DEVICE=/dev/sdz1" "$TMP/destdir$CONFIG" || fail "make install replaced an existing $CONFIG"
	make -s uninstall DESTDIR="$TMP/destdir" PREFIX=/usr >/dev/null
	left=$(cd "$TMP/destdir" && find . -type f | sed 's|^\.||')
	[ "$left" = "$CONFIG" ] || fail "make uninstall left: $left"
	make -s install DESTDIR="$TMP/local" >/dev/null
	grep -qx 'ExecStart=/usr/local/sbin/savecore -D' "$TMP/local/usr/local/lib/systemd/system/savecore.service" ||
		fail "make install (PREFIX=/usr/local): the unit does not run /usr/local/sbin/savecore"
	grep -qF 'SAVECORE=${SAVECORE:-/usr/local/sbin/savecore}' "$TMP/local/usr/local/share/doc/dumpkit/diskdump.init" ||
		fail "make install (PREFIX=/usr/local): the rc script does not run /usr/local/sbin/savecore"
	step "make install / uninstall (PREFIX=/usr, DESTDIR) = package files"
}

# dpkg_i installs a .deb. Minimal images exclude /usr/share/man and
# /usr/share/doc with path-exclude in /etc/dpkg/dpkg.cfg.d/; our files are
# let in again (command-line options come after the configuration).
dpkg_i() {
	dpkg --force-confdef --force-confold --path-include='/usr/share/man/man[58]/*' \
		--path-include='/usr/share/doc/dumpkit/*' -i "$1" </dev/null >"$TMP/dpkg.log" 2>&1 ||
		{ cat "$TMP/dpkg.log" >&2; fail "dpkg -i $1"; }
}

check_installed() {
	for cmd in cmd/*/; do
		cmd=$(basename "$cmd")
		v=$("$cmd" -V)
		case $v in *"$VERSION"*) ;; *) fail "$cmd -V says '$v', want version $VERSION (var version, set by -ldflags -X main.version)" ;; esac
		[ "$(command -v "$cmd")" = "/usr/sbin/$cmd" ] || fail "$cmd is not /usr/sbin/$cmd on PATH"
		[ "$(man -w "$cmd")" = "/usr/share/man/man8/$cmd.8.gz" ] || fail "man -w $cmd: $(man -w "$cmd" 2>&1)"
		MANPAGER=cat man 8 "$cmd" 2>/dev/null | grep -q OPTIONS || fail "man 8 $cmd shows no OPTIONS"
	done
	MANPAGER=cat man 5 diskdump 2>/dev/null | grep -q VARIABLES || fail "man 5 diskdump shows no VARIABLES"
	enabled=$(find /etc/systemd /etc/rc[0-6S].d /etc/init.d -name 'savecore*' -o -name '*diskdump*' 2>/dev/null || true)
	[ -z "$enabled" ] || fail "installing enabled something: $enabled"
	check_unit
	# With the packaged configuration (no DEVICE) savecore has nothing to do.
	savecore -q || fail "savecore with the packaged $CONFIG exits $?"
	step "dpkg -i: every command -V, man -w, man 8; unit verified, disabled"
}

# check_unit has systemd read the installed unit (it names /usr/sbin/savecore,
# which now exists) and confirms that it is not enabled.
check_unit() {
	if ! command -v systemd-analyze >/dev/null || ! command -v systemctl >/dev/null; then
		[ "${CI:-}" != true ] || fail "systemd-analyze or systemctl missing in CI"
		echo "test-packages: skip: no systemd-analyze/systemctl: the unit file is not verified"
		return
	fi
	systemd-analyze verify /usr/lib/systemd/system/savecore.service >"$TMP/verify.log" 2>&1 ||
		{ cat "$TMP/verify.log" >&2; fail "systemd-analyze verify savecore.service"; }
	state=$(systemctl --root=/ is-enabled savecore.service 2>&1 || true)
	[ "$state" = disabled ] || fail "systemctl is-enabled savecore.service says '$state', want disabled"
}

# check_round_trip formats an image, writes a rehearsal dump to it and
# saves it, with the installed binaries.
check_round_trip() {
	img=$TMP/part.img
	truncate -s 64M "$img"
	dumpformat -q -f "$img"
	dumpformat -q -R --ram 32M "$img" >/dev/null
	mkdir -m 0700 "$TMP/crash"
	out=$(savecore -q -D -d "$TMP/crash" "$img")
	[ -s "$out" ] || fail "savecore printed '$out', not a vmcore"
	dumpformat -q -c "$img" || fail "dumpformat -c after savecore -D: exit $?"
	step "installed dumpformat -f, -R, savecore -D, dumpformat -c"
}

check_dpkg() {
	if dpkg -s dumpkit >/dev/null 2>&1 || [ -e /usr/sbin/savecore ] || [ -e "$CONFIG" ]; then
		fail "dumpkit, /usr/sbin/savecore or $CONFIG is already on this machine; this test installs and removes the package, so it will not run here"
	fi
	installed=1
	dpkg_i "$DEB"
	check_installed
	check_round_trip
	echo "DEVICE=/dev/sdz1" >>"$CONFIG"
	dpkg_i "$DEB2"
	[ "$(dpkg-query -W -f '${Version}' dumpkit)" = "$(dpkg-deb -f "$DEB2" Version)" ] || fail "upgrade to $DEB2 did not happen"
	grep -qx "DEVICE=/dev/sdz1" "$CONFIG" || fail "the upgrade replaced the edited $CONFIG"
	step "dpkg -i upgrade keeps the edited $CONFIG"
	dpkg -r dumpkit >/dev/null
	while read -r f; do
		[ "$f" = "$CONFIG" ] || [ ! -e "$f" ] || fail "dpkg -r left $f"
	done <"$TMP/expected"
	[ -f "$CONFIG" ] || fail "dpkg -r removed $CONFIG"
	[ ! -e /usr/share/doc/dumpkit ] || fail "dpkg -r left /usr/share/doc/dumpkit"
	dpkg -P dumpkit >/dev/null
	installed=0
	[ ! -e "$CONFIG" ] || fail "dpkg -P left $CONFIG"
	! dpkg -s dumpkit >/dev/null 2>&1 || fail "dumpkit still known to dpkg after dpkg -P"
	step "dpkg -r leaves only $CONFIG; dpkg -P removes it"
}

# check_rpm_install installs, upgrades and erases the .rpm in a scratch
# root (not a full system: no dependencies, no scripts; the package has none).
check_rpm_install() {
	root=$TMP/rpmroot
	mkdir -p "$root"
	rpm --root "$root" --dbpath /rpmdb -i --nodeps "$RPM" 2>"$TMP/rpm.log" || { cat "$TMP/rpm.log" >&2; fail "rpm -i $RPM"; }
	(cd "$root" && find . -type f ! -path './rpmdb/*' | sed 's|^\.||' | sort) >"$TMP/rpmroot-files"
	same "rpm -i $RPM" "$TMP/rpmroot-files"
	"$root/usr/sbin/savecore" -V | grep -qF "$VERSION" || fail "savecore -V from the .rpm"
	echo "DEVICE=/dev/sdz1" >>"$root$CONFIG"
	rpm --root "$root" --dbpath /rpmdb -U --nodeps "$RPM2" 2>"$TMP/rpm.log" || { cat "$TMP/rpm.log" >&2; fail "rpm -U $RPM2"; }
	grep -qx "DEVICE=/dev/sdz1" "$root$CONFIG" || fail "rpm -U replaced the edited $CONFIG"
	[ ! -e "$root$CONFIG.rpmnew" ] || fail "rpm -U wrote $CONFIG.rpmnew though the packaged file did not change"
	rpm --root "$root" --dbpath /rpmdb -e dumpkit 2>"$TMP/rpm.log" || { cat "$TMP/rpm.log" >&2; fail "rpm -e"; }
	left=$(cd "$root" && find . -type f ! -path './rpmdb/*' | sed 's|^\.||')
	[ "$left" = "$CONFIG.rpmsave" ] || fail "rpm -e left: $left (want only the edited config saved as $CONFIG.rpmsave)"
	step "rpm -i/-U/-e (scratch root): noreplace, .rpmsave on erase"
}

[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
for tool in dpkg-deb rpm man make; do
	command -v "$tool" >/dev/null || fail "$tool not installed (apt-get install rpm man-db make)"
done
check_deb
check_rpm
check_make_install
check_dpkg
check_rpm_install
echo "test-packages: $passed passed, 0 failed"
