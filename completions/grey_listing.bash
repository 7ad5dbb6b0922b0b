# bash completion for grey_listing, generated from grey_listing's option definitions (UPDATE_GENERATED=1 cargo test --locked --test integration generated)
_grey_listing() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    COMPREPLY=()
    case "$prev" in
        -status|--status)
            COMPREPLY=($(compgen -W "on off" -- "$cur"))
            return 0
            ;;
        -personal-conf|--personal-conf|-penalty-status|--penalty-status|-sender-normalize|--sender-normalize|-group-by-host-domain|--group-by-host-domain)
            COMPREPLY=($(compgen -W "true false" -- "$cur"))
            return 0
            ;;
        -greylist-clients|--greylist-clients)
            COMPREPLY=($(compgen -W "all suspicious" -- "$cur"))
            return 0
            ;;
        -migrate-store|--migrate-store|-import-plesk|--import-plesk|-import|--import|-backup|--backup|-html|--html|-ignore-file|--ignore-file|-db|--db)
            COMPREPLY=($(compgen -f -- "$cur"))
            return 0
            ;;
        -update-domain|--update-domain|-ud|--ud|-update-mailname|--update-mailname|-um|--um|-info-domain|--info-domain|-id|--id|-info-mailname|--info-mailname|-im|--im|-explain|--explain|-grey-interval|--grey-interval|-expire-interval|--expire-interval|-penalty-interval|--penalty-interval|-blacklist|--blacklist|-whitelist|--whitelist|-domains-whitelist|--domains-whitelist|-domains-blacklist|--domains-blacklist|-ipv4-prefix|--ipv4-prefix|-ipv6-prefix|--ipv6-prefix|-awl-count|--awl-count|-log-retention|--log-retention|-dnswl-zones|--dnswl-zones|-dnsbl-zones|--dnsbl-zones|-since|--since|-top|--top|-threshold|--threshold|-w|--w|-c|--c)
            :
            return 0
            ;;
    esac
    COMPREPLY=($(compgen -W "-update-server -u -update-domain -ud -update-mailname -um -info-server -i -info-domain -id -info-mailname -im -migrate-store -help -h -version -V -explain -report -check -check-dns -purge -stats -import-plesk -export -import -backup -status -personal-conf -grey-interval -expire-interval -penalty-interval -penalty-status -blacklist -whitelist -domains-whitelist -domains-blacklist -ipv4-prefix -ipv6-prefix -awl-count -sender-normalize -group-by-host-domain -log-retention -greylist-clients -dnswl-zones -dnsbl-zones -since -top -threshold -html -prometheus -w -c -ignore-file -db -json -extended" -- "$cur"))
}
complete -F _grey_listing grey_listing
