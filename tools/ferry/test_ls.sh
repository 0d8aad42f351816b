#!/bin/sh
# SPDX-License-Identifier: MIT
# test_ls.sh — `ferry ls` and `ferry rm` end to end (run by CTest as ferry_ls).
#   usage: test_ls.sh PATH/TO/ferry PATH/TO/test_ls_helper PATH/TO/ferryd
# Runs in a private IPC and mount namespace (unshare -i -m; exit 77, a skip, where that is
# not allowed): `ferry rm --stale` must never see, let alone remove, the queues of tests
# running beside it, and the "nothing left" checks are exact. An mqueue file system is
# mounted on $tmp/mq (passed as --mqueue).
# Checks, with exact exit codes:
#  - usage errors exit 2; help exits 0;
#  - with no ferryd: "ferryd: not running", exit 0, and nothing was started (the tool
#    sets FERRY_NO_AUTOSPAWN itself: a FERRY_FERRYD that would leave a mark leaves none);
#  - a real ferryd on a private socket: a registered name shows with its owner pid,
#    mode, connects (1 after one connect) and "alive", in text and in JSON (which must
#    parse: python3 -m json.tool) with the broker's pid from the lock file;
#  - live and killed (-9) listeners: posixmq and sysvmq with FERRY_PERSIST, a FIFO pair
#    and a unix socket under --path: the killed ones are "stale", the live ones "live";
#    queue depths count a queued message;
#  - rm -n --stale removes nothing; rm --stale removes exactly the stale ones (ipcs -q
#    and the mqueue directory then hold only the live pairs); as another uid, rm --stale
#    reports the kernel's refusal and exits 1, leaving the queue (that `ferry` and its
#    libferry.so.0 are staged under /tmp first, tests/common/stage.sh: the build tree may
#    be where uid 65534 cannot enter); rm of missing objects
#    and of a regular file exits 1 (the file stays); rm /name, sysvmq:ID, a FIFO base
#    path remove them (0); at the end nothing ferry-made is left;
#  - sysvmq liveness from ferry's records (pid + start time of listener and opener): a
#    live listener whose opener was killed after sending last is "live" and kept by
#    rm --stale; a private channel with both sides killed (-9) is "stale" with both its
#    queues, and rm --stale removes both (ipcs -q as before); "unknown" and kept: dead
#    parties but a live non-ferry process sent last, and a forged pair whose back queue
#    others may write; a forged attach record naming dead processes appended to a live
#    door leaves it "live"; posixmq, judged by who holds the queues open, keeps a live
#    listener whose opener was killed "live", and both killed "stale" (both removed);
#    a listener that closed with an opener attached (and lives on) has left: the
#    channel is live while its opener lives, stale once the opener is killed, and
#    rm --stale then removes both queues.
set -u
FERRY=$1
HELPER=$2
FERRYD=$3
TEST=test_ls
. "$(dirname "$0")/testlib.sh"
private_ns FERRY_LS_INNER "$@"

. "$(dirname "$0")/../../tests/common/stage.sh"

# Under /tmp, whatever TMPDIR says: `ferry rm` as uid 65534 must reach --mqueue / --path.
scratch 755 mq d

LS="$FERRY ls --mqueue $tmp/mq --path $tmp/d"
RM="$FERRY rm --mqueue $tmp/mq --path $tmp/d"
export FERRY_BROKER="$tmp/ferryd.sock"

# ---- usage
expect 0 "$FERRY" help ls
grep -q '^usage: ferry ls' "$tmp/out" || fail "help ls"
expect 0 "$FERRY" rm --help
grep -q '^usage: ferry rm' "$tmp/out" || fail "rm --help"
expect 2 "$FERRY" ls --no-such-option
grep -q '^usage: ferry ls' "$tmp/err" || fail "bad option: no usage on stderr"
expect 2 "$FERRY" ls extra
expect 2 "$FERRY" ls --stale
expect 2 "$FERRY" rm
expect 2 "$FERRY" rm --stale /x
expect 2 "$FERRY" rm --json --stale
expect 2 "$FERRY" rm sysvmq:abc
expect 2 "$FERRY" rm sysvmq:
expect 2 "$FERRY" rm unix://@abstract

# ---- no ferryd: listed as not running, nothing started, objects still listed
printf '#!/bin/sh\ntouch %s/spawned\n' "$tmp" >"$tmp/fake-ferryd"
chmod 755 "$tmp/fake-ferryd"
unset FERRY_NO_AUTOSPAWN
expect 0 env FERRY_FERRYD="$tmp/fake-ferryd" $LS
grep -q '^ferryd: not running' "$tmp/out" || fail "no 'ferryd: not running'"
grep -q '^no ferry-made kernel objects found' "$tmp/out" || fail "empty namespace shows objects"
[ -e "$tmp/spawned" ] && fail "ferry ls started ferryd"
expect 0 env FERRY_FERRYD="$tmp/fake-ferryd" $LS --json
python3 -m json.tool "$tmp/out" >/dev/null || fail "--json does not parse"
json 'd["broker"]["running"] is False and d["names"] == [] and d["objects"] == []'
[ -e "$tmp/spawned" ] && fail "ferry ls --json started ferryd"
export FERRY_NO_AUTOSPAWN=1

# ---- a real ferryd and a name
ls_up() {
    $LS >"$tmp/out" 2>&1
    grep -q '^ferryd: running' "$tmp/out"
}
start_ferryd ls_up
start name register org.test.ls
expect 0 "$HELPER" connect org.test.ls
expect 0 $LS
grep -q "^ferryd: running on $FERRY_BROKER (pid $ferryd)" "$tmp/out" || fail "broker line"
grep -Eq "^org\.test\.ls +server +0 +$pid_name +0644 +1 +- alive$" "$tmp/out" || fail "name line"

# ---- live and stale objects
start mqlive listen posixmq:///lslive
start mqdead listen posixmq:///lsdead
start svlive listen sysvmq://0x7e770001
start svdead listen sysvmq://0x7e770002
start fifo listen "fifo://$tmp/d/ff"
start unix listen "unix://$tmp/d/us"
start unixlive listen "unix://$tmp/d/ul"
expect 0 "$HELPER" send posixmq:///lsdead
expect 0 "$HELPER" send sysvmq://0x7e770002
kill -9 $pid_mqdead $pid_svdead $pid_fifo $pid_unix
wait $pid_mqdead $pid_svdead $pid_fifo $pid_unix 2>/dev/null
live_door=$(ipcs -q | awk '$1 == "0x7e770001" { print $2 }')
dead_door=$(ipcs -q | awk '$1 == "0x7e770002" { print $2 }')
[ -n "$live_door" ] && [ -n "$dead_door" ] || fail "sysvmq listeners made no queues"

expect 0 $LS
grep -Eq "^posixmq +/lslive +0 +0600 +0/0 +live +open:$pid_mqlive$" "$tmp/out" || fail "live posixmq"
grep -Eq "^posixmq +/lsdead +0 +0600 +1/0 +stale$" "$tmp/out" || fail "stale posixmq"
grep -Eq "^sysvmq +sysvmq:$live_door +.* live +listener:$pid_svlive; key 0x7e770001" "$tmp/out" ||
    fail "live sysvmq"
grep -Eq "^sysvmq +sysvmq:$dead_door +0 +0600 +1/0 +stale .*\(dead\)" "$tmp/out" ||
    fail "stale sysvmq"
grep -Eq "^fifo +$tmp/d/ff +0 +0600 +- +stale$" "$tmp/out" || fail "stale fifo"
grep -Eq "^socket +$tmp/d/us +.* stale +nobody listens" "$tmp/out" || fail "stale socket"
grep -Eq "^socket +$tmp/d/ul +.* live$" "$tmp/out" || fail "live socket"
[ "$(grep -c ' stale' "$tmp/out")" -eq 4 ] || fail "want exactly 4 stale objects"

expect 0 $LS --json
python3 -m json.tool "$tmp/out" >/dev/null || fail "--json does not parse"
json "d['broker']['running'] and d['broker']['pid'] == $ferryd and d['broker']['pid_alive']"
json "names['org.test.ls']['pid'] == $pid_name and names['org.test.ls']['connects'] == 1"
json "names['org.test.ls']['owner_alive'] and names['org.test.ls']['mode'] == '0644'"
json "obj['/lslive']['state'] == 'live' and obj['/lslive']['pids'][0]['pid'] == $pid_mqlive"
json "obj['/lsdead']['state'] == 'stale' and obj['/lsdead']['depth'] == [1, 0]"
json "obj['/lsdead']['parts'] == ['/lsdead.c2s', '/lsdead.s2c']"
json "obj['sysvmq:$dead_door']['state'] == 'stale' and obj['sysvmq:$dead_door']['key'] == '0x7e770002'"
json "obj['sysvmq:$dead_door']['depth'] == [1, 0] and obj['sysvmq:$live_door']['state'] == 'live'"
json "all(not p['alive'] for p in obj['sysvmq:$dead_door']['pids'])"
json "obj['$tmp/d/ff']['state'] == 'stale' and obj['$tmp/d/us']['state'] == 'stale'"
json "obj['$tmp/d/ul']['state'] == 'live' and len(d['objects']) == 7"

# ---- rm --stale
expect 0 $RM -n --stale
[ "$(grep -c '^would remove' "$tmp/out")" -eq 7 ] || fail "rm -n: want 7 lines"
expect 0 $LS
[ "$(grep -c ' stale' "$tmp/out")" -eq 4 ] || fail "rm -n removed something"

if setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
    stage_programs "$FERRY" || fail "cannot stage ferry for uid 65534"
    expect 1 stage_run 65534 ferry rm --mqueue "$tmp/mq" --path "$tmp/d" --stale
    grep -q '^ferry rm: /lsdead.c2s: \(Permission denied\|Operation not permitted\)$' \
        "$tmp/err" || fail "rm as nobody: the kernel's refusal not reported"
    [ -e "$tmp/mq/lsdead.c2s" ] || fail "rm as nobody removed root's queue"
fi

expect 0 $RM --stale
[ "$(grep -c '^removed' "$tmp/out")" -eq 7 ] || fail "rm --stale: want 7 removals"
expect 0 $LS
grep -q ' stale' "$tmp/out" && fail "stale objects left after rm --stale"
[ "$(ls "$tmp/mq" | tr '\n' ' ')" = "lslive.c2s lslive.s2c " ] || fail "mqueue: $(ls "$tmp/mq")"
[ "$(ipcs -q | grep -c '^0x')" -eq 2 ] || fail "ipcs -q: $(ipcs -q)"
[ "$(ls "$tmp/d" | tr '\n' ' ')" = "ul " ] || fail "--path dir: $(ls "$tmp/d")"
expect 0 $RM --stale
grep -q '^nothing stale$' "$tmp/out" || fail "second rm --stale"

# ---- rm OBJECT
expect 1 "$FERRY" rm /no-such-queue
grep -q 'No such file' "$tmp/err" || fail "rm of a missing queue: no report"
expect 1 "$FERRY" rm sysvmq:99999
expect 1 "$FERRY" rm "$tmp/d/nothing"
: >"$tmp/d/regular"
expect 1 "$FERRY" rm "$tmp/d/regular"
[ -f "$tmp/d/regular" ] || fail "rm removed a regular file"
rm -f "$tmp/d/regular"
kill -9 $pid_mqlive $pid_svlive $pid_unixlive
wait $pid_mqlive $pid_svlive $pid_unixlive 2>/dev/null
expect 0 "$FERRY" rm posixmq:///lslive
[ "$(grep -c '^removed posixmq' "$tmp/out")" -eq 2 ] || fail "rm /lslive"
expect 0 "$FERRY" rm "sysvmq:$live_door"
[ "$(grep -c '^removed sysvmq' "$tmp/out")" -eq 2 ] || fail "rm sysvmq: door and back"
start fifo2 listen "fifo://$tmp/d/f2"
kill -9 $pid_fifo2
wait $pid_fifo2 2>/dev/null
expect 0 "$FERRY" rm "$tmp/d/f2" "$tmp/d/ul"
[ "$(grep -c '^removed' "$tmp/out")" -eq 3 ] || fail "rm fifo base path and socket"

# ---- nothing ferry-made is left
expect 0 $LS
grep -q '^no ferry-made kernel objects found' "$tmp/out" || fail "objects left"
[ -z "$(ls -A "$tmp/mq")" ] || fail "mqueue not empty: $(ls -A "$tmp/mq")"
[ "$(ipcs -q | grep -c '^0x')" -eq 0 ] || fail "ipcs -q not empty: $(ipcs -q)"
[ -z "$(ls -A "$tmp/d")" ] || fail "--path dir not empty"

# ---- sysvmq: liveness from the records
sv_ids() { ipcs -q | awk '/^0x/ { print $2 }' | sort -n | tr '\n' ' '; }
# (a) a live listener whose opener, killed, sent last
start l1 listen sysvmq://0x7e770011
start o1 hold sysvmq://0x7e770011
kill -9 $pid_o1
wait $pid_o1 2>/dev/null
d1=$(ipcs -q | awk '$1 == "0x7e770011" { print $2 }')
[ -n "$d1" ] || fail "no queue at 0x7e770011"
# (c) both parties killed, then a live process that is not ferry's sends into the door
start l3 listen sysvmq://0x7e770013
start o3 hold sysvmq://0x7e770013
kill -9 $pid_l3 $pid_o3
wait $pid_l3 $pid_o3 2>/dev/null
d3=$(ipcs -q | awk '$1 == "0x7e770013" { print $2 }')
start poke poke "$d3"
# (d) a forged pair: records naming a dead process, but a back queue others may write
d4=$("$HELPER" forge pair) || fail "forge pair"
# (e) a forged attach record naming a dead process, appended to the live door d1
"$HELPER" forge "attach=$d1" >/dev/null || fail "forge attach"
before=$(sv_ids)
# (b) a private channel, both sides killed
start l2 listen sysvmq://
u2=$(sed -n 's/^ready //p' "$tmp/l2.out")
d2=${u2#sysvmq://#}
case $u2 in sysvmq://#[0-9]*) ;; *) fail "private listener URL '$u2'" ;; esac
start o2 hold "$u2"
kill -9 $pid_l2 $pid_o2
wait $pid_l2 $pid_o2 2>/dev/null

expect 0 $LS
grep -Eq "^sysvmq +sysvmq:$d1 +0 +0600 +1/0 +live +listener:$pid_l1 opener:$pid_o1\(dead\)" \
    "$tmp/out" || fail "(a) live listener, dead opener: not live"
grep -Eq "^sysvmq +sysvmq:$d2 +0 +0600 +1/0 +stale +listener:$pid_l2\(dead\) opener:$pid_o2\(dead\); key private, back queue [0-9]+$" \
    "$tmp/out" || fail "(b) private channel, both killed: not stale"
expect 0 $LS --json
python3 -m json.tool "$tmp/out" >/dev/null || fail "--json does not parse"
json "obj['sysvmq:$d1']['state'] == 'live' and None not in obj['sysvmq:$d1']['ids']"
json "obj['sysvmq:$d2']['state'] == 'stale' and obj['sysvmq:$d2']['key'] is None"
json "obj['sysvmq:$d2']['ids'][0] == $d2 and obj['sysvmq:$d2']['ids'][1] is not None"
json "obj['sysvmq:$d3']['state'] == 'unknown' and 'used it last' in obj['sysvmq:$d3']['note']"
json "obj['sysvmq:$d4']['state'] == 'unknown' and 'trustworthy' in obj['sysvmq:$d4']['note']"
json "[o['state'] for o in d['objects']].count('stale') == 1 and len(d['objects']) == 4"
expect 0 $RM --stale
[ "$(grep -c '^removed sysvmq' "$tmp/out")" -eq 2 ] || fail "rm --stale: want the 2 queues of (b)"
grep -q "^removed sysvmq $d2$" "$tmp/out" || fail "rm --stale: door $d2 not removed"
[ "$(sv_ids)" = "$before" ] || fail "ipcs -q after rm --stale: $(sv_ids), want $before"
expect 0 $LS --json
json "[o['state'] for o in d['objects']] .count('stale') == 0 and len(d['objects']) == 3"
kill -9 $pid_l1 $pid_poke
wait $pid_l1 $pid_poke 2>/dev/null
expect 0 "$FERRY" rm "sysvmq:$d1" "sysvmq:$d3" "sysvmq:$d4"
[ "$(grep -c '^removed sysvmq' "$tmp/out")" -eq 6 ] || fail "rm of (a), (c), (d): want 6 queues"
[ -z "$(sv_ids)" ] || fail "ipcs -q not empty: $(ipcs -q)"

# (f) a listener that closed with its opener attached has left the queues to it (its
# process lives on): live while the opener lives; once the opener is killed, stale, and
# rm --stale removes both queues
start lv leave sysvmq://0x7e770021
start ov hold sysvmq://0x7e770021
wait_out lv left "(f) the listener never left"
d5=$(ipcs -q | awk '$1 == "0x7e770021" { print $2 }')
[ -n "$d5" ] || fail "(f) the queues went with the listener's close"
expect 0 $LS
grep -Eq "^sysvmq +sysvmq:$d5 .* live +left:$pid_lv opener:$pid_ov[ ;]" "$tmp/out" ||
    fail "(f) left listener, live opener: not live"
expect 0 $RM --stale
grep -q '^removed sysvmq' "$tmp/out" && fail "(f) rm --stale removed a live channel"
kill -9 $pid_ov
wait $pid_ov 2>/dev/null
expect 0 $LS
grep -Eq "^sysvmq +sysvmq:$d5 .* stale +left:$pid_lv opener:$pid_ov\(dead\)[ ;]" "$tmp/out" ||
    fail "(f) left listener, killed opener: not stale"
expect 0 $RM --stale
[ "$(grep -c '^removed sysvmq' "$tmp/out")" -eq 2 ] || fail "(f) rm --stale: want its 2 queues"
[ -z "$(sv_ids)" ] || fail "(f) ipcs -q not empty: $(ipcs -q)"
kill -9 $pid_lv
wait $pid_lv 2>/dev/null

# ---- posixmq has no such flaw: who holds a queue open is the kernel's own record
start pl listen posixmq:///lsheld
start po hold posixmq:///lsheld
kill -9 $pid_po
wait $pid_po 2>/dev/null
expect 0 $LS
grep -Eq "^posixmq +/lsheld +0 +0600 +1/0 +live +open:$pid_pl$" "$tmp/out" ||
    fail "posixmq: live listener, killed opener: not live"
expect 0 $RM --stale
grep -q '^nothing stale$' "$tmp/out" || fail "posixmq: rm --stale removed a live pair"
kill -9 $pid_pl
wait $pid_pl 2>/dev/null
expect 0 $LS
grep -Eq "^posixmq +/lsheld +0 +0600 +1/0 +stale$" "$tmp/out" || fail "posixmq: both killed: not stale"
expect 0 $RM --stale
[ "$(grep -c '^removed posixmq' "$tmp/out")" -eq 2 ] || fail "posixmq: rm --stale: want 2"
[ -z "$(ls -A "$tmp/mq")" ] || fail "mqueue not empty: $(ls -A "$tmp/mq")"

kill $pid_name
wait $pid_name 2>/dev/null
stop_ferryd
echo "test_ls: ok"
