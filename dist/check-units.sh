#!/bin/sh
# SPDX-License-Identifier: MIT
# check-units.sh BUILD_DIST_DIR [BUILD_DIR] — checks of the units as configured in the
# build tree:
#  - systemd-analyze security scores the system ferryd.service below 3.0 (--offline:
#    PID 1 need not be systemd); the score is printed;
#  - the user socket listens where the library looks for a user's broker
#    (%t/ferry/ferryd.sock, %t = $XDG_RUNTIME_DIR), the system one on /run/ferry/ferryd.sock;
#  - both services are Type=notify and start ferryd in the foreground from the
#    configured bindir.
# and, given BUILD_DIR, of an install into a temporary prefix P (cmake --install --prefix):
#  - the units land in P/lib/systemd/system and P/lib/systemd/user, nowhere else, with
#    ExecStart=P/bin/ferryd (installed, executable) and Documentation= naming
#    P/share/doc/ferry/broker.md (installed);
#  - systemd-analyze verify accepts all four (system and --user).
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
[ $# -ge 2 ] || { echo "units ok"; exit 0; }
p=$(mktemp -d /tmp/ferry-units-XXXXXX)
trap 'rm -rf "$p"' EXIT
cmake --install "$2" --prefix "$p" >"$p.log" 2>&1 || { cat "$p.log" >&2; rm -f "$p.log"; fail "install"; }
grep -i 'systemd' "$p.log" | grep -v "^-- [A-Za-z-]*: $p/" && fail "a unit installed outside the prefix"
rm -f "$p.log"
for u in system/ferryd.service system/ferryd.socket user/ferryd.service user/ferryd.socket; do
    [ -f "$p/lib/systemd/$u" ] || fail "$u not in $p/lib/systemd"
done
for u in "$p/lib/systemd/system/ferryd.service" "$p/lib/systemd/user/ferryd.service"; do
    grep -qx "ExecStart=$p/bin/ferryd --foreground" "$u" || fail "$u: ExecStart not $p/bin/ferryd"
    grep -q "file:$p/share/doc/ferry/broker.md" "$u" || fail "$u: Documentation"
done
[ -x "$p/bin/ferryd" ] && [ -f "$p/share/doc/ferry/broker.md" ] || fail "ferryd or broker.md not installed"
systemd-analyze verify --man=no "$p/lib/systemd/system/ferryd.socket" \
    "$p/lib/systemd/system/ferryd.service" || fail "systemd-analyze verify (system)"
mkdir -m 0700 "$p/run"
XDG_RUNTIME_DIR="$p/run" systemd-analyze --user verify --man=no "$p/lib/systemd/user/ferryd.socket" \
    "$p/lib/systemd/user/ferryd.service" || fail "systemd-analyze verify (user)"
echo "units ok (installed under $p)"
