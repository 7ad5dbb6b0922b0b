complete -c greylisting-milter -l db -d 'Database path or postgres:// URL (default: GREY_LISTING_DB, then /etc/grey_listing.conf, then /var/lib/grey_listing/greylist.db)' -r
complete -c greylisting-milter -l trusted-networks -d 'Clients never greylisted: comma-separated addresses or address/prefix blocks (an empty value trusts nobody)' -r
complete -c greylisting-milter -l idle-timeout -d 'Seconds without a byte from the MTA before its connection is closed (never while a message body is transferred); libmilter\'s default, as an MTA\'s SMTP session may send the milter nothing for longer than its per-command timeout' -r
complete -c greylisting-milter -l request-timeout -d 'Seconds a packet may take to arrive completely, from its first byte' -r
complete -c greylisting-milter -l max-connections -d 'Most open connections; at the limit the connection idle longest outside a message is closed to admit a new one' -r
complete -c greylisting-milter -l synchronous -d 'Durability of each committed batch of decisions' -r -f -a "full\t'fsync every committed batch before answering (survives a power cut)'
normal\t'Survives a process crash; a power cut may forget the last batches'"
complete -c greylisting-milter -l db-connections -d 'Database connections deciding requests in parallel, 1 to 64 (default: 1 for SQLite, 4 for PostgreSQL)' -r
complete -c greylisting-milter -l listen -d 'Where to listen: IP:port (TCP; an IPv6 address in brackets) or unix:/path' -r
complete -c greylisting-milter -l socket-mode -d 'Mode of a unix socket (octal)' -r
complete -c greylisting-milter -l socket-group -d 'Group of a unix socket (name or number; default: the server\'s group)' -r
complete -c greylisting-milter -l hostname -d 'Host name in the X-Greylist header (default: this machine\'s name)' -r
complete -c greylisting-milter -l metrics-listen -d 'Serve Prometheus metrics at http://HOST:PORT/metrics (off by default; use a loopback address such as 127.0.0.1:9124)' -r
complete -c greylisting-milter -s h -l help -d 'Print help (see more with \'--help\')'
complete -c greylisting-milter -s V -l version -d 'Print version'
