complete -c greylisting-policyd -l db -d 'Database path or postgres:// URL (default: GREY_LISTING_DB, then /etc/grey_listing.conf, then /var/lib/grey_listing/greylist.db)' -r
complete -c greylisting-policyd -l idle-timeout -d 'Seconds without a byte from a client before its connection is closed' -r
complete -c greylisting-policyd -l request-timeout -d 'Seconds a request may take from its first byte to its blank line; a client still sending after that is disconnected and logged' -r
complete -c greylisting-policyd -l max-connections -d 'Most open connections; at the limit the connection idle longest is closed (and logged) to admit a new one' -r
complete -c greylisting-policyd -l synchronous -d 'Durability of each committed batch of decisions' -r -f -a "full\t'fsync every committed batch before answering (survives a power cut)'
normal\t'Survives a process crash; a power cut may forget the last batches'"
complete -c greylisting-policyd -l db-connections -d 'Database connections deciding requests in parallel, 1 to 64 (default: 1 for SQLite, 4 for PostgreSQL)' -r
complete -c greylisting-policyd -l listen -d 'Where to listen: IP:port (TCP; an IPv6 address in brackets) or unix:/path' -r
complete -c greylisting-policyd -l socket-mode -d 'Permissions of the unix socket, octal; never world-writable' -r
complete -c greylisting-policyd -l socket-group -d 'Group of the unix socket, e.g. postfix (needs root or membership of the group: in a systemd unit, SupplementaryGroups=GROUP)' -r
complete -c greylisting-policyd -l hostname -d 'Host name in the X-Greylist header: at most 253 letters, digits, \'.\' and \'-\' (default: this machine\'s name, or localhost if that is not a valid host name)' -r
complete -c greylisting-policyd -l metrics-listen -d 'Serve Prometheus metrics at http://HOST:PORT/metrics (off by default; use a loopback address such as 127.0.0.1:9123)' -r
complete -c greylisting-policyd -l allow-test-time -d 'Honour postgrey\'s policy_test_time attribute (tests and simulations only)'
complete -c greylisting-policyd -s h -l help -d 'Print help (see more with \'--help\')'
complete -c greylisting-policyd -s V -l version -d 'Print version'
