_grey_listing() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="grey_listing"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        grey_listing)
            opts="--u --update-server --ud --update-domain --um --update-mailname --i --info-server --id --info-domain --im --info-mailname --migrate-store --h --help --V --version --explain --report --check --purge --stats --import-plesk --export --import --backup --status --personal-conf --grey-interval --expire-interval --penalty-interval --penalty-status --blacklist --whitelist --domains-whitelist --domains-blacklist --ipv4-prefix --ipv6-prefix --awl-count --sender-normalize --group-by-host-domain --log-retention --since --top --threshold --w --c --ignore-file --db --json --extended"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --update-domain)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ud)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --update-mailname)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --um)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --info-domain)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --id)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --info-mailname)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --im)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --migrate-store)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --explain)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --import-plesk)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --import)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --backup)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --status)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --personal-conf)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --grey-interval)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --expire-interval)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --penalty-interval)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --penalty-status)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --blacklist)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --whitelist)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --domains-whitelist)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --domains-blacklist)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ipv4-prefix)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ipv6-prefix)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --awl-count)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --sender-normalize)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --group-by-host-domain)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --log-retention)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --since)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --top)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --threshold)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --w)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --c)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ignore-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --db)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _grey_listing -o nosort -o bashdefault -o default grey_listing
else
    complete -F _grey_listing -o bashdefault -o default grey_listing
fi
