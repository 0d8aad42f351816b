#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# rename-api-0.2.sh — the public API renames of ferry 0.2 (one naming rule: docs/api.md),
# applied to every tracked text file of the tree (but docs/api.md, whose table lists them).
# Mechanical and repeatable: it only rewrites whole identifiers (word boundaries), and no
# new name is an old one, so running it again — e.g. after merging a branch that still
# uses the old names — changes only what still uses them. C files that were
# clang-format clean are formatted again (a longer name can move an alignment). No compatibility aliases are kept (0.x, the API is not frozen yet).
#
# Usage: ./scripts/rename-api-0.2.sh [path...]   (default: the whole tree, from git ls-files)
#        ./scripts/rename-api-0.2.sh --check     (list remaining old names; exit 1 if any)
set -euo pipefail
cd "$(dirname "$0")/.."

# old -> new. Rules (docs/api.md): `_fd` is the object's descriptor to pass to another
# process, `_poll_fd` a descriptor to poll for readiness; counters are read with
# ferry_X_stats into a ferry_X_counters; lifetimes are create/open/adopt/close, and
# ref/unref where a handle is reference-counted within a process; every handle type
# ferry_X is released by ferry_X_close (or ferry_X_unref).
PAIRS=(
    # descriptors to poll: _fd -> _poll_fd
    ferry_chan_fd ferry_chan_poll_fd
    ferry_listener_fd ferry_listener_poll_fd
    ferry_watch_fd ferry_watch_poll_fd
    ferry_inbox_fd ferry_inbox_poll_fd
    ferry_rpc_fd ferry_rpc_poll_fd
    ferry_rpc_server_fd ferry_rpc_server_poll_fd
    ferry_sub_fd ferry_sub_poll_fd
    ferry_signal_fd ferry_signal_poll_fd
    # counters: one verb (ferry_X_stats), one struct name (ferry_X_counters)
    ferry_stats ferry_chan_counters
    ferry_event_counts ferry_event_stats
    # lifetimes
    ferry_rpc_client_new ferry_rpc_client_create
    ferry_rpc_server_new ferry_rpc_server_create
    ferry_rpc_server_close ferry_rpc_server_unref
    ferry_serve_stop ferry_rpc_service_close
    ferry_unpublish ferry_pub_close
)
# The mailbox's counters struct was ferry_mailbox_stats, which is now the name of the
# function (was ferry_mailbox_stats_get). The type is renamed only where the name is not
# followed by '(' — so a re-run leaves calls of the new function alone — and before the
# function is renamed.
PERL='s/\bferry_mailbox_stats\b(?!\s*\()/ferry_mailbox_counters/g;'
PERL+='s/\bferry_mailbox_stats_get\b/ferry_mailbox_stats/g;'
OLD='ferry_mailbox_stats_get'
for ((i = 0; i < ${#PAIRS[@]}; i += 2)); do
    PERL+="s/\\b${PAIRS[i]}\\b/${PAIRS[i + 1]}/g;"
    OLD+="|${PAIRS[i]}"
done

self=scripts/rename-api-0.2.sh
table=docs/api.md # its table of renames names the old ones on purpose
if [ "${1:-}" = "--check" ]; then
    if git grep -nwE "$OLD" -- . ":!$self" ":!$table"; then exit 1; fi
    # the struct's old name, where it is not a call
    if git grep -nP '\bferry_mailbox_stats\b(?!\s*\()' -- . ":!$self" ":!$table"; then exit 1; fi
    exit 0
fi

# Text files that mention an old name (the mailbox struct's name included).
files=$({
    git grep -lIwE "$OLD" -- "${@:-.}" ":!$self" ":!$table" || true
    git grep -lIP '\bferry_mailbox_stats\b(?!\s*\()' -- "${@:-.}" ":!$self" ":!$table" || true
} | sort -u)
[ -n "$files" ] || { echo "rename-api-0.2: nothing to rename"; exit 0; }
# C files that were clang-format clean stay so (a longer name can move an alignment).
clean=()
if command -v clang-format >/dev/null; then
    for f in $files; do
        case $f in *.c | *.h) clang-format --dry-run -Werror "$f" 2>/dev/null && clean+=("$f") ;; esac
    done
fi
# shellcheck disable=SC2086
perl -pi -e "$PERL" $files
[ ${#clean[@]} -eq 0 ] || clang-format -i "${clean[@]}"
echo "rename-api-0.2: rewrote $(echo "$files" | wc -l) file(s)"
