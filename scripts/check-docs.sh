#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-docs.sh — every path the docs cite exists. Reads docs/*.md, README.md and the
# header block of every tracked source file (a C file's opening comment; a script's or
# CMake list's leading '#' lines) and checks each path under src/, tests/, docs/,
# include/, scripts/, tools/, examples/ or bench/ that they name: a file or directory, or
# a program built from NAME.c / run from NAME.sh (docs cite test programs by name), or a
# glob that matches something. Also every relative Markdown link between docs, and every
# test or fuzzer named (test_NAME, fuzz_NAME): a tracked file's base name or a CTest/CMake
# name.
# Citations known to be missing (being written on another branch, or in a file only the
# lead edits) are listed in scripts/check-docs-known.txt as "FILE: PATH"; they are
# reported but do not fail, and an entry that resolves is reported as stale.
# Cheap (a second or so); exits 1 listing each missing path with the file citing it.
set -euo pipefail
cd "$(dirname "$0")/.."
known=scripts/check-docs-known.txt
AREAS='src|tests|docs|include|scripts|tools|examples|bench'

# The header block of each file given, each line prefixed with "FILE: ".
headers() {
    awk '
    FNR == 1 { done = 0; c = 0 }
    done { next }
    FNR == 1 && /^#!/ { next }
    /^\/\/ SPDX/ && !c { next }
    {
        if (FILENAME ~ /\.(c|h)$/) {
            if (!c && $0 !~ /^\/\*/) { done = 1; next }
            c = 1; print FILENAME ": " $0
            if ($0 ~ /\*\//) done = 1
        } else {
            if ($0 !~ /^#/) { done = 1; next }
            print FILENAME ": " $0
        }
    }' "$@"
}

# "FILE: PATH" for each path cited (stdin: "FILE: text" lines).
cited() {
    perl -ne 'my ($f, $t) = /^(.*?): (.*)$/ or next;
        while ($t =~ m{(?:^|[^A-Za-z0-9_/.~-])((?:'"$AREAS"')/[A-Za-z0-9_./*+-]*)}g) {
            my $p = $1; $p =~ s/\.+$//;
            next if $p =~ /(?<![A-Za-z])[A-Z]{3,}(?![A-Za-z])/; # a placeholder: fuzz_NAME.c
            print "$f: $p\n";
        }'
}

# Markdown links to local files, as "FILE: PATH" relative to the repository.
links() {
    for f in docs/*.md README.md; do
        grep -oE '\]\([^)#[:space:]]+' "$f" | sed 's/^](//' | grep -vE '^[a-z]+:' |
            while read -r l; do printf '%s: %s\n' "$f" "$(dirname "$f")/$l"; done || true
    done
}

# "FILE: =NAME" for each test or fuzzer named (test_NAME, fuzz_NAME): docs cite them so.
programs() {
    perl -ne 'my ($f, $t) = /^(.*?): (.*)$/ or next;
        while ($t =~ m{(?:^|[^A-Za-z0-9_/.-])((?:test|fuzz)_[a-z0-9_]*[a-z0-9])\b}g) {
            print "$f: =$1\n";
        }'
}

# The names of programs and CTest tests: tracked files' base names and CMake names.
mapfile -t cmakes < <(git ls-files '*CMakeLists.txt')
names=$( {
    git ls-files | sed 's|.*/||; s|\.[A-Za-z0-9]*$||'
    grep -ohE '\b(test|fuzz)_[A-Za-z0-9_]+' "${cmakes[@]}"
    # tests/fuzz: every harness fuzz_NAME.c is also built as fuzz_NAME_replay
    git ls-files 'tests/fuzz/fuzz_*.c' | sed 's|.*/||; s|\.c$|_replay|'
    # foreach(t a b) + test_${t} / test_chan_${t}: the expanded names
    perl -ne 'if (/foreach\((\w+) ([^)]*)\)/) { @v = split " ", $2; $var = $1 }
        elsif ($var && /((?:test|fuzz)\w*?)\$\{$var\}/) { print "$1$_\n" for @v; $var = "" }' \
        "${cmakes[@]}"
} | sort -u)

exists() {
    case $1 in
    =*) grep -qxF "${1#=}" <<<"$names" && return 0 || return 1 ;;
    esac
    local p=$1
    [ -e "$p" ] || [ -e "$p.c" ] || [ -e "$p.sh" ] && return 0
    case $p in *'*'*) compgen -G "$p" >/dev/null && return 0 ;; esac
    return 1
}

text=$(mktemp)
trap 'rm -f "$text"' EXIT
mapfile -t srcs < <(git ls-files '*.c' '*.h' '*.sh' '*CMakeLists.txt' '*.py' '*.cmake')
missing=0
declare -A seen_known=()
while IFS= read -r entry; do
    p=${entry#*: }
    exists "$p" && continue
    if [ -f "$known" ] && grep -qxF "$entry" "$known"; then
        seen_known[$entry]=1
        echo "check-docs: known missing: $entry"
        continue
    fi
    echo "check-docs: $entry: no such path"
    missing=1
done < <({
    for d in docs/*.md README.md; do sed "s|^|$d: |" "$d"; done >"$text"
    headers "${srcs[@]}" >>"$text"
    cited <"$text"
    programs <"$text"
    links
} | sort -u)
if [ -f "$known" ]; then
    while IFS= read -r k; do
        [ -z "$k" ] || [ "${k:0:1}" = '#' ] && continue
        [ -n "${seen_known[$k]:-}" ] || echo "check-docs: stale entry in $known (resolved): $k"
    done <"$known"
fi
[ "$missing" -eq 0 ] || exit 1
echo "check-docs: every cited path exists"
