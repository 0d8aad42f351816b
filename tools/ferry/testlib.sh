# SPDX-License-Identifier: MIT
# testlib.sh — the pieces the `ferry` tool's end-to-end test scripts share (test_ls.sh,
# test_ls_region.sh, test_msg.sh, test_svc.sh). Sourced, before anything else runs:
#
#   . "$(dirname "$0")/testlib.sh"
#   TEST=NAME                    the name in SKIP / FAIL lines (set before sourcing)
#   private_ns VAR "$@"          re-exec this script in a private IPC and mount namespace
#                                (unshare -i -m) with VAR=1; exit 77 (a skip) where that
#                                is not allowed; returns in the re-exec'd script
#   scratch MODE DIR...          tmp = a fresh /tmp/$TEST.XXXXXX (chmod MODE; - leaves
#                                it 0700) holding the directories DIR...; with mq among
#                                them, an mqueue file system of this test's own mounted
#                                there, with shm a tmpfs (both need private_ns); pids
#                                empty; on EXIT testlib_cleanup (kill -9 $pids, reap
#                                them, unmount those, remove $tmp, and
#                                stage_cleanup where tests/common/stage.sh was sourced),
#                                on INT and TERM exit 1
#   fail MSG                     FAIL line, the files $FAIL_FILES (default "out err") of
#                                $tmp shown, exit 1
#   expect CODE CMD...           run CMD (stdout $tmp/out, stderr $tmp/err), want exit CODE
#   one_line CAUSE               stderr is one line naming CAUSE (lines matching
#                                $ONE_LINE_SKIP, a grep pattern the caller sets, are
#                                not counted)
#   json PYTHON-EXPR             EXPR true of d, the JSON in $tmp/out (obj, names: its
#                                "objects" / "names" by name; with JSON_OPTIONAL=1 either
#                                may be missing, as in `ferry stat --json`)
#   bg TAG CMD...                CMD in the background (output $tmp/TAG.out, .err); pid_TAG
#   wait_out TAG WORD WHY        wait (at most 5 s) until $tmp/TAG.out has WORD; else
#                                show $tmp/TAG.err and fail WHY
#   start TAG ARGS...            bg TAG "$HELPER" ARGS, then wait_out TAG ready
#   start_ferryd READY [PAUSE]   "$FERRYD" --foreground on $FERRY_BROKER, policy file
#                                $tmp/none.conf, stderr $tmp/ferryd.err; its pid in
#                                $ferryd and $pids; then wait until the command READY
#                                succeeds (500 tries PAUSE s apart, default 0.01), else
#                                fail "ferryd never came up"
#   stop_ferryd                  SIGTERM to $ferryd, want exit 0; pids emptied (the
#                                caller has reaped the others)
#
# Rules: POSIX sh (the scripts run under sh); every function fails the test (exit 1)
# rather than return an error; $tmp, $pids and the scripts' own variables are the
# callers'.

FAIL_FILES="out err"
JSON_OPTIONAL=0
testlib_mounts=""

private_ns() {
    testlib_var=$1
    shift
    eval "testlib_inner=\${$testlib_var:-}"
    [ "$testlib_inner" = 1 ] && return 0
    if ! unshare -i -m true 2>/dev/null; then
        echo "$TEST: SKIP: no private IPC/mount namespace (unshare -i -m) here" >&2
        exit 77
    fi
    exec env "$testlib_var=1" unshare -i -m sh "$0" "$@"
}

scratch() {
    tmp=$(mktemp -d "/tmp/$TEST.XXXXXX") || exit 1
    [ "$1" = - ] || chmod "$1" "$tmp"
    shift
    for testlib_d in "$@"; do mkdir "$tmp/$testlib_d"; done
    case " $* " in
    *" mq "*)
        mount -t mqueue none "$tmp/mq" || { echo "$TEST: cannot mount mqueue" >&2; exit 1; }
        testlib_mounts="$tmp/mq"
        ;;
    esac
    case " $* " in
    *" shm "*)
        mount -t tmpfs -o mode=0755 none "$tmp/shm" || { echo "$TEST: cannot mount tmpfs" >&2; exit 1; }
        testlib_mounts="$testlib_mounts $tmp/shm"
        ;;
    esac
    pids=""
    trap testlib_cleanup EXIT
    trap 'exit 1' INT TERM
}

testlib_cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    for testlib_m in $testlib_mounts; do umount "$testlib_m" 2>/dev/null; done
    rm -rf "$tmp"
    if command -v stage_cleanup >/dev/null 2>&1; then stage_cleanup; fi
}

fail() {
    echo "$TEST: FAIL: $*" >&2
    for f in $FAIL_FILES; do
        [ -f "$tmp/$f" ] && sed "s/^/  $f: /" "$tmp/$f" >&2
    done
    exit 1
}

expect() {
    want=$1
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    [ "$got" -eq "$want" ] || fail "'$*' exited $got, want $want"
}

one_line() {
    [ "$(grep -vc "$ONE_LINE_SKIP" "$tmp/err")" -eq 1 ] || fail "want one line on stderr"
    grep -q "$1" "$tmp/err" || fail "stderr does not name '$1'"
}

json() {
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
if sys.argv[3] == "1":
    obj = {o["object"]: o for o in d.get("objects", [])}
    names = {n["name"]: n for n in d.get("names", [])}
else:
    obj = {o["object"]: o for o in d["objects"]}
    names = {n["name"]: n for n in d["names"]}
sys.exit(0 if eval(sys.argv[2]) else 1)' "$tmp/out" "$1" "$JSON_OPTIONAL" ||
        fail "JSON check failed: $1"
}

bg() {
    tag=$1
    shift
    "$@" >"$tmp/$tag.out" 2>"$tmp/$tag.err" &
    eval "pid_$tag=$!"
    pids="$pids $!"
}

wait_out() {
    i=0
    until grep -q "$2" "$tmp/$1.out" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 500 ] && { cat "$tmp/$1.err" >&2; fail "$3"; }
        sleep 0.01
    done
}

start() {
    tag=$1
    shift
    bg "$tag" "$HELPER" "$@"
    wait_out "$tag" ready "helper $* never got ready"
}

start_ferryd() {
    "$FERRYD" --foreground --socket "$FERRY_BROKER" --policy "$tmp/none.conf" 2>"$tmp/ferryd.err" &
    ferryd=$!
    pids="$pids $ferryd"
    i=0
    until "$1"; do
        i=$((i + 1))
        [ $i -gt 500 ] && fail "ferryd never came up"
        sleep "${2:-0.01}"
    done
}

stop_ferryd() {
    kill -TERM $ferryd
    wait $ferryd
    rc=$?
    [ $rc -eq 0 ] || fail "ferryd exited $rc on SIGTERM"
    pids=""
}
