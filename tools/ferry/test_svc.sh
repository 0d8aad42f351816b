#!/bin/sh
# SPDX-License-Identifier: MIT
# test_svc.sh — the shell commands that go through ferryd, end to end against a private
# ferryd (run by CTest as ferry_svc).
#   usage: test_svc.sh PATH/TO/ferry PATH/TO/ferryd
# Checks, with exact exit codes and, for every failure, one line on stderr naming it:
#  - `ferry serve NAME --exec CMD` answered by `ferry call NAME PAYLOAD` (CMD sees the
#    request on stdin and FERRY_NAME), several calls, --format hex both ways; --echo;
#  - `ferry watch 'org.t.*' --json` sees a server OWNED and, after kill -9 of its owner,
#    DIED with the owner's pid and kind "server";
#  - a published mailbox (`ferry mailbox create`) with 3 messages sent: `ferry stat`
#    shows depth 3 (text and --json), `ferry ls` shows KIND mailbox and DEPTH 3; `ferry
#    mailbox recv --count 3` gets them in order with their types; depth 0 after;
#    `ferry send`/`ferry recv` reach the mailbox by name too;
#  - a broadcast (`ferry pub`) seen by `ferry sub` with type, size and "lost 0";
#    `ferry stat` of a broadcast with two stopped subscribers (one --drop-oldest) after 3
#    messages: subscribers 2, published 3, max_lag 3, each subscriber's pid and lag 3;
#  - a mailbox receiver blocked on a type shows as `waiting: 1` (0 before and after);
#  - events (post, next, a timeout), semaphores (value, wait, post, a timeout; a blocked
#    `ferry sem wait` shows as `waiters: 1`, 0 before and after);
#  - `ferry kill NAME TERM` stops a `ferry serve` (0); a bad signal is 2;
#  - errors: no such name 4 (call, stat, kill, sem), no ferryd 4, a timeout 3 (a call
#    whose CMD sleeps), the server dying mid-call 6, a name of another kind 7 (call on a
#    mailbox, sem on a mailbox), bad usage 2; and as uid 65534 (the tool staged under
#    /tmp, tests/common/stage.sh): a 0600 name is invisible (4), a 0644 name may be seen
#    but not called (5) nor killed (5), a 0666 name may be called (0);
#  - at the end no ferry process of this test is left.
set -u
FERRY=$1
FERRYD=$2
TEST=test_svc
. "$(dirname "$0")/testlib.sh"

. "$(dirname "$0")/../../tests/common/stage.sh"

scratch 755
ONE_LINE_SKIP='^ferry [a-z]*: watching ' # a command's "watching ..."

# until_stat NAME PATTERN WHY: wait (at most 10 s) until `ferry stat NAME` has a matching line.
until_stat() {
    i=0
    until "$FERRY" stat "$1" >"$tmp/out" 2>"$tmp/err" && grep -q "$2" "$tmp/out"; do
        i=$((i + 1))
        [ $i -gt 500 ] && fail "$3"
        sleep 0.02
    done
}

# until_grep FILE PATTERN: wait (at most 10 s) until FILE has a line matching PATTERN.
until_grep() {
    i=0
    until grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 500 ] && fail "never saw '$2' in $1: $(cat "$1" 2>/dev/null)"
        sleep 0.02
    done
}

export FERRY_BROKER="$tmp/ferryd.sock"
export FERRY_NO_AUTOSPAWN=1

# ---- no ferryd yet: 4, one line
expect 4 "$FERRY" call org.t.echo hi
one_line "org.t.echo"

stat_up() { # a name that is not there: 4, ENOENT (ferryd answered)
    "$FERRY" stat org.t.none >/dev/null 2>"$tmp/err"
    [ $? -eq 4 ] && grep -q ENOENT "$tmp/err"
}
start_ferryd stat_up 0.02

# ---- serve --exec, call
bg up "$FERRY" serve org.t.up --exec 'printf "%s:" "$FERRY_NAME"; tr a-z A-Z'
until_grep "$tmp/up.err" "serving org.t.up"
expect 0 "$FERRY" call org.t.up hello
[ "$(cat "$tmp/out")" = "org.t.up:HELLO" ] || fail "call: reply $(cat "$tmp/out")"
expect 0 "$FERRY" call org.t.up --data abc --count 3
[ "$(cat "$tmp/out")" = "$(printf 'org.t.up:ABC\norg.t.up:ABC\norg.t.up:ABC')" ] || fail "call --count 3"
expect 0 "$FERRY" call org.t.up --format hex 6869
[ "$(cat "$tmp/out")" = "6f72672e742e75703a4849" ] || fail "call --format hex"
printf 'line one\nline two\n' | "$FERRY" call org.t.up --lines >"$tmp/out" 2>"$tmp/err" ||
    fail "call --lines"
[ "$(cat "$tmp/out")" = "$(printf 'org.t.up:LINE ONE\norg.t.up:LINE TWO')" ] || fail "call --lines output"
bg echo "$FERRY" serve org.t.echo --echo --mode 0666
until_grep "$tmp/echo.err" "serving org.t.echo"
expect 0 "$FERRY" call org.t.echo "hi there"
[ "$(cat "$tmp/out")" = "hi there" ] || fail "echo"

# ---- watch: OWNED, then DIED after kill -9
bg watch "$FERRY" watch 'org.t.*' --json --count 2 --timeout 20s
until_grep "$tmp/watch.err" "watching org.t.\*"
bg victim "$FERRY" serve org.t.victim --echo
until_grep "$tmp/victim.err" "serving org.t.victim"
kill -9 "$pid_victim"
wait "$pid_victim" 2>/dev/null
wait "$pid_watch" || fail "watch exited $?"
head -1 "$tmp/watch.out" | grep -q "\"event\": \"OWNED\", \"name\": \"org.t.victim\", \"kind\": \"server\", \"uid\": $(id -u), .*\"pid\": $pid_victim," ||
    fail "watch: OWNED: $(cat "$tmp/watch.out")"
tail -1 "$tmp/watch.out" | grep -q "\"event\": \"DIED\", \"name\": \"org.t.victim\", .*\"pid\": $pid_victim," ||
    fail "watch: DIED: $(cat "$tmp/watch.out")"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$tmp/watch.out" ||
    fail "watch --json does not parse"
expect 0 "$FERRY" watch org.t.up --count 0
expect 3 "$FERRY" watch org.t.up --timeout 100ms
one_line "timed out"

# ---- a mailbox with 3 messages: depth 3
bg mb "$FERRY" mailbox create org.t.mb --capacity 8
until_grep "$tmp/mb.err" "published org.t.mb"
for t in 1 2 3; do expect 0 "$FERRY" mailbox send org.t.mb --data "m$t" --type "$t"; done
expect 0 "$FERRY" stat org.t.mb
grep -q '^kind: *mailbox$' "$tmp/out" || fail "stat: kind"
grep -q '^depth: *3$' "$tmp/out" || fail "stat: depth 3"
grep -q '^capacity: *8$' "$tmp/out" || fail "stat: capacity"
grep -q "^pid: *$pid_mb$" "$tmp/out" || fail "stat: pid"
expect 0 "$FERRY" stat org.t.mb --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["depth"] == 3 and d["kind"] == "mailbox" and d["sent"] == 3 else 1)' "$tmp/out" ||
    fail "stat --json: depth 3"
expect 0 "$FERRY" ls --mqueue "$tmp"
grep -Eq "^org\.t\.mb +mailbox +$(id -u) +$pid_mb +0600 +[0-9]+ +3 alive$" "$tmp/out" || fail "ls: KIND mailbox, DEPTH 3"
grep -Eq "^org\.t\.up +server +" "$tmp/out" || fail "ls: KIND server"
expect 0 "$FERRY" ls --json --mqueue "$tmp"
python3 -c 'import json,sys; n={x["name"]: x for x in json.load(open(sys.argv[1]))["names"]}; sys.exit(0 if n["org.t.mb"]["kind"] == "mailbox" and n["org.t.mb"]["depth"] == 3 and n["org.t.up"]["depth"] is None else 1)' "$tmp/out" ||
    fail "ls --json: kind, depth"
expect 0 "$FERRY" mailbox recv org.t.mb --count 2 --type-filter -2
[ "$(cat "$tmp/out")" = "$(printf '[type 1, 2 bytes] m1\n[type 2, 2 bytes] m2')" ] || fail "mailbox recv"
expect 0 "$FERRY" recv org.t.mb --count 1 -q # a mailbox by name, through `ferry recv`
[ "$(cat "$tmp/out")" = m3 ] || fail "recv from a mailbox"
expect 0 "$FERRY" send org.t.mb --data m4
expect 0 "$FERRY" stat org.t.mb
grep -q '^depth: *1$' "$tmp/out" || fail "stat: depth 1 after"
grep -q '^waiting: *0$' "$tmp/out" || fail "stat: no waiting receiver"
# a receiver blocked on type 9 shows as waiting 1 until a type-9 message comes
bg mbw "$FERRY" mailbox recv org.t.mb --type-filter 9 --count 1 --timeout 20s -q
until_stat org.t.mb '^waiting: *1$' "a blocked mailbox recv never showed as waiting 1"
expect 0 "$FERRY" stat org.t.mb --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["waiting"] == 1 else 1)' "$tmp/out" ||
    fail "stat --json: waiting 1"
expect 0 "$FERRY" mailbox send org.t.mb --data nine --type 9
wait "$pid_mbw" || fail "mailbox recv of type 9 exited $?"
[ "$(cat "$tmp/mbw.out")" = nine ] || fail "mailbox recv of type 9: $(cat "$tmp/mbw.out")"
until_stat org.t.mb '^waiting: *0$' "waiting never went back to 0"
expect 3 "$FERRY" mailbox recv org.t.mb --type-filter 9 --timeout 100ms
one_line "timed out"
expect 7 "$FERRY" call org.t.mb hi
one_line "another kind"
expect 7 "$FERRY" sem value org.t.mb
one_line "another kind"
expect 7 "$FERRY" mailbox send org.t.up --data x
one_line "another kind"

# ---- broadcast: pub -> sub
mkfifo "$tmp/pubin"
exec 3<>"$tmp/pubin"
# (not through bg: an asynchronous command's stdin is /dev/null unless redirected there)
"$FERRY" pub org.t.bc --lines --type 7 <"$tmp/pubin" >"$tmp/pub.out" 2>"$tmp/pub.err" 3>&- &
pid_pub=$!
pids="$pids $pid_pub"
until_grep "$tmp/pub.err" "published org.t.bc"
bg sub "$FERRY" sub org.t.bc --count 2 --timeout 20s
i=0
until "$FERRY" stat org.t.bc 2>/dev/null | grep -q '^subscribers: *1$'; do
    i=$((i + 1))
    [ $i -gt 500 ] && fail "sub never subscribed"
    sleep 0.02
done
printf 'first\nsecond\n' >&3
exec 3>&-
wait "$pid_sub" || fail "sub exited $?"
[ "$(cat "$tmp/sub.out")" = "$(printf '[type 7, 5 bytes, lost 0] first\n[type 7, 6 bytes, lost 0] second')" ] ||
    fail "sub: $(cat "$tmp/sub.out")"
wait "$pid_pub" || fail "pub exited $?"

# ---- broadcast stat: 2 subscribers, stopped, lag 3 each after 3 messages
mkfifo "$tmp/pubin2"
exec 3<>"$tmp/pubin2"
"$FERRY" pub org.t.bc2 --lines <"$tmp/pubin2" >"$tmp/pub2.out" 2>"$tmp/pub2.err" 3>&- &
pid_pub2=$!
pids="$pids $pid_pub2"
until_grep "$tmp/pub2.err" "published org.t.bc2"
bg s1 "$FERRY" sub org.t.bc2 --count 3 --timeout 20s -q
bg s2 "$FERRY" sub org.t.bc2 --count 3 --timeout 20s -q --drop-oldest
until_stat org.t.bc2 '^subscribers: *2$' "the two subs never subscribed"
kill -STOP "$pid_s1" "$pid_s2"
printf 'a\nb\nc\n' >&3
until_stat org.t.bc2 '^published: *3$' "pub never published 3"
grep -q '^max_lag: *3$' "$tmp/out" || fail "stat: bcast max_lag 3"
[ "$(grep -c "^sub: *pid [0-9]* lag 3" "$tmp/out")" -eq 2 ] || fail "stat: two subs with lag 3"
grep -q "^sub: *pid $pid_s1 lag 3$" "$tmp/out" || fail "stat: sub 1 (pid, lag 3, blocking)"
grep -q "^sub: *pid $pid_s2 lag 3 drop-oldest$" "$tmp/out" || fail "stat: sub 2 (pid, lag 3, drop-oldest)"
expect 0 "$FERRY" stat org.t.bc2 --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); s=sorted(d["subs"], key=lambda x: x["drop_oldest"]); sys.exit(0 if d["subscribers"] == 2 and d["published"] == 3 and [x["lag"] for x in s] == [3, 3] and [x["drop_oldest"] for x in s] == [False, True] and all(x["alive"] for x in s) and d["ended"] is False else 1)' "$tmp/out" ||
    fail "stat --json: bcast subs"
kill -CONT "$pid_s1" "$pid_s2"
wait "$pid_s1" || fail "sub 1 exited $?"
wait "$pid_s2" || fail "sub 2 exited $?"
[ "$(cat "$tmp/s1.out")" = "$(printf 'a\nb\nc')" ] || fail "sub 1: $(cat "$tmp/s1.out")"
exec 3>&-
wait "$pid_pub2" || fail "pub 2 exited $?"

# ---- events and semaphores
bg ev "$FERRY" event create org.t.ev
until_grep "$tmp/ev.err" "published org.t.ev"
expect 0 "$FERRY" event post org.t.ev 42
expect 0 "$FERRY" event post org.t.ev 0x10
expect 0 "$FERRY" event next org.t.ev --count 2
[ "$(cat "$tmp/out")" = "$(printf '42\n16')" ] || fail "event next"
expect 3 "$FERRY" event next org.t.ev --timeout 100ms
one_line "timed out"
expect 2 "$FERRY" event post org.t.ev -5
expect 0 "$FERRY" stat org.t.ev
grep -q '^posted: *2$' "$tmp/out" || fail "stat: event posted"
bg sem "$FERRY" sem create org.t.sem --value 1
until_grep "$tmp/sem.err" "published org.t.sem"
expect 0 "$FERRY" sem value org.t.sem
[ "$(cat "$tmp/out")" = 1 ] || fail "sem value 1"
expect 0 "$FERRY" sem wait org.t.sem
expect 3 "$FERRY" sem wait org.t.sem --timeout 100ms
one_line "timed out"
expect 0 "$FERRY" sem post org.t.sem
expect 0 "$FERRY" stat org.t.sem
grep -q '^value: *1$' "$tmp/out" || fail "stat: sem value"
grep -q '^waiters: *0$' "$tmp/out" || fail "stat: sem waiters 0"
expect 0 "$FERRY" sem wait org.t.sem
bg semw "$FERRY" sem wait org.t.sem --timeout 20s
until_stat org.t.sem '^waiters: *1$' "a blocked sem wait never showed as waiters 1"
grep -q '^value: *0$' "$tmp/out" || fail "stat: sem value 0 with a waiter"
expect 0 "$FERRY" stat org.t.sem --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["waiters"] == 1 and d["value"] == 0 else 1)' "$tmp/out" ||
    fail "stat --json: sem waiters 1"
expect 0 "$FERRY" sem post org.t.sem
wait "$pid_semw" || fail "sem wait exited $?"
until_stat org.t.sem '^waiters: *0$' "sem waiters never went back to 0"

# ---- errors
expect 4 "$FERRY" call org.t.nosuch hi
one_line "org.t.nosuch: no such name"
expect 4 "$FERRY" stat org.t.nosuch
one_line "no such name"
expect 4 "$FERRY" sem post org.t.nosuch
expect 4 "$FERRY" kill org.t.nosuch TERM
one_line "no such name"
expect 2 "$FERRY" kill org.t.up NOSIG
one_line "bad signal 'NOSIG'"
expect 2 "$FERRY" call 'bad name!' hi
one_line "invalid"
expect 2 "$FERRY" call org.t.up --format yaml hi
one_line "bad format"
expect 2 "$FERRY" serve org.t.x
one_line "exactly one of --exec CMD and --echo"
bg slow "$FERRY" serve org.t.slow --exec 'sleep 3'
until_grep "$tmp/slow.err" "serving org.t.slow"
expect 3 "$FERRY" call org.t.slow hi --timeout 300ms
one_line "timed out"
bg dies "$FERRY" serve org.t.dies --exec 'kill -9 $PPID'
until_grep "$tmp/dies.err" "serving org.t.dies"
expect 6 "$FERRY" call org.t.dies hi --timeout 20s
one_line "peer gone"

# ---- another uid: invisible (4), visible but not callable (5), callable (0)
stage_programs "$FERRY" || fail "cannot stage ferry"
bg seen "$FERRY" serve org.t.seen --echo --mode 0644
until_grep "$tmp/seen.err" "serving org.t.seen"
expect 4 stage_run 65534 ferry call org.t.up hi
one_line "no such name"
expect 5 stage_run 65534 ferry call org.t.seen hi
one_line "permission denied"
expect 5 stage_run 65534 ferry kill org.t.seen TERM
one_line "permission denied"
expect 0 stage_run 65534 ferry call org.t.echo "from nobody"
[ "$(cat "$tmp/out")" = "from nobody" ] || fail "call as 65534"

# ---- kill through ferryd: serve ends on SIGTERM, 0
expect 0 "$FERRY" kill org.t.up TERM
wait "$pid_up" || fail "serve after ferry kill TERM exited $?"
expect 4 "$FERRY" call org.t.up hi --timeout 5s

# ---- holders end on SIGTERM (0), and their names go
for p in mb ev sem echo seen slow dies; do
    eval "pid=\$pid_$p"
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
done
expect 4 "$FERRY" stat org.t.mb
kill "$ferryd"
wait "$ferryd"
echo "test_svc: ok"
exit 0
