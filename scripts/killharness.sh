#!/bin/sh
# killharness.sh: the full crash-consistency run of savecore and dumpformat.
#
# It builds both commands and kills them with SIGKILL (DUMPKIT_FAILPOINT,
# see savecore/failpoint.go) at every failpoint of a save with -D of a
# 64 MiB raw and a compressed rehearsal dump -- before the first write,
# after every MiB of the vmcore, before and after the rename, after the
# directory fsync, around the erase and after the device flush -- and after
# every 4 MiB piece of an initial, normal and -a format of a 64 MiB image.
# After each kill it checks what is left (dump still on the partition
# unless the erase followed a durable save, no incomplete file named
# vmcore, temporary files only) and that a rerun produces a vmcore
# byte-identical to an uninterrupted save. CI runs the same tests on a
# reduced set of points (about 20).
#
# Usage: scripts/killharness.sh [go test flags...]   (from the repository root)
# Needs Go; no root. Takes a few minutes.
set -eu
cd "$(dirname "$0")/.."
DUMPKIT_KILLHARNESS=full exec go test -count=1 -timeout 60m -v \
	-run '^(TestKillHarness|TestInterruptedFormat)$' "$@" ./cmd/savecore ./cmd/dumpformat
