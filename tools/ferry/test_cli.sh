#!/bin/sh
# test_cli.sh — smoke test of the `ferry` tool (run by CTest as ferry_cli).
#   usage: test_cli.sh PATH/TO/ferry
# Checks the exit codes of the dispatcher (help 0, --version 0, unknown command 2 with the
# usage on stderr, bad bench options 2), then runs a tiny benchmark,
#   ferry bench --csv --smoke --only spin-baseline,ferry-shm
# which must exit 0 and print exactly the CSV header, then at least one well-formed row
# for each selected mechanism and none for the others; and the same run as a table.
# Then --repeat: bad values exit 2, and `--repeat 2 --smoke` still prints exactly one row
# per mechanism/pattern/size (the medians), in CSV and in the table (with its spread).
set -u
FERRY=$1
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
expect 0 "$FERRY" bench --help
expect 2 "$FERRY" bench --no-such-option
expect 2 "$FERRY" bench --only no-such-mechanism
expect 2 "$FERRY" bench --repeat 0
expect 2 "$FERRY" bench --repeat x
expect 2 "$FERRY" bench --repeat

# ---- a tiny benchmark, CSV
header='mechanism,pattern,size,rtt_p50_ns,rtt_p99_ns,rtt_p999_ns,msgs_per_s,bytes_per_s'
expect 0 "$FERRY" bench --csv --smoke --only spin-baseline,ferry-shm
[ "$(head -n 1 "$tmp/out")" = "$header" ] || fail "CSV header is '$(head -n 1 "$tmp/out")'"
for m in spin-baseline ferry-shm; do
    n=$(awk -F, -v m="$m" 'NR > 1 && $1 == m' "$tmp/out" | wc -l)
    [ "$n" -ge 1 ] || fail "no CSV row for $m"
done
# Every row: 8 fields, a selected mechanism, a known pattern; pingpong rows carry
# p50 <= p99 <= p99.9 and msgs_per_s; stream rows carry msgs_per_s and bytes_per_s.
awk -F, '
    function num(x) { return x ~ /^[0-9]+$/ }
    NR == 1 { next }
    NF != 8 { print "wrong field count: " $0; bad = 1; next }
    $1 != "spin-baseline" && $1 != "ferry-shm" { print "unselected mechanism: " $0; bad = 1 }
    !num($3) { print "bad size: " $0; bad = 1 }
    $2 == "pingpong" {
        if (!num($4) || !num($5) || !num($6) || !num($7) || $8 != "" ||
            $4 + 0 > $5 + 0 || $5 + 0 > $6 + 0 || $4 + 0 == 0 || $7 + 0 == 0)
            { print "bad pingpong row: " $0; bad = 1 }
        next
    }
    $2 == "stream" {
        if ($4 != "" || $5 != "" || $6 != "" || !num($7) || !num($8) || $8 + 0 == 0)
            { print "bad stream row: " $0; bad = 1 }
        next
    }
    { print "unknown pattern: " $0; bad = 1 }
    END { exit bad }
' "$tmp/out" >&2 || fail "malformed CSV rows"

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

echo "test_cli: ok"
