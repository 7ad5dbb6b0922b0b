complete -c grey_listing -l update-domain -l ud -d 'Update the grey listing configuration of a domain' -r
complete -c grey_listing -l update-mailname -l um -d 'Update the grey listing configuration of a mail user' -r
complete -c grey_listing -l info-domain -l id -d 'Show the settings of a domain' -r
complete -c grey_listing -l info-mailname -l im -d 'Show the settings of a mail user' -r
complete -c grey_listing -l migrate-store -d 'Copy the configuration and the live triplets from database FROM to database TO, in one transaction on TO (extension; FROM and TO are SQLite paths or postgres:// URLs)' -r
complete -c grey_listing -l explain -d 'Walk through the decision for one message, read-only (extension)' -r
complete -c grey_listing -l import-plesk -d 'Apply the output of Plesk\'s `grey_listing --info-server` (a file, or - for stdin; extension)' -r
complete -c grey_listing -l import -d 'Replace the whole configuration with an --export file (or - for stdin; extension)' -r
complete -c grey_listing -l backup -d 'Write a consistent copy of the SQLite database to FILE, even while it is in use (extension)' -r
complete -c grey_listing -l status -d 'Enable or disable grey listing (--update-server, --update-domain)' -r
complete -c grey_listing -l personal-conf -d 'Allow or prohibit personal grey listing configuration (--update-server)' -r
complete -c grey_listing -l grey-interval -d 'Grey interval in minutes (--update-server)' -r
complete -c grey_listing -l expire-interval -d 'Expire interval in minutes (--update-server)' -r
complete -c grey_listing -l penalty-interval -d 'Penalty interval in minutes (--update-server)' -r
complete -c grey_listing -l penalty-status -d 'Enable or disable penalties (--update-server)' -r
complete -c grey_listing -l blacklist -d 'Edit the e-mail black list (--update-server, --update-mailname)' -r
complete -c grey_listing -l whitelist -d 'Edit the e-mail white list (--update-server, --update-mailname)' -r
complete -c grey_listing -l domains-whitelist -d 'Edit the white domains patterns list (--update-server)' -r
complete -c grey_listing -l domains-blacklist -d 'Edit the black domains patterns list (--update-server)' -r
complete -c grey_listing -l ipv4-prefix -d 'Prefix length of the IPv4 client network, 0-32 (--update-server; extension)' -r
complete -c grey_listing -l ipv6-prefix -d 'Prefix length of the IPv6 client network, 0-128 (--update-server; extension)' -r
complete -c grey_listing -l awl-count -d 'Passed triplets after which a client network skips greylisting, 0 = off (--update-server; extension)' -r
complete -c grey_listing -l sender-normalize -d 'Fold VERP, BATV and +extension sender variants into one (--update-server; extension)' -r
complete -c grey_listing -l group-by-host-domain -d 'Key verified server host names by their registrable domain (--update-server; extension)' -r
complete -c grey_listing -l log-retention -d 'How long decision-log rows are kept, e.g. 30d; 0d = no decision log (--update-server; extension)' -r
complete -c grey_listing -l since -d 'Period to look back, e.g. 7d or 24h (--report, --check; extension)' -r
complete -c grey_listing -l top -d 'Rows shown by --report (extension)' -r
complete -c grey_listing -l threshold -d 'Deferrals from which --report suggests a white pattern (extension)' -r
complete -c grey_listing -l w -d 'Deferrals of one unlisted organisation that make --check warn (extension)' -r
complete -c grey_listing -l c -d 'Deferrals of one unlisted organisation that make --check critical (extension)' -r
complete -c grey_listing -l ignore-file -d 'File of sender organisations --check ignores, one domain pattern a line (extension)' -r
complete -c grey_listing -l db -d 'Database: an SQLite file path or a postgres:// URL (default: $GREY_LISTING_DB, else the `db =` line of /etc/grey_listing.conf or $GREY_LISTING_CONF, else /var/lib/grey_listing/greylist.db)' -r
complete -c grey_listing -l update-server -l u -d 'Update the server-wide settings'
complete -c grey_listing -l info-server -l i -d 'Show the server-wide settings'
complete -c grey_listing -l help -l h -d 'Display the help page'
complete -c grey_listing -l version -l V -d 'Print the program name and version (extension)'
complete -c grey_listing -l report -d 'Table of the sender organisations most often deferred (extension)'
complete -c grey_listing -l check -d 'Nagios/Icinga plugin: warn about often deferred, unlisted sender organisations (extension)'
complete -c grey_listing -l purge -d 'Remove expired triplets and old decision-log rows (extension)'
complete -c grey_listing -l stats -d 'Show counts of triplets and recent decisions (extension)'
complete -c grey_listing -l export -d 'Print the whole configuration (settings, lists, domains, mailboxes) as JSON (extension)'
complete -c grey_listing -l json -d 'Print information as a JSON object'
complete -c grey_listing -l extended -d 'With --info-server: also show the extension settings'
