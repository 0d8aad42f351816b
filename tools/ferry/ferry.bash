# SPDX-License-Identifier: MIT
# bash completion for ferry(1): commands, each command's options and verbs, values of
# --format and signals, files after --file/--fd, rm's operands (files, and names: a
# published region's file is removed by name), and the live names ferryd lists
# (`ferry ls --names`, which never starts ferryd). Installed as
# ${datadir}/bash-completion/completions/ferry (loaded on demand by bash-completion).
# The names come from the same `ferry` that is being completed (COMP_WORDS[0]).

_ferry_names()
{
    local ferry=${COMP_WORDS[0]}
    "$ferry" ls --names 2>/dev/null
}

_ferry()
{
    local cur prev cmd verb i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="send recv call serve watch mailbox sub pub event sem stat kill ls rm bench help"

    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$commands --version --help" -- "$cur"))
        return 0
    fi
    cmd=${COMP_WORDS[1]}
    verb=${COMP_WORDS[2]:-}

    case $prev in
    --format)
        COMPREPLY=($(compgen -W "raw text hex json base64" -- "$cur"))
        return 0
        ;;
    --file | --fd)
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0
        ;;
    --path | --mqueue)
        COMPREPLY=($(compgen -d -- "$cur"))
        return 0
        ;;
    --timeout | --interval)
        COMPREPLY=($(compgen -W "1s 2.5s 100ms forever now" -- "$cur"))
        return 0
        ;;
    --mode)
        COMPREPLY=($(compgen -W "0600 0640 0644 0660 0666" -- "$cur"))
        return 0
        ;;
    --data | --type | --type-filter | --count | --exec | --threads | --capacity | \
        --max-msg | --value | --broker)
        return 0
        ;;
    esac

    local io="--format --timeout --count"
    local opts=""
    case $cmd in
    send) opts="$io --data --file --lines --type --interval --fd --listen --mode --unix" ;;
    recv) opts="$io --quiet --type-filter --listen --mode --unix --drop-oldest" ;;
    call) opts="$io --data --file --lines --interval --fd --unix" ;;
    serve) opts="--exec --echo --mode --threads --count --timeout" ;;
    watch) opts="--json --count --timeout" ;;
    sub) opts="$io --quiet --drop-oldest" ;;
    pub) opts="$io --data --file --lines --type --interval --capacity --max-msg --mode" ;;
    stat) opts="--json --timeout" ;;
    kill) opts="--timeout" ;;
    ls) opts="--json --names --path --mqueue --broker" ;;
    rm) opts="--stale --dry-run --path --mqueue" ;; # operands: files and names (below)
    help)
        [ "$COMP_CWORD" -eq 2 ] && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return 0
        ;;
    mailbox | event | sem)
        if [ "$COMP_CWORD" -eq 2 ]; then
            case $cmd in
            mailbox) COMPREPLY=($(compgen -W "send recv create" -- "$cur")) ;;
            event) COMPREPLY=($(compgen -W "post next create" -- "$cur")) ;;
            sem) COMPREPLY=($(compgen -W "post wait value create" -- "$cur")) ;;
            esac
            return 0
        fi
        case $cmd.$verb in
        mailbox.send) opts="$io --data --file --lines --type --interval" ;;
        mailbox.recv) opts="$io --quiet --type-filter" ;;
        mailbox.create) opts="--capacity --max-msg --mode --timeout" ;;
        event.post) opts="--coalesce --timeout" ;;
        event.next) opts="--count --json --timeout" ;;
        event.create) opts="--capacity --mode --timeout" ;;
        sem.create) opts="--value --mode --timeout" ;;
        sem.*) opts="--timeout" ;;
        esac
        ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
        return 0
    fi

    # The operands: a name (or URL) first; kill's second is a signal.
    local first=2 nops=0
    case $cmd in mailbox | event | sem) first=3 ;; esac
    for ((i = first; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        --format | --file | --fd | --path | --mqueue | --timeout | --interval | --mode | \
            --data | --type | --type-filter | --count | --exec | --threads | --capacity | \
            --max-msg | --value | --broker) ((i++)) ;;
        -*) ;;
        *) ((nops++)) ;;
        esac
    done
    case $cmd in
    ls | bench) return 0 ;;
    rm) # a path (a socket, FIFO or region file) or a published region's name
        COMPREPLY=($(compgen -W "$(_ferry_names)" -- "$cur") $(compgen -f -- "$cur"))
        return 0
        ;;
    esac
    if [ "$nops" -eq 0 ]; then
        case $cmd.$verb in
        serve.* | pub.* | *.create) return 0 ;; # a new name: nothing to offer
        esac
        COMPREPLY=($(compgen -W "$(_ferry_names)" -- "$cur"))
    elif [ "$cmd" = kill ] && [ "$nops" -eq 1 ]; then
        COMPREPLY=($(compgen -W "TERM INT HUP KILL USR1 USR2 QUIT STOP CONT" -- "$cur"))
    fi
    return 0
}
complete -F _ferry ferry
