#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-format.sh — the C files listed in scripts/format-files.txt are formatted as
# .clang-format says (clang-format-14 --dry-run -Werror: another version formats
# differently). A listed file that is gone (moved or removed) is reported and skipped: list
# it under its new name; a tracked .c/.h file that is not listed fails the check. Exits 1 on the first badly formatted file set, with the diff
# clang-format reports.
#   scripts/check-format.sh            check the listed files
#   scripts/check-format.sh --update   add to the list every tracked .c/.h file that is
#                                      clean now and drop the gone ones (after a reformat)
set -euo pipefail
cd "$(dirname "$0")/.."
list=scripts/format-files.txt
cf=clang-format-14
if [ "${1:-}" = --update ]; then
    clean=() dirty=()
    while read -r f; do
        if "$cf" --dry-run -Werror "$f" >/dev/null 2>&1; then clean+=("$f"); else dirty+=("$f"); fi
    done < <(git ls-files '*.c' '*.h')
    {
        grep '^#' "$list" | sed '/^# Not clean yet/,$d'
        echo "# Not clean yet (${#dirty[@]}):"
        printf '%s\n' "${dirty[@]}" | sed 's/^/#   /'
        printf '%s\n' "${clean[@]}"
    } >"$list.new"
    mv "$list.new" "$list"
    echo "check-format: $(grep -vc '^#' "$list") files listed"
    exit 0
fi
files=()
while read -r f; do
    case $f in '#'* | '') continue ;; esac
    if [ -f "$f" ]; then
        files+=("$f")
    else
        echo "check-format: $list lists $f, which is gone (moved? list its new name)" >&2
    fi
done <"$list"
# Every tracked C file is listed (or named under "Not clean yet"): a new file cannot
# escape the check by being forgotten here.
unlisted=$(git ls-files '*.c' '*.h' | while read -r f; do
    grep -qxF "$f" "$list" || grep -qxF "#   $f" "$list" || echo "$f"
done)
if [ -n "$unlisted" ]; then
    echo "check-format: tracked C files missing from $list (add them; --update lists clean ones):" >&2
    echo "$unlisted" | sed 's/^/  /' >&2
    exit 1
fi
"$cf" --dry-run -Werror "${files[@]}"
echo "check-format: ${#files[@]} files clean"
