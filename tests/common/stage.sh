# SPDX-License-Identifier: MIT
# stage.sh — for test scripts that run a program of this build as another uid (setpriv):
# the checkout, and so the build tree, may sit where other users cannot enter (a clone in
# a `mktemp -d` directory, anything under /root), so such a program could neither be
# exec'd from there nor load libferry.so.0 from there. stage_programs copies the programs,
# and every library of theirs that lives outside the system's directories (ldd says
# which), into a fresh directory under /tmp that every uid may read.
#
#   . "$(dirname "$0")/../../tests/common/stage.sh"    (the path from the sourcing script)
#   stage_programs PROGRAM...    sets STAGE_DIR; the copies are $STAGE_DIR/NAME
#   stage_run UID PROGRAM ARGS... run $STAGE_DIR/PROGRAM as UID (and gid UID, no groups)
#                                 with the staged libraries, from /
#   stage_cleanup                 removes $STAGE_DIR (call it from the script's EXIT trap)
#
# Rules: POSIX sh; returns non-zero (and says why on stderr) when something cannot be
# staged; the directory is 0755 and its files 0755 (programs) / 0644 (libraries), owned
# by the caller (root), so another uid can read but not change them; the system's own
# libraries (/lib*, /usr/*) are loaded from where they are.

STAGE_DIR=""

stage_programs() {
    STAGE_DIR=$(mktemp -d /tmp/ferry-stage.XXXXXX) || return 1
    chmod 755 "$STAGE_DIR" || return 1
    for stage_p in "$@"; do
        stage_n=$(basename "$stage_p")
        if ! cp "$stage_p" "$STAGE_DIR/$stage_n" || ! chmod 755 "$STAGE_DIR/$stage_n"; then
            echo "stage.sh: cannot stage $stage_p" >&2
            return 1
        fi
        # "libferry.so.0 => /path/build/libferry.so.0 (0x...)": copy it under its soname.
        for stage_lib in $(ldd "$stage_p" 2>/dev/null |
            awk '$2 == "=>" && substr($3, 1, 1) == "/" { print $1 "=" $3 }'); do
            stage_so=${stage_lib%%=*}
            stage_path=${stage_lib#*=}
            case $stage_path in /lib/* | /lib32/* | /lib64/* | /usr/*) continue ;; esac
            if ! cp -L "$stage_path" "$STAGE_DIR/$stage_so" || ! chmod 644 "$STAGE_DIR/$stage_so"; then
                echo "stage.sh: cannot stage $stage_path (for $stage_p)" >&2
                return 1
            fi
        done
    done
    return 0
}

stage_run() {
    stage_uid=$1
    stage_n=$(basename "$2")
    shift 2
    (cd / && exec setpriv --reuid="$stage_uid" --regid="$stage_uid" --clear-groups \
        env LD_LIBRARY_PATH="$STAGE_DIR" "$STAGE_DIR/$stage_n" "$@")
}

stage_cleanup() {
    [ -n "$STAGE_DIR" ] && rm -rf "$STAGE_DIR"
    STAGE_DIR=""
}
