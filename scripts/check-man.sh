#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-man.sh — the man pages (man/*.scd) are complete, accurate to the header and
# render cleanly. Builds every page with scdoc into a temporary directory, makes the
# section-3 links with man/links.sh (as the build does), then checks:
#  1. every public function of include/ferry/ferry.h (each declaration marked FERRY_API,
#     and each static inline function) has a page or a link (man3/FUNC.3), and a section-3 page's SYNOPSIS shows each
#     function it lists in NAME with the prototype ferry.h declares (whitespace aside),
#     and each struct it shows with ferry.h's fields, in order;
#  2. every page renders with `man --warnings=all -l` (groff -wall) without a warning, and
#     no rendered line is wider than MANWIDTH=80, and lexgrog (mandb) reads its NAME
#     section; every link resolves to a page;
#  3. every page names only what exists: each ferry_* identifier is a public function or
#     type of ferry.h, or a page; each FERRY_* a macro of ferry.h, an environment
#     variable or option the sources read, or one the tools set for a child; each NAME(N) reference to a ferry page points
#     to a page or link that is built (ferry(1) excepted while man/ferry.1.scd is absent);
#     each error code -EXXX one that ferry_strerror names (src/core/error.c).
# Skips (exit 0, with a message) when scdoc or man is not installed (scripts/deps.sh
# installs both). Exits 1 listing each problem.
set -uo pipefail
cd "$(dirname "$0")/.."
for tool in scdoc man groff; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "check-man: skipped: $tool is not installed (Debian: scdoc, man-db, groff-base)"
        exit 0
    fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# problem: report one (also from the subshells of pipelines: the mark is a file).
problem() { echo "check-man: $*"; echo 1 >"$tmp/failed"; }

# Build every page (as man/CMakeLists.txt does: no hyphenation after .TH) and the links.
shopt -s nullglob
scds=(man/*.scd)
man3=(man/*.3.scd)
for scd in "${scds[@]}"; do
    page=$(basename "$scd" .scd)
    sec=${page##*.}
    mkdir -p "$tmp/man$sec"
    if ! sed 's/@PROJECT_VERSION@/check/g' "$scd" | scdoc 2>"$tmp/err" |
        sed '/^\.TH /a .nh' >"$tmp/man$sec/$page"; then
        problem "$scd: scdoc: $(cat "$tmp/err")"
    fi
done
if ! sh man/links.sh "$tmp" "${man3[@]}"; then
    echo "check-man: man/links.sh failed"
    exit 1
fi

# The public API: "NAME<TAB>normalized prototype" for each FERRY_API declaration, and for
# each static inline function of the header (public too: the prototype without "static
# inline" and the body).
perl -0777 -ne '
    s{/\*.*?\*/}{}gs; s{//[^\n]*}{}g;           # comments
    s{^\s*#.*?(?<!\\)\n}{}gms;                  # preprocessor lines
    while (/FERRY_API\s+([^;{]*?;)|\bstatic\s+inline\s+([^;{]*?\))\s*\{/gs) {
        my $d = defined $1 ? $1 : "$2;";
        $d =~ s/\s+/ /g; $d =~ s/\( /(/g; $d =~ s/ \)/)/g; $d =~ s/ ;/;/;
        my ($n) = $d =~ /(ferry_\w+)\s*\(/ or next;
        print "$n\t$d\n";
    }' include/ferry/ferry.h >"$tmp/api"
# The public structs: "NAME<TAB>field field ..." (names in order) for each typedef struct,
# from ferry.h (structs) and from the pages' literal blocks (shown).
fields='
    sub fields { my $b = shift; $b =~ s{/\*.*?\*/}{}gs; $b =~ s/\[[^\]]*\]//g; my @f;
        for my $d (split /;/, $b) { $d =~ s/^\s+|\s+$//g; next if $d eq "";
            my @p = split /,/, $d; my ($first) = $p[0] =~ /(\w+)\s*$/; push @f, $first;
            for (@p[1..$#p]) { my ($n) = /(\w+)\s*$/; push @f, $n } }
        return join " ", @f }'
perl -0777 -ne "$fields"'
    while (/typedef\s+struct\s+(ferry_\w+)\s*\{(.*?)\}\s*\1\s*;/gs) { print "$1\t", fields($2), "\n" }
    ' include/ferry/ferry.h >"$tmp/structs"
[ -s "$tmp/api" ] || problem "no FERRY_API function found in include/ferry/ferry.h"
cut -f1 "$tmp/api" | sort -u >"$tmp/funcs"
# Public types (typedef names and struct tags), and macros.
perl -ne 'print "$1\n" while /\b(ferry_\w+)\s*;/g; print "$1\n" while /struct\s+(ferry_\w+)/g;
    print "$1\n" while /typedef\s+\S+\s*\(\*\s*(ferry_\w+)\)/g' include/ferry/ferry.h |
    sort -u >"$tmp/types"
grep -oE '^#define (FERRY_[A-Z0-9_]+)' include/ferry/ferry.h | cut -d' ' -f2 | sort -u >"$tmp/macros"
# Environment variables and build options the sources and build files name: read
# ("NAME": getenv, setenv) or set for a child ("NAME=...", as `ferry serve --exec`
# builds its command's environment).
{
    grep -rhoE '"FERRY_[A-Z0-9_]+("|=)' src tools bench 2>/dev/null | tr -d '"='
    git ls-files '*CMakeLists.txt' '*.cmake' | xargs grep -hoE '\bFERRY_[A-Z0-9_]+' 2>/dev/null
} | sort -u >"$tmp/envs"

# 1. Every public function has a page or a link; synopses match ferry.h.
while read -r f; do
    [ -f "$tmp/man3/$f.3" ] || problem "$f (include/ferry/ferry.h) has no page: list it in the NAME section of a man/*.3.scd"
done <"$tmp/funcs"
for scd in "${man3[@]}"; do
    # The normalized prototypes in the SYNOPSIS block(s).
    perl -0777 -ne '
        my ($syn) = /^# SYNOPSIS\n(.*?)(?=^# )/ms or exit;
        $syn =~ s/^```.*$//mg; $syn =~ s/^\s*#.*$//mg; $syn =~ s/\\//g;
        $syn =~ s{/\*.*?\*/}{}gs;
        for my $d (split /;/, $syn) {
            $d =~ s/\s+/ /g; $d =~ s/^ //; $d =~ s/\( /(/g; $d =~ s/ \)/)/g;
            next unless $d =~ /(ferry_\w+)\s*\(/;
            print "$1\t$d;\n";
        }' "$scd" >"$tmp/syn"
    awk '/^# NAME/{on=1;next} on&&/^#/{exit} on{t=t" "$0; if(index($0," - "))exit}
         END{sub(/ - .*/,"",t); print t}' "$scd" | tr ',' '\n' | tr -d ' \t\\' | grep -v '^$' |
        while read -r f; do
            [ "$f" = "$(basename "$scd" .3.scd)" ] && continue # the page's own name (ferry_sem)
            want=$(awk -F'\t' -v f="$f" '$1 == f { print $2 }' "$tmp/api")
            if [ -z "$want" ]; then
                problem "$scd: NAME lists $f, which is no FERRY_API function of ferry.h"
                continue
            fi
            got=$(awk -F'\t' -v f="$f" '$1 == f { print $2 }' "$tmp/syn")
            if [ -z "$got" ]; then
                problem "$scd: SYNOPSIS lacks $f ($want)"
            elif [ "$got" != "$want" ]; then
                problem "$scd: SYNOPSIS of $f differs from ferry.h:"$'\n'"    page:    $got"$'\n'"    ferry.h: $want"
            fi
        done
done

# Structs shown on a page have the fields ferry.h declares, in its order.
for scd in "${scds[@]}"; do
    perl -0777 -ne "$fields"'
        while (/typedef\s+struct\s+(ferry_\w+)\s*\{(.*?)\}\s*\1\s*;/gs) { print "$1\t", fields($2), "\n" }
        ' "$scd" | while IFS=$'\t' read -r name got; do
        want=$(awk -F'\t' -v n="$name" '$1 == n { print $2 }' "$tmp/structs")
        if [ -z "$want" ]; then
            problem "$scd: shows struct $name, which ferry.h does not declare"
        elif [ "$got" != "$want" ]; then
            problem "$scd: struct $name differs from ferry.h:"$'\n'"    page:    $got"$'\n'"    ferry.h: $want"
        fi
    done
done

# 2. Every page renders without a warning, at most 80 columns wide; links resolve.
(
    cd "$tmp"
    for f in man*/*; do
        # A link (".so man3/PAGE.3") renders its page, which is checked itself: it need
        # only resolve, as man resolves it (relative to the top of the manual), to a page.
        if head -c 4 "$f" | grep -q '^\.so '; then
            target=$(sed -n '1s/^\.so //p' "$f")
            if [ "$(wc -l <"$f")" -ne 1 ] || [ ! -f "$target" ] || head -c 4 "$target" | grep -q '^\.so '; then
                echo "check-man: $f: the link does not resolve to a page: $(head -1 "$f")"
                echo 1 >failed
            fi
            continue
        fi
        if ! LC_ALL=C.UTF-8 MANWIDTH=80 MAN_KEEP_FORMATTING= man --warnings=all -E UTF-8 -l "$f" \
            >"render.out" 2>"render.err"; then
            echo "check-man: $f: man -l failed: $(head -3 render.err)"
            echo 1 >failed
        elif [ -s render.err ]; then
            echo "check-man: $f: warnings:"
            sed 's/^/    /' render.err
            echo 1 >failed
        fi
        [ -s render.out ] || { echo "check-man: $f: renders empty"; echo 1 >failed; }
        # mandb's parser reads the NAME section (whatis, apropos)
        if command -v lexgrog >/dev/null 2>&1 && ! lexgrog "$f" >/dev/null 2>&1; then
            echo "check-man: $f: lexgrog cannot read its NAME section (whatis, apropos)"
            echo 1 >failed
        fi
        wide=$(perl -CSD -ne 'chomp; print "    line $.: $_\n" if length > 80' render.out | head -3)
        if [ -n "$wide" ]; then
            echo "check-man: $f: rendered wider than 80 columns (a literal line of man/*.scd may be at most 69):"
            echo "$wide"
            echo 1 >failed
        fi
    done
)

# 3. Names and references exist.
pages=$(for d in "$tmp"/man*/; do ls "$d"; done | sed 's/\.[0-9]$//' | sort -u)
for scd in "${scds[@]}"; do
    # ferry_* identifiers (not a reference NAME(N): those are checked below).
    grep -oE '\bferry_[a-z0-9_]*[a-z0-9]\b(\([0-9]\))?' "$scd" | grep -v '([0-9])$' | sort -u |
        while read -r id; do
            grep -qxF "$id" "$tmp/funcs" || grep -qxF "$id" "$tmp/types" ||
                grep -qxF "$id" <<<"$pages" || problem "$scd: names $id, which ferry.h does not declare"
        done
    grep -oE '\bFERRY_[A-Z0-9_]*[A-Z0-9]\b' "$scd" | sort -u | while read -r id; do
        grep -qxF "$id" "$tmp/macros" || grep -qxF "$id" "$tmp/envs" ||
            problem "$scd: names $id, neither a macro of ferry.h nor a variable the sources read"
    done
    # every error code a page names is one ferry_strerror names (src/core/error.c)
    grep -oE '(^|[^A-Za-z0-9_])-E[A-Z0-9]+\b' "$scd" | grep -oE 'E[A-Z0-9]+' | sort -u | while read -r e; do
        grep -qE "^\s*\[$e\] = " src/core/error.c ||
            problem "$scd: names -$e, which ferry_strerror (src/core/error.c) does not know"
    done
    grep -oE '\bferry[a-z0-9_]*\*?\([0-9]\)' "$scd" | tr -d '*' | sort -u | while read -r ref; do
        name=${ref%(*}
        sec=${ref#*(}
        sec=${sec%)}
        [ -f "$tmp/man$sec/$name.$sec" ] && continue
        if [ "$ref" = "ferry(1)" ] && [ ! -f man/ferry.1.scd ]; then continue; fi
        problem "$scd: refers to $ref, which is not built"
    done
done

if [ -f "$tmp/failed" ]; then exit 1; fi
links=$(grep -l '^\.so ' "$tmp"/man*/* | wc -l)
pages=$(($(ls "$tmp"/man*/* | wc -l) - links))
echo "check-man: $(wc -l <"$tmp/funcs") public functions documented; $pages pages render cleanly, $links links resolve"
