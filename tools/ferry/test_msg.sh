#!/bin/sh
# SPDX-License-Identifier: MIT
# test_msg.sh — `ferry send` -> `ferry recv` end to end over every transport (run by CTest
# as ferry_msg).   usage: test_msg.sh PATH/TO/ferry
# Runs in a private IPC and mount namespace (unshare -i -m; exit 77, a skip, where that is
# not allowed), with an mqueue file system on $tmp/mq, so "no queue is left" is exact.
# For each of shm, unix, tcp (127.0.0.1), fifo, posixmq and sysvmq:
#  - every format both ways: `recv --listen URL --count 1 --format F -q` and
#    `send URL --format F --data ENCODED`: the payload "hello, ferry" goes in encoded as F
#    (raw, text, hex, json string, base64) and comes out encoded as F again, exactly;
#  - typed filters (System V rules): three messages of types 3, 1, 2 sent from one
#    `send --format json --lines` (JSON objects with "type"), `recv --type-filter -2
#    --count 2` gets type 1 then type 2, with their payloads;
# then on shm and unix an fd rides (`send --fd FILE`; recv prints "fd FILE" and the
# sender's uid and pid), on tcp `--fd` is refused (exit 1, one line naming it); `send
# --listen` -> `recv` (the listener sends and closes; recv gets everything, then exit 0 at
# the end of the stream); a binary payload survives --format raw byte for byte and
# --format json as "base64"; text output escapes ESC and C1 controls (payload, fd path);
# bad --format, bad hex, bad URL scheme, bad --timeout exit 2
# with one line on stderr naming the cause; nobody listening exits 4; `--timeout 200ms`
# with nothing coming exits 3. At the end: no queue (ipcs -q, the mqueue directory), no
# socket file or FIFO left, no ferry process running.
set -u
FERRY=$1
TEST=test_msg
. "$(dirname "$0")/testlib.sh"
private_ns FERRY_MSG_INNER "$@"

scratch - mq d
FAIL_FILES="out err rout rerr"
ONE_LINE_SKIP='^ferry [a-z]*: listening on ' # a listener's "listening on URL"

# receiver ARGS...: `ferry recv ARGS` in the background (stdout $tmp/rout).
receiver() {
    rm -f "$tmp/rerr" "$tmp/rout" # not the last receiver's: `listening` reads rerr
    "$FERRY" recv "$@" >"$tmp/rout" 2>"$tmp/rerr" &
    rpid=$!
    pids="$pids $rpid"
}

# send_up ARGS...: `ferry send ARGS`, again while nobody listens yet (exit 4), at most
# 300 times 20 ms; then want exit 0 (or 6: the receiver took the --count it wanted and
# left while this was still sending, as it may).
send_up() {
    i=0
    while :; do
        "$FERRY" send "$@" >"$tmp/out" 2>"$tmp/err"
        got=$?
        [ "$got" -ne 4 ] && break
        i=$((i + 1))
        [ $i -gt 300 ] && fail "nobody ever listened: send $*"
        sleep 0.02
    done
    [ "$got" -eq 0 ] || [ "$got" -eq 6 ] || fail "send $* exited $got"
}

# listening: wait until the receiver says "listening on URL" (at most 6 s); a tcp URL
# with port 0 becomes the one it got (u).
listening() {
    i=0
    until grep -q '^ferry recv: listening on ' "$tmp/rerr" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 300 ] && fail "recv never listened on $u"
        sleep 0.02
    done
    case $u in tcp://*) u=$(sed -n 's/^ferry recv: listening on //p' "$tmp/rerr") ;; esac
}

# reaped: the receiver exited with CODE.
reaped() {
    wait "$rpid"
    got=$?
    [ "$got" -eq "$1" ] || fail "recv exited $got, want $1"
}

MSG="hello, ferry"
HEX=68656c6c6f2c206665727279
B64=aGVsbG8sIGZlcnJ5
printf '{"type": 3, "data": "three"}\n{"type": 1, "base64": "b25l"}\n{"type": 2, "data": "two"}\n' >"$tmp/typed"

n=0
for url in "shm://$tmp/d/s" "unix://$tmp/d/u" "tcp://127.0.0.1:0" "fifo://$tmp/d/f" \
    "posixmq:///tmsg" "sysvmq://0x7e771499"; do
    scheme=${url%%:*}
    for fmt in raw text hex json base64; do
        n=$((n + 1))
        u=$url
        case $fmt in
        raw | text) enc=$MSG ;;
        hex) enc=$HEX ;;
        json) enc="\"$MSG\"" ;;
        base64) enc=$B64 ;;
        esac
        receiver "$u" --listen --count 1 --format "$fmt" -q --timeout 10s
        listening
        send_up "$u" --format "$fmt" --data "$enc" --timeout 10s
        reaped 0
        case $fmt in
        raw) printf '%s' "$MSG" | cmp -s - "$tmp/rout" || fail "$u raw: $(cat "$tmp/rout")" ;;
        text) [ "$(cat "$tmp/rout")" = "$MSG" ] || fail "$u text" ;;
        hex) [ "$(cat "$tmp/rout")" = "$HEX" ] || fail "$u hex" ;;
        base64) [ "$(cat "$tmp/rout")" = "$B64" ] || fail "$u base64" ;;
        json) grep -q "\"type\": 0, \"size\": 12.*\"data\": \"$MSG\"}" "$tmp/rout" || fail "$u json" ;;
        esac
    done
    # typed filters: lowest type <= 2 first
    n=$((n + 1))
    u=$url
    receiver "$u" --listen --count 2 --type-filter -2 --format json --timeout 10s
    listening
    send_up "$u" --format json --lines --file "$tmp/typed" --timeout 10s
    reaped 0
    [ "$(wc -l <"$tmp/rout")" -eq 2 ] || fail "$u typed: want 2 lines"
    head -1 "$tmp/rout" | grep -q '"type": 1, "size": 3.*"data": "one"' || fail "$u typed: first"
    tail -1 "$tmp/rout" | grep -q '"type": 2, "size": 3.*"data": "two"' || fail "$u typed: second"
    # and an exact type (after 3 and 1, passed over)
    n=$((n + 1))
    u=$url
    receiver "$u" --listen --count 1 --type-filter 2 --timeout 10s
    listening
    send_up "$u" --format json --lines --file "$tmp/typed" --timeout 10s
    reaped 0
    grep -q '^\[type 2, 3 bytes.*\] two$' "$tmp/rout" || fail "$u type 2"
done

# ---- an fd rides on shm and unix; the sender's identity is printed
echo "the file" >"$tmp/d/file"
for url in "shm://$tmp/d/s" "unix://$tmp/d/u"; do
    receiver "$url" --listen --count 1 --timeout 10s
    send_up "$url" --data x --fd "$tmp/d/file" --timeout 10s
    reaped 0
    grep -q "^\[type 0, 1 bytes, uid $(id -u) gid $(id -g) pid [0-9]*, fd $tmp/d/file\] x$" \
        "$tmp/rout" || fail "$url: fd not shown"
done
u=tcp://127.0.0.1:0
receiver "$u" --listen --count 1 --timeout 10s
listening
expect 1 "$FERRY" send "$u" --data x --fd "$tmp/d/file"
one_line "EOPNOTSUPP"
kill "$rpid" # SIGTERM: the receiver ends quietly, 0
reaped 0

# ---- send --listen: the listener sends and closes; recv drains to the end (0)
"$FERRY" send "unix://$tmp/d/l" --listen --data "m" --count 3 --timeout 10s >/dev/null 2>&1 &
spid=$!
pids="$pids $spid"
i=0
while :; do
    "$FERRY" recv "unix://$tmp/d/l" -q --timeout 10s >"$tmp/rout" 2>"$tmp/rerr"
    got=$?
    [ "$got" -ne 4 ] && break
    i=$((i + 1))
    [ $i -gt 300 ] && fail "send --listen never up"
    sleep 0.02
done
[ "$got" -eq 0 ] || fail "recv from send --listen exited $got"
[ "$(cat "$tmp/rout")" = "$(printf 'm\nm\nm')" ] || fail "recv from send --listen: 3 messages"
wait "$spid" || fail "send --listen failed"

# ---- binary payloads: raw is exact, json uses base64
printf '\000\001\377abc' >"$tmp/bin"
receiver "unix://$tmp/d/b" --listen --count 1 --format raw --timeout 10s
send_up "unix://$tmp/d/b" --format raw --file "$tmp/bin" --timeout 10s
reaped 0
cmp -s "$tmp/bin" "$tmp/rout" || fail "raw binary differs"
receiver "unix://$tmp/d/b" --listen --count 1 --format json --timeout 10s
send_up "unix://$tmp/d/b" --format raw --file "$tmp/bin" --timeout 10s
reaped 0
grep -q '"size": 6.*"base64": "AAH/YWJj"' "$tmp/rout" || fail "json binary: base64"

# text output cannot steer a terminal: ESC and the C1 CSI (U+009B) come out as \xHH, in
# the payload and in a received fd's path
esc=$(printf 'evil\033[31m')
echo x >"$tmp/d/$esc"
receiver "unix://$tmp/d/b" --listen --count 1 --timeout 10s
send_up "unix://$tmp/d/b" --data "$(printf 'a\033[2J\302\233b')" --fd "$tmp/d/$esc" --timeout 10s
reaped 0
rm -f "$tmp/d/$esc"
grep -q "fd $tmp/d/evil\\\\x1b\[31m\] a\\\\x1b\[2J\\\\xc2\\\\x9bb$" "$tmp/rout" ||
    fail "text output: control bytes not escaped: $(od -c "$tmp/rout")"
[ "$(tr -d '\033' <"$tmp/rout" | wc -c)" -eq "$(wc -c <"$tmp/rout")" ] || fail "an ESC byte was printed"

# ---- errors: one line on stderr naming the cause, and the documented code
expect 2 "$FERRY" send "unix://$tmp/d/x" --format yaml --data x
one_line "bad format 'yaml'"
expect 2 "$FERRY" send "unix://$tmp/d/x" --format hex --data xyz
one_line "does not decode"
expect 2 "$FERRY" send "nosuch://x" --data x
one_line "EPROTONOSUPPORT"
expect 2 "$FERRY" recv "unix://$tmp/d/x" --timeout soon
one_line "bad --timeout 'soon'"
expect 4 "$FERRY" send "unix://$tmp/d/nobody" --data x
one_line "nobody listens\|no such name"
expect 3 "$FERRY" recv "unix://$tmp/d/t" --listen --timeout 200ms
one_line "timed out"
expect 2 "$FERRY" send
one_line "missing argument (see 'ferry help send')"
expect 0 "$FERRY" help recv
grep -q '^usage: ferry recv' "$tmp/out" || fail "help recv"

# ---- nothing left
[ -z "$(ipcs -q | awk '$1 ~ /^0x/ { print }')" ] || fail "System V queues left: $(ipcs -q)"
[ -z "$(ls "$tmp/mq")" ] || fail "POSIX queues left: $(ls "$tmp/mq")"
[ "$(ls "$tmp/d")" = file ] || fail "files left in $tmp/d: $(ls "$tmp/d")"
echo "test_msg: ok ($n rounds)"
exit 0
