#!/bin/sh
# SPDX-License-Identifier: MIT
# test_completion.sh — the bash completion (ferry.bash) in a real bash, driven through
# COMP_WORDS / COMP_CWORD and the _ferry function (run by CTest as ferry_completion).
#   usage: test_completion.sh PATH/TO/ferry PATH/TO/ferryd PATH/TO/ferry.bash
# Checks: commands by prefix; a command's options; --format values; mailbox verbs;
# live names from a private ferryd (a `ferry serve` name and a published mailbox), by
# prefix, for call, stat and `mailbox send`; kill's second operand is a signal; nothing
# for serve's new name; rm's operands are names and files; the script is quiet (no output) when sourced, and `complete -p
# ferry` names _ferry.
set -u
FERRY=$1
FERRYD=$2
SCRIPT=$3
command -v bash >/dev/null || { echo "test_completion: SKIP: no bash" >&2; exit 77; }

tmp=$(mktemp -d /tmp/test_completion.XXXXXX) || exit 1
pids=""
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
    echo "test_completion: FAIL: $*" >&2
    exit 1
}

# comp WORD...: the completions of the last WORD (may be '') for `ferry WORD...`.
comp() {
    bash --norc --noprofile -c '
        . "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _ferry
        printf "%s\n" "${COMPREPLY[@]}" | LC_ALL=C sort | tr "\n" " "' comp "$SCRIPT" "$FERRY" "$@"
}

# want EXPECTED WORD...: the completions are exactly EXPECTED (space-separated, sorted).
want() {
    exp=$1
    shift
    got=$(comp "$@")
    [ "$got" = "$exp " ] || fail "ferry $*<TAB>: got '$got', want '$exp '"
}

[ -z "$(bash --norc --noprofile -c ". '$SCRIPT'" 2>&1)" ] || fail "sourcing prints something"
bash --norc --noprofile -c ". '$SCRIPT'; complete -p ferry" | grep -q -- '-F _ferry ferry$' ||
    fail "complete -p ferry"

want "sem send serve stat sub" s
want "call" ca
want "--fd --file --format" send x --f
want "hex" send x --format h
want "base64 hex json raw text" recv x --format ''
want "create recv send" mailbox ''
want "post" sem po
want "--json" watch --j
want "ls" help l

export FERRY_BROKER="$tmp/ferryd.sock"
export FERRY_NO_AUTOSPAWN=1
want "" call org.
"$FERRYD" --foreground --socket "$FERRY_BROKER" --policy "$tmp/none.conf" 2>"$tmp/ferryd.err" &
pids="$pids $!"
# ferryd answers before anything registers: with FERRY_NO_AUTOSPAWN a name's owner that
# finds nobody listening gives up at once (ECONNREFUSED, exit 4), it does not wait.
i=0
until "$FERRY" stat org.comp.none >/dev/null 2>"$tmp/stat.err"; [ $? -eq 4 ] && grep -q ENOENT "$tmp/stat.err"; do
    i=$((i + 1))
    [ $i -gt 500 ] && fail "ferryd never came up: $(cat "$tmp/ferryd.err" "$tmp/stat.err")"
    sleep 0.02
done
"$FERRY" serve org.comp.echo --echo 2>"$tmp/serve.err" &
pids="$pids $!"
"$FERRY" mailbox create org.comp.box 2>"$tmp/mb.err" &
pids="$pids $!"
i=0
until [ "$("$FERRY" ls --names 2>/dev/null | wc -l)" -eq 2 ]; do
    i=$((i + 1))
    [ $i -gt 500 ] && fail "the names never showed: $(cat "$tmp/serve.err" "$tmp/mb.err")"
    sleep 0.02
done
want "org.comp.box org.comp.echo" call org.
want "org.comp.echo" stat org.comp.e
want "org.comp.box" mailbox send org.comp.b
want "org.comp.box org.comp.echo" send --format hex ''
want "" serve org.comp.
want "TERM" kill org.comp.echo TE
want "" call org.comp.echo ''
# rm: names (a published region is removed by name) and files
: >"$tmp/org.comp.file"
want "$tmp/org.comp.file" rm "$tmp/org.comp.f"
want "org.comp.box org.comp.echo" rm org.comp.
echo "test_completion: ok"
exit 0
