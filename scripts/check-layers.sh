#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-layers.sh — the layers of src/ run one way (docs/architecture.md): a file in one
# area may include headers of its own area and of areas in lower layers only; never of a
# higher layer (upward) nor of another area of its own layer (sideways). "ferry/ferry.h"
# (include/, the public API) is for everyone. An area under src/ that is not in the table
# below fails too: a new area takes its place in the picture first.
# With a build directory as argument, it checks the calls as well: no object file of an
# area refers to a symbol defined in a higher area (or another area of its layer), and no
# files call each other in a circle (shm_tx.c -> shm.c -> shm_tx.c was one), read with nm
# from the objects of that build.
# Cheap (a grep; nm over ~45 objects): scripts/test.sh runs the includes first and the
# calls after its first build. Exits non-zero on a violation.
set -euo pipefail
cd "$(dirname "$0")/.."

# The layer of each area, lowest first (docs/architecture.md, "The layers").
layer() {
    case "$1" in
    core) echo 0 ;;
    shm | region) echo 1 ;; # region: beside shm (broker validates and opens regions)
    transport) echo 2 ;;
    chan) echo 3 ;;
    broker) echo 4 ;;
    direct | sync | mailbox | bcast | rpc) echo 5 ;;
    daemon) echo 6 ;;
    *) echo "" ;;
    esac
}

bad=0
for dir in src/*/; do
    area=$(basename "$dir")
    if [ -z "$(layer "$area")" ]; then
        echo "check-layers: src/$area has no layer (add it to scripts/check-layers.sh and docs/architecture.md)"
        bad=1
    fi
done
[ "$bad" -eq 0 ] || exit 1

# Every quoted include with a directory part: file, line, target area.
while IFS=: read -r file line inc; do
    area=${file#src/}
    area=${area%%/*}
    target=${inc%%/*}
    [ "$target" = ferry ] && continue # the public header
    [ "$target" = "$area" ] && continue
    lt=$(layer "$target")
    la=$(layer "$area")
    if [ -z "$lt" ]; then
        echo "$file:$line: includes \"$inc\": no such area"
        bad=1
    elif [ "$lt" -gt "$la" ]; then
        echo "$file:$line: includes \"$inc\": upward ($area is layer $la, $target layer $lt)"
        bad=1
    elif [ "$lt" -eq "$la" ]; then
        echo "$file:$line: includes \"$inc\": sideways ($area and $target are both layer $la)"
        bad=1
    fi
done < <(grep -rnoE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[^"]+/[^"]+"' src --include='*.c' --include='*.h' |
    sed -E 's/^([^:]+):([0-9]+):.*"([^"]+)"$/\1:\2:\3/')

if [ "$bad" -ne 0 ]; then
    echo "check-layers: includes go against the layers (docs/architecture.md)"
    exit 1
fi

# The calls: nm over the objects of a build (those whose source still exists).
if [ $# -ge 1 ]; then
    defs=$(mktemp)
    uses=$(mktemp)
    trap 'rm -f "$defs" "$uses"' EXIT
    while read -r obj; do
        srcf=src/${obj#*/src/}
        srcf=${srcf%.o}
        [ -f "$srcf" ] || continue
        area=${srcf#src/}
        area=${area%%/*}
        nm --defined-only -g "$obj" | awk -v a="$area" -v f="$srcf" 'NF == 3 && $2 ~ /[TDBRC]/ { print $3, a, f }' >>"$defs"
        nm -u "$obj" | awk -v a="$area" -v f="$srcf" '{ print $NF, a, f }' >>"$uses"
    done < <(find "$1/CMakeFiles" -path '*/src/*' -name '*.o' | sort)
    while read -r sym area file target tfile; do
        [ "$area" = "$target" ] && continue
        lt=$(layer "$target")
        la=$(layer "$area")
        if [ "$lt" -gt "$la" ]; then
            echo "$file: calls $sym of $target: upward ($area is layer $la, $target layer $lt)"
            bad=1
        elif [ "$lt" -eq "$la" ]; then
            echo "$file: calls $sym of $target: sideways (both layer $la)"
            bad=1
        fi
    done < <(awk 'NR == FNR { def[$1] = $2 " " $3; next } ($1 in def) { print $1, $2, $3, def[$1] }' \
        <(sort -u "$defs") <(sort -u "$uses"))
    # No circle between files either (within an area too): file -> file it calls, in
    # tsort's input; tsort reports a loop when there is one.
    loops=$(awk 'NR == FNR { def[$1] = $3; next } ($1 in def) && def[$1] != $3 { print $3, def[$1] }' \
        <(sort -u "$defs") <(sort -u "$uses") | sort -u | tsort 2>&1 >/dev/null || true)
    if [ -n "$loops" ]; then
        echo "$loops"
        echo "check-layers: files call each other in a circle"
        bad=1
    fi
    if [ "$bad" -ne 0 ]; then
        echo "check-layers: calls go against the layers (docs/architecture.md)"
        exit 1
    fi
fi
echo "check-layers: ok"
