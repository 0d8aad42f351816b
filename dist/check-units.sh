#!/bin/sh
# SPDX-License-Identifier: MIT
# check-units.sh BUILD_DIST_DIR — checks of the units as configured in the build tree:
#  - systemd-analyze security scores the system ferryd.service below 3.0 (--offline:
#    PID 1 need not be systemd); the score is printed;
#  - the user socket listens where the library looks for a user's broker
#    (%t/ferry/ferryd.sock, %t = $XDG_RUNTIME_DIR), the system one on /run/ferry/ferryd.sock;
#  - both services are Type=notify and start ferryd in the foreground from the
#    configured bindir.
# Exits 77 (skipped) without systemd-analyze.
set -eu
dir=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null 2>&1 || { echo "SKIP: no systemd-analyze"; exit 77; }
out=$(systemd-analyze security --offline=yes --threshold=30 "$dir/ferryd.service" 2>&1) ||
    { echo "$out" >&2; fail "exposure above 3.0"; }
echo "$out" | grep 'Overall exposure level'
grep -qx 'ListenSequentialPacket=/run/ferry/ferryd.sock' "$dir/ferryd.socket" || fail "system socket path"
grep -qx 'ListenSequentialPacket=%t/ferry/ferryd.sock' "$dir/user/ferryd.socket" || fail "user socket path"
for u in "$dir/ferryd.service" "$dir/user/ferryd.service"; do
    grep -qx 'Type=notify' "$u" || fail "$u: not Type=notify"
    grep -Eqx 'ExecStart=/.*/ferryd --foreground' "$u" || fail "$u: ExecStart"
    ! grep -Eq '@[A-Z_]+@' "$u" || fail "$u: a placeholder was left"
done
echo "units ok"
