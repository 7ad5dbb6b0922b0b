# Shared by the end-to-end scripts (sourced, not run): messages, Debian packages, loopback ports,
# the freshly built binaries, and the private Postfix of DESIGN.md §9. A script sets E2E_NAME (used in
# its messages) and `cd`s to the repository root before sourcing this file.

say() { echo "e2e $E2E_NAME: $*"; }
fail() { echo "e2e $E2E_NAME: FAIL: $*" >&2; exit 1; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# require_root WHY: fails unless running as root.
require_root() { [ "$(id -u)" -eq 0 ] || fail "must run as root ($1)"; }

# ensure_packages COMMAND:PACKAGE...: installs (apt-get) the packages whose command is missing,
# and fails loudly when that is impossible — a test never skips for want of a tool.
ensure_packages() {
    local missing=() pair command
    for pair in "$@"; do
        command=${pair%%:*}
        command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || fail "missing ${missing[*]} and not root to install them"
    say "installing ${missing[*]}"
    # Postfix's package asks what kind of mail system this is: no configuration of the host's.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
        fail "apt-get install ${missing[*]} failed"
}

# ports_free PORT...: fails if anything listens on one of the ports on 127.0.0.1.
ports_free() {
    local port
    for port in "$@"; do
        port_in_use "$port" && fail "port $port on 127.0.0.1 is already in use"
    done
    return 0
}

# build_debug_binaries: builds the three binaries and sets BIN to their directory (honours
# CARGO_TARGET_DIR).
build_debug_binaries() {
    cargo build --locked --bins -q
    BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug"
}

# wait_policyd LOG PORT: waits (bounded) until the policy server logging to LOG listens on PORT.
wait_policyd() {
    for _ in $(seq 100); do grep -qs "listening on" "$1" && break; sleep 0.1; done
    grep -q "listening on 127.0.0.1:$2" "$1" || fail "policyd did not start"
}

# unprivileged_ids: sets RUN_UID and RUN_GID (nobody:nogroup, a daemon's user without any
# supplementary group unless given one) and POSTFIX_GID (the group a daemon's unix socket gets).
unprivileged_ids() {
    RUN_UID=$(id -u nobody)
    RUN_GID=$(getent group nogroup | cut -d: -f3)
    POSTFIX_GID=$(getent group postfix | cut -d: -f3)
    [ -n "$RUN_GID" ] && [ -n "$POSTFIX_GID" ] || fail "groups nogroup and postfix are needed"
}

# stop_cleanly PID SOCKET WHAT: sends SIGTERM to the daemon PID (a child of this shell), which
# must exit 0 and remove its unix socket SOCKET.
stop_cleanly() {
    kill -TERM "$1"
    local status=0
    wait "$1" || status=$?
    [ "$status" = 0 ] || fail "$3 exited $status on SIGTERM"
    [ ! -e "$2" ] || fail "$3 left its socket behind"
}

# postfix_config DIR SMTP_PORT HOSTNAME DOMAIN MAILBOX: the private Postfix of DESIGN.md §9 in DIR —
# master.cf with the smtp service on 127.0.0.1:SMTP_PORT and no chroot, and the main.cf lines
# every test shares (virtual mailbox MAILBOX@DOMAIN delivered to DIR/mail/MAILBOX/, XCLIENT
# allowed from 127.0.0.1, its own log file). The caller appends its restrictions to
# DIR/etc/main.cf, then calls postfix_start.
postfix_config() {
    local dir=$1 smtp_port=$2 hostname=$3 domain=$4 mailbox=$5
    mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/mail"
    chown postfix:postfix "$dir/data" "$dir/mail"
    sed -e "s/^smtp \( *\)inet .*/127.0.0.1:$smtp_port inet n - n - - smtpd/" \
        -e 's/^\([^#][^ ]* \+[^ ]\+ \+[^ ]\+ \+[^ ]\+ \+\)y /\1n /' \
        /etc/postfix/master.cf >"$dir/etc/master.cf"
    cat >"$dir/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
myhostname = $hostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.2/32
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = $domain
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = inline:{ $mailbox@$domain=$mailbox/ }
virtual_uid_maps = static:$(id -u postfix)
virtual_gid_maps = static:$(id -g postfix)
smtpd_authorized_xclient_hosts = 127.0.0.1
maillog_file = $dir/maillog
maillog_file_prefixes = /var, /dev/stdout, /tmp
smtputf8_enable = no
EOF
}

# postfix_start DIR SMTP_PORT: starts the private Postfix configured in DIR/etc and waits until
# it listens. Postfix prints fatal errors only to syslog or a terminal, hence `script`.
postfix_start() {
    local dir=$1 smtp_port=$2
    postfix -c "$dir/etc" set-permissions >/dev/null 2>&1 || true
    script -qc "postfix -c $dir/etc start" /dev/null >"$dir/start.log" 2>&1 || {
        cat "$dir/start.log"
        fail "postfix did not start"
    }
    for _ in $(seq 100); do port_in_use "$smtp_port" && break; sleep 0.1; done
    port_in_use "$smtp_port" || fail "postfix is not listening on 127.0.0.1:$smtp_port"
}

# The private Postfix's swaks helpers (they use $SMTP_PORT and $P, the mailbox u@local.example).
# send NAME ADDR LOGIN SENDER TAG: one SMTP transaction; prints swaks' transcript.
send() {
    local xclient="NAME=$1 ADDR=$2"
    [ -n "$3" ] && xclient="$xclient LOGIN=$3"
    swaks --server "127.0.0.1:$SMTP_PORT" --xclient "$xclient" --from "$4" --to u@local.example \
        --header "Subject: $5" --body "e2e $5" --timeout 30 2>&1 || true
}
# expect OUTPUT PATTERN WHAT: OUTPUT matches the extended regex PATTERN, else fail naming WHAT.
expect() { # expect OUTPUT PATTERN WHAT
    grep -qE -- "$2" <<<"$1" || { echo "$1"; fail "$3: expected /$2/"; }
    say "ok: $3"
}
delivered() { # delivered TAG: the file holding the message with that subject, waiting up to 60 s
    for _ in $(seq 600); do
        local f
        f=$(grep -l -- "Subject: $1\$" "$P"/mail/u/new/* 2>/dev/null | head -n1 || true)
        [ -n "$f" ] && { echo "$f"; return 0; }
        sleep 0.1
    done
    fail "message $1 was not delivered to $P/mail/u/new/"
}
