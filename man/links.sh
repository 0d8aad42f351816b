#!/bin/sh
# SPDX-License-Identifier: MIT
# links.sh — the ferry_<func>(3) links: for every name in the NAME section of a section-3
# page (man/*.3.scd), other than the page's own, write OUTDIR/man3/NAME.3 holding
# ".so man3/PAGE.3", so that `man NAME` shows the page that documents it. Links left
# from an earlier run whose name no page lists any more are removed. A name listed by
# two pages is an error (exit 1). Used by man/CMakeLists.txt at build time and by
# scripts/check-man.sh; the NAME section is the one mapping, so a function documented on a
# page gets its link without a list kept anywhere else.
#   links.sh OUTDIR PAGE.3.scd...
set -eu
out=$1
shift
mkdir -p "$out/man3"
want=$(mktemp)
trap 'rm -f "$want"' EXIT
for scd in "$@"; do
    page=$(basename "$scd" .3.scd)
    # The NAME section: the lines after "# NAME" up to the " - " that ends the names.
    awk '
        /^# NAME/ { on = 1; next }
        on && /^#/ { exit }
        on { text = text " " $0; if (index($0, " - ")) exit }
        END { sub(/ - .*/, "", text); print text }
    ' "$scd" | tr ',' '\n' | tr -d ' \t\\' | grep -v '^$' |
        while read -r name; do printf '%s %s\n' "$name" "$page"; done
done | sort >"$want"
dups=$(cut -d' ' -f1 "$want" | uniq -d)
if [ -n "$dups" ]; then
    for d in $dups; do
        echo "links.sh: $d is listed by more than one page: $(grep "^$d " "$want" | cut -d' ' -f2 | tr '\n' ' ')" >&2
    done
    exit 1
fi
while read -r name page; do
    [ "$name" = "$page" ] && continue
    link="$out/man3/$name.3"
    line=".so man3/$page.3"
    # Rewrite only what changed, so that make sees unchanged links as up to date.
    if [ ! -f "$link" ] || [ "$(cat "$link")" != "$line" ]; then
        printf '%s\n' "$line" >"$link"
    fi
done <"$want"
# A link whose name no page lists any more (a .so file of ours that is not wanted).
for f in "$out"/man3/*.3; do
    [ -f "$f" ] || continue
    n=$(basename "$f" .3)
    head -c 4 "$f" | grep -q '^\.so ' || continue
    grep -q "^$n " "$want" || rm -f "$f"
done
