#!/bin/sh
# SPDX-License-Identifier: MIT
# test_cli.sh — smoke test of the `ferry` tool and its benchmark, ferry-bench (run by CTest
# as ferry_cli).
#   usage: test_cli.sh PATH/TO/ferry PATH/TO/ferry-bench INSTALL-BINDIR
# Checks the exit codes of the dispatcher (help 0, --version 0, unknown command 2 with the
# usage on stderr, unknown help topic 2 with one line on stderr, bad bench options 2), and
# how `ferry bench` finds ferry-bench: next to ferry (this build), else in INSTALL-BINDIR,
# else on PATH, else exit 127 with one line on stderr; ferry-bench run directly (--help,
# --version, a tiny run, its private ferryd: $FERRY_FERRYD, else next to it, else
# INSTALL-BINDIR). Every benchmark run below goes through `ferry bench` (the exec path):
# first a tiny benchmark,
#   ferry bench --csv --smoke --only spin-baseline,ferry-shm
# which must exit 0 and print exactly the CSV header, then at least one well-formed row
# for each selected mechanism and none for the others; and the same run as a table.
# Then --repeat: bad values exit 2, and `--repeat 2 --smoke` still prints exactly one row
# per mechanism/pattern/size (the medians), in CSV and in the table (with its spread).
# Then the raw kernel rows (unix, tcp, fifo, posixmq, sysvmq, eventfd): well-formed rows,
# sizes within the queues' limits (the rest noted), and nothing left behind — run in a
# private IPC and mount namespace where we may (exact: its queue lists must be empty),
# else by comparing /dev/mqueue and `ipcs -q` before and after; FIFOs under $TMPDIR.
# Then the peers (ZeroMQ, NNG, iceoryx, and the request/reply ones: zeromq-reqrep,
# dbus-call): rows when built in, else a note and no rows; iceoryx leaves nothing in
# /dev/shm or /tmp; zeromq-reqrep and dbus-call have exactly pingpong 64, and dbus-call
# leaves no dbus-daemon running and nothing in TMPDIR. Then --url (the generic ferry row, by
# listen/open, here over shm://): its six rows, nothing left in {dir}. Then the
# synchronization rows (semaphores, mutexes, rt-signal, ferry events): one row each where
# libferry has the object (else a note), no semaphore set or /dev/shm file left, in a
# private IPC and mount namespace where we may. Then the naming
# service: broker-connect (one row) and --scale --smoke (its report, its CSV) with a
# private ferryd each, nothing left in TMPDIR. Then --plot: a well-formed SVG.
set -u
FERRY=$1
BENCH=$2
BINDIR=$3
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
    echo "test_cli: FAIL: $*" >&2
    exit 1
}

# expect CODE CMD...: run CMD (stdout to $tmp/out, stderr to $tmp/err), want exit CODE.
expect() {
    want=$1
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    [ "$got" -eq "$want" ] || { cat "$tmp/err" >&2; fail "'$*' exited $got, want $want"; }
}

# ---- dispatch and usage
expect 0 "$FERRY" --version
grep -q '^ferry [0-9]' "$tmp/out" || fail "--version printed '$(cat "$tmp/out")'"
expect 0 "$FERRY" help
grep -q 'bench' "$tmp/out" || fail "help does not list bench"
expect 2 "$FERRY" no-such-command
grep -q '^usage: ferry' "$tmp/err" || fail "unknown command: no usage on stderr"
[ -s "$tmp/out" ] && fail "unknown command wrote to stdout"
expect 2 "$FERRY"
expect 2 "$FERRY" help no-such-topic
[ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "no-such-topic" "$tmp/err" ||
    fail "unknown help topic: want one line on stderr naming it, got '$(cat "$tmp/err")'"
[ -s "$tmp/out" ] && fail "unknown help topic wrote to stdout"
expect 0 "$FERRY" help bench
grep -q '^usage: ferry bench' "$tmp/out" || fail "help bench: no usage"
expect 0 "$FERRY" bench --help
expect 2 "$FERRY" bench --no-such-option
expect 2 "$FERRY" bench --only no-such-mechanism
expect 2 "$FERRY" bench --repeat 0
expect 2 "$FERRY" bench --repeat x
expect 2 "$FERRY" bench --repeat

# ---- ferry-bench is its own program; `ferry bench` execs it (same output, same exit code)
expect 0 "$BENCH" --version
grep -q '^ferry-bench [0-9]' "$tmp/out" || fail "ferry-bench --version printed '$(cat "$tmp/out")'"
cp "$tmp/out" "$tmp/version"
expect 0 "$FERRY" bench --version
cmp -s "$tmp/out" "$tmp/version" || fail "ferry bench --version: '$(cat "$tmp/out")'"
expect 0 "$BENCH" --help
grep -q '^usage: ferry bench' "$tmp/out" || fail "ferry-bench --help: no usage"
expect 2 "$BENCH" --no-such-option
# Not next to ferry: the installed one, else PATH, else 127 and one line on stderr.
mkdir "$tmp/lone" "$tmp/path"
cp "$FERRY" "$tmp/lone/ferry"
if [ -x "$BINDIR/ferry-bench" ]; then
    echo "test_cli: $BINDIR/ferry-bench is installed: exit 127 not tried" >&2
else
    expect 127 env PATH="$tmp/path" "$tmp/lone/ferry" bench --version
    [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "ferry-bench" "$tmp/err" ||
        fail "no ferry-bench: want one line on stderr, got '$(cat "$tmp/err")'"
    cp "$BENCH" "$tmp/path/ferry-bench"
    expect 0 env PATH="$tmp/path" "$tmp/lone/ferry" bench --version
    cmp -s "$tmp/out" "$tmp/version" || fail "ferry-bench on PATH not run: '$(cat "$tmp/out")'"
fi

# check_rows FILE MECH...: every CSV row has 8 fields, one of the MECHs, a known pattern;
# pingpong, uncontended and handoff rows carry p50 <= p99 <= p99.9 and msgs_per_s (the
# last two at size 0); stream rows msgs_per_s and bytes_per_s; and each MECH has at least
# one row.
check_rows() {
    file=$1
    shift
    for m in "$@"; do
        n=$(awk -F, -v m="$m" 'NR > 1 && $1 == m' "$file" | wc -l)
        [ "$n" -ge 1 ] || fail "no CSV row for $m"
    done
    awk -F, -v mechs=" $* " '
        function num(x) { return x ~ /^[0-9]+$/ }
        NR == 1 { next }
        NF != 8 { print "wrong field count: " $0; bad = 1; next }
        index(mechs, " " $1 " ") == 0 { print "unselected mechanism: " $0; bad = 1 }
        !num($3) { print "bad size: " $0; bad = 1 }
        $2 == "pingpong" || $2 == "uncontended" || $2 == "handoff" {
            if (!num($4) || !num($5) || !num($6) || !num($7) || $8 != "" ||
                $4 + 0 > $5 + 0 || $5 + 0 > $6 + 0 || $4 + 0 == 0 || $7 + 0 == 0)
                { print "bad " $2 " row: " $0; bad = 1 }
            if ($2 != "pingpong" && $3 != 0) { print "bad size: " $0; bad = 1 }
            next
        }
        $2 == "stream" {
            if ($4 != "" || $5 != "" || $6 != "" || !num($7) || !num($8) || $8 + 0 == 0)
                { print "bad stream row: " $0; bad = 1 }
            next
        }
        { print "unknown pattern: " $0; bad = 1 }
        END { exit bad }
    ' "$file" >&2 || fail "malformed CSV rows"
}

# ---- a tiny benchmark, CSV
header='mechanism,pattern,size,rtt_p50_ns,rtt_p99_ns,rtt_p999_ns,msgs_per_s,bytes_per_s'
expect 0 "$FERRY" bench --csv --smoke --only spin-baseline,ferry-shm
[ "$(head -n 1 "$tmp/out")" = "$header" ] || fail "CSV header is '$(head -n 1 "$tmp/out")'"
check_rows "$tmp/out" spin-baseline ferry-shm
expect 0 "$BENCH" --csv --smoke --only spin-baseline
[ "$(head -n 1 "$tmp/out")" = "$header" ] || fail "ferry-bench: CSV header"
check_rows "$tmp/out" spin-baseline

# ---- the same as a table
expect 0 "$FERRY" bench --smoke --only spin-baseline
head -n 1 "$tmp/out" | grep -q '^mechanism  *pattern  *size  *rtt_p50_ns' || fail "table header"
grep -q '^spin-baseline  *pingpong  *64 ' "$tmp/out" || fail "no spin-baseline table row"

# ---- repeated: one row (the medians) per mechanism/pattern/size, whatever N
expect 0 "$FERRY" bench --csv --repeat 2 --smoke --only spin-baseline,ferry-shm
[ "$(head -n 1 "$tmp/out")" = "$header" ] || fail "--repeat 2: CSV header"
# spin-baseline: pingpong 64; ferry-shm: 4 pingpong sizes and 2 stream sizes.
[ "$(wc -l <"$tmp/out")" -eq 8 ] || fail "--repeat 2: $(($(wc -l <"$tmp/out") - 1)) rows, want 7"
dups=$(awk -F, 'NR > 1 && NF == 8 { print $1 "," $2 "," $3 }' "$tmp/out" | sort | uniq -d)
[ -z "$dups" ] || fail "--repeat 2: duplicated rows: $dups"
[ "$(awk -F, 'NR > 1 && NF == 8' "$tmp/out" | wc -l)" -eq 7 ] || fail "--repeat 2: bad rows"
expect 0 "$FERRY" bench --repeat 2 --smoke --only spin-baseline
head -n 1 "$tmp/out" | grep -q ' spread$' || fail "--repeat 2: no spread column"
[ "$(grep -c '^spin-baseline ' "$tmp/out")" -eq 1 ] || fail "--repeat 2: spin-baseline rows"

# ---- the raw kernel mechanisms, and what they leave behind
raw=unix,tcp,fifo,posixmq,sysvmq,eventfd
queues_sysv() { ipcs -q 2>/dev/null | awk '$1 ~ /^0x/ { print $2 }' | sort; }
queues_posix() { [ -d /dev/mqueue ] && ls -A /dev/mqueue | sort; }
mkdir "$tmp/tmpdir" "$tmp/mq"
if unshare -i -m true 2>/dev/null; then
    # A fresh IPC namespace has no queues; whatever is left there is ours.
    unshare -i -m sh -c '
        mount -t mqueue none "$1/mq" || exit 99
        TMPDIR="$1/tmpdir" "$2" bench --csv --smoke --only "$3" >"$1/out" 2>"$1/err"
        rc=$?
        ls -A "$1/mq" >"$1/left-mq"
        ipcs -q | awk "\$1 ~ /^0x/" >"$1/left-sysv"
        exit $rc' sh "$tmp" "$FERRY" "$raw"
    got=$?
    [ "$got" -eq 99 ] && fail "cannot mount an mqueue file system in a private namespace"
    [ "$got" -eq 0 ] || { cat "$tmp/err" >&2; fail "raw rows exited $got"; }
    [ -s "$tmp/left-mq" ] && fail "POSIX queues left behind: $(cat "$tmp/left-mq")"
    [ -s "$tmp/left-sysv" ] && fail "System V queues left behind: $(cat "$tmp/left-sysv")"
else
    # Shared namespace: another program's queues would show up too.
    queues_sysv >"$tmp/sysv-before"
    queues_posix >"$tmp/mq-before"
    expect 0 env TMPDIR="$tmp/tmpdir" "$FERRY" bench --csv --smoke --only "$raw"
    queues_sysv | cmp -s - "$tmp/sysv-before" || fail "ipcs -q changed: $(queues_sysv)"
    queues_posix | cmp -s - "$tmp/mq-before" || fail "/dev/mqueue changed: $(queues_posix)"
fi
[ -z "$(ls -A "$tmp/tmpdir")" ] || fail "left in TMPDIR: $(ls -A "$tmp/tmpdir")"
[ "$(head -n 1 "$tmp/out")" = "$header" ] || fail "raw rows: CSV header"
check_rows "$tmp/out" unix tcp fifo posixmq sysvmq eventfd
# Every pattern and size where the mechanism allows it, and a note where it does not.
[ "$(awk -F, '$1 == "unix" || $1 == "tcp" || $1 == "fifo"' "$tmp/out" | wc -l)" -eq 18 ] ||
    fail "unix, tcp, fifo: not 6 rows each"
[ "$(awk -F, '$1 == "eventfd"' "$tmp/out")" != "" ] &&
    [ "$(awk -F, '$1 == "eventfd" { print $2, $3 }' "$tmp/out")" = "pingpong 64" ] ||
    fail "eventfd: want exactly one row, pingpong 64"
msgsize_max=$(cat /proc/sys/fs/mqueue/msgsize_max 2>/dev/null || echo 8192)
big=$(awk -F, -v m="$msgsize_max" '$1 == "posixmq" && $3 + 0 > m + 0' "$tmp/out")
[ -z "$big" ] || fail "posixmq row above msgsize_max: $big"
if [ "$msgsize_max" -lt 65536 ]; then
    grep -q "posixmq: sizes above $msgsize_max bytes not possible (msgsize_max)" "$tmp/err" ||
        fail "no note on posixmq's msgsize_max"
fi
msgmax=$(cat /proc/sys/kernel/msgmax 2>/dev/null || echo 8192)
big=$(awk -F, -v m="$msgmax" '$1 == "sysvmq" && $3 + 0 > m + 0' "$tmp/out")
[ -z "$big" ] || fail "sysvmq row above msgmax: $big"

# ---- the peers: rows when built in, a note and no rows when not
"$FERRY" bench --help >"$tmp/help"
peers=""
for m in zeromq-ipc zeromq-tcp nng-ipc iceoryx zeromq-reqrep dbus-call; do
    if grep -q "^ *$m  (not built" "$tmp/help"; then
        expect 0 "$FERRY" bench --csv --smoke --only "$m"
        [ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "$m is not built but has rows"
        grep -q "$m: left out" "$tmp/err" || fail "$m: no note that it is left out"
    elif [ "$m" = iceoryx ] && [ -e /tmp/roudi.lock ]; then
        echo "test_cli: another iox-roudi runs here: iceoryx not tried" >&2
    else
        peers="$peers${peers:+,}$m"
    fi
done
# iceoryx's fixed names: its segments in /dev/shm, RouDi's and our applications' in /tmp.
iox_names() {
    ls -A /dev/shm | grep -E "^(iceoryx_mgmt|$(id -gn)|$(id -un))\$"
    ls -A /tmp | grep -E '^(roudi|roudi\.lock|iox-unique-roudi\.lock|ferry-iox-.*)$'
}
if [ -n "$peers" ]; then
    iox_names | sort >"$tmp/iox-before"
    mkdir "$tmp/tmpdir-peers"
    expect 0 env TMPDIR="$tmp/tmpdir-peers" "$FERRY" bench --csv --smoke --only "$peers"
    ran=$(echo "$peers" | tr , ' ')
    # At run time: iox-roudi or dbus-daemon missing.
    for m in iceoryx dbus-call; do
        grep -q "$m: left out" "$tmp/err" && ran=$(echo "$ran" | sed "s/$m//")
    done
    # shellcheck disable=SC2086 # one word per mechanism
    check_rows "$tmp/out" $ran
    for m in zeromq-reqrep dbus-call; do
        case " $ran " in *" $m "*) ;; *) continue ;; esac
        [ "$(awk -F, -v m="$m" '$1 == m { print $2, $3 }' "$tmp/out")" = "pingpong 64" ] ||
            fail "$m: want exactly one row, pingpong 64"
    done
    iox_names | sort | cmp -s - "$tmp/iox-before" || fail "iceoryx left: $(iox_names)"
    [ -z "$(ls -A "$tmp/tmpdir-peers")" ] || fail "left in TMPDIR: $(ls -A "$tmp/tmpdir-peers")"
    # dbus-call's daemon runs with a config file in TMPDIR: none may be running any more.
    if command -v pgrep >/dev/null 2>&1 && pgrep -f "$tmp/tmpdir-peers" >/dev/null; then
        fail "left running: $(pgrep -a -f "$tmp/tmpdir-peers")"
    fi
fi

# ---- --url: a ferry row by URL (what a ferry-<scheme> table entry does)
mkdir "$tmp/tmpdir-url"
expect 0 env TMPDIR="$tmp/tmpdir-url" "$FERRY" bench --csv --smoke --url 'shm://{dir}/bench.sock'
check_rows "$tmp/out" ferry-shm-url
[ "$(wc -l <"$tmp/out")" -eq 7 ] || fail "--url: $(($(wc -l <"$tmp/out") - 1)) rows, want 6"
[ -z "$(ls -A "$tmp/tmpdir-url")" ] || fail "--url left: $(ls -A "$tmp/tmpdir-url")"
expect 2 "$FERRY" bench --url 'no scheme'
expect 1 env TMPDIR="$tmp/tmpdir-url" "$FERRY" bench --smoke --url 'nosuch://{dir}/x'
grep -q 'EPROTONOSUPPORT' "$tmp/err" || fail "--url with an unknown scheme: no reason given"
[ -z "$(ls -A "$tmp/tmpdir-url")" ] || fail "--url (failed) left: $(ls -A "$tmp/tmpdir-url")"

# ---- the synchronization rows (bench_sync.c): one row each, with its pattern and size;
# the ferry ones only where this libferry has the object (else a note). Nothing left
# behind: no System V semaphore set, nothing in /dev/shm (the sem_t is unnamed, ferry
# objects are memfds) — exact in a private IPC namespace with a private /dev/shm, else
# `ipcs -s` and /dev/shm before and after. (A SIGRTMIN left pending would kill the run.)
sync=posix-sem,sysv-sem,ferry-sem,pthread-robust-mutex,ferry-mutex,ferry-mutex-fair,rt-signal
sync=$sync,eventfd,ferry-event
sems() { ipcs -s 2>/dev/null | awk '$1 ~ /^0x/ { print $2 }' | sort; }
if unshare -i -m true 2>/dev/null; then
    unshare -i -m sh -c '
        mount -t tmpfs none /dev/shm || exit 99
        "$2" bench --csv --smoke --only "$3" >"$1/out" 2>"$1/err"
        rc=$?
        ls -A /dev/shm >"$1/left-shm"
        ipcs -s | awk "\$1 ~ /^0x/" >"$1/left-sem"
        exit $rc' sh "$tmp" "$FERRY" "$sync"
    got=$?
    [ "$got" -eq 99 ] && fail "cannot mount a tmpfs on /dev/shm in a private namespace"
    [ "$got" -eq 0 ] || { cat "$tmp/err" >&2; fail "synchronization rows exited $got"; }
    [ -s "$tmp/left-shm" ] && fail "left in /dev/shm: $(cat "$tmp/left-shm")"
    [ -s "$tmp/left-sem" ] && fail "semaphore sets left behind: $(cat "$tmp/left-sem")"
else
    sems >"$tmp/sem-before"
    ls -A /dev/shm | sort >"$tmp/shm-before"
    expect 0 "$FERRY" bench --csv --smoke --only "$sync"
    sems | cmp -s - "$tmp/sem-before" || fail "ipcs -s changed: $(sems)"
    ls -A /dev/shm | sort | cmp -s - "$tmp/shm-before" || fail "/dev/shm changed"
fi
ran=""
for m in $(echo "$sync" | tr , ' '); do
    case $m in
    *-sem) want="uncontended 0" ;;
    *-mutex*) want="handoff 0" ;;
    *) want="pingpong 64" ;;
    esac
    if grep -q "[ ,]${m}[ ,:].*left out: this libferry has no" "$tmp/err"; then
        case $m in ferry-*) ;; *) fail "$m left out" ;; esac
        [ -z "$(awk -F, -v m="$m" '$1 == m' "$tmp/out")" ] || fail "$m left out but has rows"
        continue
    fi
    [ "$(awk -F, -v m="$m" '$1 == m { print $2, $3 }' "$tmp/out")" = "$want" ] ||
        fail "$m: want exactly one row, $want"
    ran="$ran $m"
done
# shellcheck disable=SC2086 # one word per mechanism
check_rows "$tmp/out" $ran

# ---- the naming service: broker-connect through a private ferryd, and --scale; both
# stop their ferryd and leave nothing in TMPDIR
mkdir "$tmp/tmpdir-broker"
expect 0 env TMPDIR="$tmp/tmpdir-broker" "$FERRY" bench --csv --smoke --only broker-connect
check_rows "$tmp/out" broker-connect
[ "$(awk -F, '$1 == "broker-connect" { print $2, $3 }' "$tmp/out")" = "pingpong 64" ] ||
    fail "broker-connect: want exactly one row, pingpong 64"
[ -z "$(ls -A "$tmp/tmpdir-broker")" ] || fail "broker-connect left: $(ls -A "$tmp/tmpdir-broker")"
expect 0 env TMPDIR="$tmp/tmpdir-broker" "$FERRY" bench --smoke --scale
grep -q '^  VmRSS [0-9]* KiB' "$tmp/out" || fail "--scale: no VmRSS line"
grep -Eq '^  ferryd VmRSS, 100 names \+ 20 clients .*(PASS|MISS)$' "$tmp/out" ||
    fail "--scale: no target line"
expect 0 env TMPDIR="$tmp/tmpdir-broker" "$FERRY" bench --smoke --scale --csv
[ "$(head -n 1 "$tmp/out")" = "names,servers,clients,ferryd_rss_kib,ferryd_hwm_kib,ferryd_fds" ] ||
    fail "--scale --csv: header"
awk -F, 'NR == 2 && NF == 6 && $1 == 100 && $4 > 0 { ok = 1 } END { exit !(ok && NR == 2) }' \
    "$tmp/out" || fail "--scale --csv: bad row: $(cat "$tmp/out")"
[ -z "$(ls -A "$tmp/tmpdir-broker")" ] || fail "--scale left: $(ls -A "$tmp/tmpdir-broker")"
expect 2 "$FERRY" bench --scale --only spin-baseline
# Which ferryd: $FERRY_FERRYD, else the one next to ferry-bench (here a link to the built
# one), else the installed one, else the row is left out with a note.
cp "$BENCH" "$tmp/lone/ferry-bench"
if [ -x "$BINDIR/ferryd" ]; then
    echo "test_cli: $BINDIR/ferryd is installed: broker-connect without a ferryd not tried" >&2
else
    expect 0 env -u FERRY_FERRYD TMPDIR="$tmp/tmpdir-broker" "$tmp/lone/ferry-bench" --csv \
        --smoke --only broker-connect
    [ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "no ferryd, yet broker-connect rows"
    grep -q 'broker-connect.*no ferryd program' "$tmp/err" || fail "no ferryd: no note"
fi
ferryd=$(dirname "$BENCH")/ferryd
[ -x "$ferryd" ] || fail "no ferryd next to $BENCH"
expect 0 env FERRY_FERRYD="$ferryd" TMPDIR="$tmp/tmpdir-broker" "$tmp/lone/ferry-bench" \
    --csv --smoke --only broker-connect
check_rows "$tmp/out" broker-connect
[ -z "$(ls -A "$tmp/tmpdir-broker")" ] || fail "broker-connect left: $(ls -A "$tmp/tmpdir-broker")"

# ---- --plot: a well-formed SVG chart
expect 0 "$FERRY" bench --smoke --only spin-baseline,ferry-shm,unix,posixmq --plot "$tmp/p.svg"
[ -s "$tmp/p.svg" ] || fail "--plot wrote nothing"
head -n 1 "$tmp/p.svg" | grep -q '^<?xml' || fail "--plot: no XML declaration"
[ "$(tail -n 1 "$tmp/p.svg")" = "</svg>" ] || fail "--plot: the SVG does not end with </svg>"
for want in '<svg xmlns=' '<polyline' 'ferry-shm' 'unix' 'spin-baseline' 'msgsize_max'; do
    grep -q "$want" "$tmp/p.svg" || fail "--plot: no '$want' in the SVG"
done
if command -v xmllint >/dev/null 2>&1; then
    xmllint --noout "$tmp/p.svg" || fail "--plot: xmllint refuses the SVG"
fi
expect 1 "$FERRY" bench --smoke --only spin-baseline --plot "$tmp/no/such/dir/p.svg"
grep -q -- '--plot' "$tmp/err" || fail "--plot to a bad path: no message"

# ---- --pairs: N pairs at once, unpinned; one row per mechanism and N (the aggregate), the
# ferry-shm / pipe target at N = 2, the same ratio as INFO for an N no target names
expect 0 "$FERRY" bench --csv --smoke --pairs 2,3
[ "$(head -n 1 "$tmp/out")" = "$header" ] || fail "--pairs: CSV header"
[ "$(wc -l <"$tmp/out")" -eq 5 ] || fail "--pairs 2,3: $(($(wc -l <"$tmp/out") - 1)) rows, want 4"
for row in pipe,pairs-2 pipe,pairs-3 ferry-shm,pairs-2 ferry-shm,pairs-3; do
    awk -F, -v r="$row" '$1 "," $2 == r && $3 == 64 && $4 > 0 && $7 > 0 { ok = 1 } END { exit !ok }' \
        "$tmp/out" || fail "--pairs: no row $row with figures"
done
expect 0 "$FERRY" bench --smoke --pairs 2,3
grep -q 'ferry-shm --pairs 2 round trips/s / pipe --pairs 2 .*>= 1 ' "$tmp/out" ||
    fail "--pairs 2: no target line"
grep -q 'ferry-shm --pairs 3 round trips/s / pipe --pairs 3 .*INFO' "$tmp/out" ||
    fail "--pairs 3: no INFO line"
expect 2 "$FERRY" bench --pairs 0
expect 2 "$FERRY" bench --pairs 2,x
expect 2 "$FERRY" bench --pairs 129
expect 2 "$FERRY" bench --pairs 2 --scale

echo "test_cli: ok"
