#!/bin/sh
# SPDX-License-Identifier: MIT
# test_ls_region.sh — `ferry ls` and `ferry rm` of regions and states (run by CTest as
# ferry_ls_region).
#   usage: test_ls_region.sh PATH/TO/ferry PATH/TO/test_ls_helper PATH/TO/ferryd
# With a real ferryd on a private socket, checks with exact exit codes:
#  - a published volatile region shows in the REGION table with its size, its holders
#    (the publisher: 1; a reader that opened it by name: 2) and "(memfd: volatile)"; in
#    JSON size, holders, persistent false, path null; a state likewise (kind "state");
#    `ferry stat` shows a region's size and version, a state's max_len and version;
#  - a published persistent region shows its file; under --path DIR its file is an
#    object "region", live while held, "kept" once nobody holds it (and rm --stale keeps
#    it);
#  - rm NAME of a volatile region exits 1 ("volatile"); rm of a region file another uid
#    owns (as root too) exits 1 and leaves it; rm through a symlink to a region file
#    removes nothing (exit 1: the link is no region file, and it is not followed); rm of
#    an unrelated regular file exits 1 and leaves it; rm NAME of a published persistent
#    region removes its file when it is found (a holder's descriptor shows its name, or
#    it is in a --path DIR; else exit 1 and a reason); rm PATH of an unpublished one
#    removes it; -n removes nothing.
# Region files live on a tmpfs of the test's own ($tmp/shm: ferryd takes tmpfs and hugetlbfs
# files alone). A new region file is built under a temporary name and linked in, so its creator's
# descriptor shows the temporary name "(deleted)": the file is found through --path.
# Runs in a private IPC and mount namespace (unshare -i -m; exit 77, a skip, where that is
# not allowed), with an mqueue file system of its own on $tmp/mq, as test_ls.sh does:
# `ferry ls` lists, and `ferry rm --stale` removes, kernel queues system-wide, and other
# tests make and leave queues at the same time.
set -u
FERRY=$1
HELPER=$2
FERRYD=$3
TEST=test_ls_region
. "$(dirname "$0")/testlib.sh"
private_ns FERRY_LS_INNER "$@"

scratch 755 mq shm
JSON_OPTIONAL=1 # json also checks `ferry stat --json`, which has no objects or names

export FERRY_BROKER="$tmp/ferryd.sock"
export FERRY_NO_AUTOSPAWN=1
LS="$FERRY ls --mqueue $tmp/mq --path $tmp/shm"
me=$(id -u)
ls_up() { $LS 2>/dev/null | grep -q '^ferryd: running'; }
start_ferryd ls_up

# ---- a volatile region, a state, a reader
start vol region org.t.vol 8192
start st state org.t.st
expect 0 $LS
grep -Eq "^org\.t\.vol +region +[0-9]+ +$pid_vol +0666 +0 +- alive$" "$tmp/out" || fail "name line"
grep -Eq "^REGION +KIND +SIZE +HOLDERS +FILE$" "$tmp/out" || fail "no REGION table"
grep -Eq "^org\.t\.vol +region +8192 +1(\+\?)? +\(memfd: volatile\)$" "$tmp/out" || fail "region row"
grep -Eq "^org\.t\.st +state +[0-9]+ +1(\+\?)? +\(memfd: volatile\)$" "$tmp/out" || fail "state row"
start rd hold-region org.t.vol
expect 0 $LS --json
python3 -m json.tool "$tmp/out" >/dev/null || fail "--json does not parse"
json "names['org.t.vol']['kind'] == 'region' and names['org.t.vol']['size'] == 8192"
json "names['org.t.vol']['holders'] == 2 and names['org.t.vol']['connects'] == 1"
json "names['org.t.vol']['persistent'] is False and names['org.t.vol']['path'] is None"
json "names['org.t.st']['kind'] == 'state' and names['org.t.st']['holders'] == 1"
json "d['objects'] == []"
expect 0 "$FERRY" stat org.t.vol
grep -Eq '^kind: +region$' "$tmp/out" && grep -Eq '^size: +8192$' "$tmp/out" &&
    grep -Eq '^version: +0$' "$tmp/out" || fail "stat of a region"
expect 0 "$FERRY" stat --json org.t.st
json "d['kind'] == 'state' and d['max_len'] == 64 and d['version'] == 0"
expect 1 "$FERRY" rm org.t.vol
grep -q 'volatile' "$tmp/err" || fail "rm of a volatile region: no reason given"

# ---- a persistent region, published
start file region org.t.file 4096 "$tmp/shm/file.rgn"
[ -f "$tmp/shm/file.rgn" ] || fail "no region file"
expect 0 $LS
grep -Eq "^org\.t\.file +region +4096 +1(\+\?)? +$tmp/shm/file\.rgn$" "$tmp/out" || fail "file row"
grep -Eq "^region +$tmp/shm/file\.rgn +$me +0600 +- +live +4096 bytes, 1 holder" "$tmp/out" ||
    fail "--path: live region file"
expect 0 "$FERRY" ls
grep -Eq "^org\.t\.file +region +4096 +1(\+\?)? +\?$" "$tmp/out" || fail "file row without --path"
expect 0 $LS --json
json "names['org.t.file']['persistent'] is True and names['org.t.file']['path'] == '$tmp/shm/file.rgn'"
json "obj['$tmp/shm/file.rgn']['kind'] == 'region' and obj['$tmp/shm/file.rgn']['state'] == 'live'"
json "obj['$tmp/shm/file.rgn']['size'] == 4096 and obj['$tmp/shm/file.rgn']['holders'] == 1"
json "obj['$tmp/shm/file.rgn']['parts'] == ['$tmp/shm/file.rgn'] and obj['$tmp/shm/file.rgn']['uid'] == $(id -u)"
kill -9 $pid_file
wait $pid_file 2>/dev/null
expect 0 $LS
grep -Eq "^region +$tmp/shm/file\.rgn +$me +0600 +- +kept +4096 bytes, 0 holders" "$tmp/out" ||
    fail "--path: a region file nobody holds is kept"
expect 0 "$FERRY" rm --mqueue "$tmp/mq" --path "$tmp/shm" --stale
grep -q '^nothing stale$' "$tmp/out" || fail "rm --stale touched a persistent region"
[ -f "$tmp/shm/file.rgn" ] || fail "rm --stale removed a persistent region"

# ---- rm refusals
chown 65534 "$tmp/shm/file.rgn" 2>/dev/null && {
    expect 1 "$FERRY" rm "$tmp/shm/file.rgn"
    grep -q 'owned by uid 65534, not by you' "$tmp/err" || fail "rm of another's region: reason"
    [ -f "$tmp/shm/file.rgn" ] || fail "rm removed another uid's region"
    chown "$(id -u)" "$tmp/shm/file.rgn"
}
ln -s file.rgn "$tmp/shm/link.rgn"
expect 1 "$FERRY" rm "$tmp/shm/link.rgn"
[ -f "$tmp/shm/file.rgn" ] && [ -L "$tmp/shm/link.rgn" ] || fail "rm followed a symlink"
rm -f "$tmp/shm/link.rgn"
echo "not a region" >"$tmp/shm/plain"
expect 1 "$FERRY" rm "$tmp/shm/plain"
grep -q 'not a socket, FIFO or region file; left alone' "$tmp/err" || fail "rm plain: reason"
[ -f "$tmp/shm/plain" ] || fail "rm removed a plain file"
rm -f "$tmp/shm/plain"

# ---- rm NAME and rm PATH
start file2 region org.t.file2 4096 "$tmp/shm/file2.rgn"
expect 1 "$FERRY" rm org.t.file2 # its holder shows no name: where to look must be given
grep -q 'file cannot be found' "$tmp/err" || fail "rm NAME without --path: reason"
expect 0 "$FERRY" rm --path "$tmp/shm" -n org.t.file2
grep -q "^would remove region $tmp/shm/file2.rgn$" "$tmp/out" || fail "rm -n NAME"
[ -f "$tmp/shm/file2.rgn" ] || fail "rm -n removed"
expect 0 "$FERRY" rm --path "$tmp/shm" org.t.file2
grep -q "^removed region $tmp/shm/file2.rgn$" "$tmp/out" || fail "rm NAME"
[ -e "$tmp/shm/file2.rgn" ] && fail "rm NAME left the file"
expect 0 "$FERRY" rm "$tmp/shm/file.rgn"
grep -q "^removed region $tmp/shm/file.rgn$" "$tmp/out" || fail "rm PATH"
"$HELPER" mkregion "$tmp/shm/made.rgn" 100 || fail "mkregion"
expect 0 "$FERRY" rm "$tmp/shm/made.rgn"
[ -z "$(ls -A "$tmp/shm")" ] || fail "--path dir not empty: $(ls -A "$tmp/shm")"
expect 1 "$FERRY" rm org.t.none

kill $pid_vol $pid_st $pid_rd $pid_file2
wait $pid_vol $pid_st $pid_rd $pid_file2 2>/dev/null
stop_ferryd
echo "test_ls_region: ok"
