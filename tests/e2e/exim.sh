#!/usr/bin/env bash
# greylisting-policyd behind a real Exim 4: Debian's packages unpacked (not installed: they
# conflict with Postfix), a minimal configuration whose RCPT ACL is the ACL file of
# docs/integration/exim.md as written (only the port changed), host-checking sessions
# (`exim4 -bh`) in a private mount namespace whose resolver is a stub DNS server, so Exim looks
# up and verifies client host names as on a real server. Cases:
#   1. first contact: 451 4.7.1, the policy server saw the verified name and a sender with `=`;
#   2. the retry, a second session after the grey interval (0 minutes here): 250 Accepted, and
#      the message gets the X-Greylist header (PREPEND -> add_header);
#   3. a white host (verified name mx.yahoo.com, default white pattern *yahoo.com): accepted;
#   4. a forged reverse name (mx.google.com pointing elsewhere): not trusted, deferred;
#   5. a black host (verified name dsl-42.pool.example, default black pattern): 550 5.7.1;
#   6. an authenticated client ($authenticated_id set with -oMai): accepted;
#   7. the policy server stopped: accepted at once by the fallback;
#   8. a server that accepts but never answers: accepted by the fallback after the 5 s timeout.
# Needs root (Exim's system user, a mount namespace, a DNS stub on port 53). Downloads Exim's
# packages with apt-get download, installs libidn12 and python3 when missing; fails loudly when
# it cannot. Ports: E2E_EXIM_POLICY_PORT (12027), E2E_EXIM_SILENT_PORT (12028); DNS stub on
# E2E_EXIM_DNS_IP (127.0.53.54) port 53.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
POLICY_PORT=${E2E_EXIM_POLICY_PORT:-12027}
SILENT_PORT=${E2E_EXIM_SILENT_PORT:-12028}
DNS_IP=${E2E_EXIM_DNS_IP:-127.0.53.54}

E2E_NAME=exim
source tests/e2e/lib.sh
source tests/e2e/exim_lib.sh

require_root "Exim's system user, a mount namespace, a DNS stub on port 53"
export PATH="$PATH:/usr/sbin:/sbin"
ensure_packages python3:python3
ports_free "$POLICY_PORT" "$SILENT_PORT"

build_debug_binaries
T=$(mktemp -d /tmp/gl-e2e-exim.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    if [ $rc -ne 0 ]; then
        for log in "$T"/*.log; do [ -f "$log" ] && { echo "---- $log"; tail -n 30 "$log"; }; done
    fi
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT

say "fetching Debian's Exim"
exim_unpack "$T/exim"
say "$(grep -m1 "^Exim version" "$T/exim/version.log")"

# exim_config DIR PORT: a minimal Exim in DIR whose RCPT ACL is the guide's file asking
# 127.0.0.1:PORT; its DATA ACL logs the X-Greylist header the RCPT ACL added.
exim_config() {
    local dir=$1
    mkdir -p "$dir/spool"
    chown Debian-exim:Debian-exim "$dir/spool"
    exim_guide_acl "$2" >"$dir/greylisting.acl"
    exim_resolver "$dir" "$DNS_IP"
    cat >"$dir/exim.conf" <<EOF
primary_hostname = your.mx
spool_directory = $dir/spool
log_file_path = $dir/spool/%slog
exim_user = Debian-exim
exim_group = Debian-exim
host_lookup = *
domainlist local_domains = example.com
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data
begin acl
acl_check_rcpt:
  require domains = +local_domains
.include $dir/greylisting.acl
  accept
acl_check_data:
  warn condition = \${if def:h_X-Greylist:}
       log_message = header X-Greylist: \$h_X-Greylist:
  accept
begin routers
begin transports
EOF
}
exim_config "$T/x" "$POLICY_PORT"
exim_config "$T/silent" "$SILENT_PORT"

python3 "$ROOT/tests/e2e/stub_dns.py" "$DNS_IP" \
    PTR:9.113.0.203.in-addr.arpa=mx.sender.example A:mx.sender.example=203.0.113.9 \
    PTR:7.100.51.198.in-addr.arpa=mx.yahoo.com A:mx.yahoo.com=198.51.100.7 \
    PTR:8.100.51.198.in-addr.arpa=mx.google.com A:mx.google.com=192.0.2.1 \
    PTR:9.100.51.198.in-addr.arpa=dsl-42.pool.example A:dsl-42.pool.example=198.51.100.9 \
    >"$T/dns.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -qs ready "$T/dns.log" && break; sleep 0.1; done
grep -qs ready "$T/dns.log" || fail "the stub DNS server did not start on $DNS_IP:53"

DB="$T/greylist.db"
"$BIN/grey_listing" --db "$DB" -u -grey-interval 0 >/dev/null
GREY_LISTING_LOG=stderr "$BIN/greylisting-policyd" --listen "127.0.0.1:$POLICY_PORT" --db "$DB" \
    --hostname your.mx 2>"$T/policyd.log" &
POLICYD=$!
PIDS+=("$POLICYD")
wait_policyd "$T/policyd.log" "$POLICY_PORT"

# session DIR IP SENDER [EXIM_ARGS...]: EHLO, MAIL, RCPT you@example.com, QUIT, with a message
# after the RCPT when WITH_DATA=1 (-bh takes it without delivering it); sets `out` to Exim's
# output without CRs.
session() {
    local dir=$1 ip=$2 sender=$3 smtp
    shift 3
    smtp="EHLO client.example\r\nMAIL FROM:<$sender>\r\nRCPT TO:<you@example.com>\r\n"
    [ "${WITH_DATA:-}" != 1 ] || smtp+="DATA\r\nSubject: test\r\n\r\nbody\r\n.\r\n"
    smtp+="QUIT\r\n"
    out=$(exim_session "$dir" "$ip" "$smtp" "$@" | tr -d '\r')
    printf '==== %s %s %s\n%s\n' "$ip" "$sender" "$*" "$out" >>"$T/sessions.log"
}
# expect_reply TEXT: the RCPT answer line TEXT is in the last session's output.
expect_reply() { grep -qxF -- "$1" <<<"$out" || { echo "$out"; fail "Exim did not answer: $1"; }; }
expect_decision() { # expect_decision TEXT [REGEX]: a logged line holds TEXT (or matches REGEX)
    for _ in $(seq 50); do
        if [ -n "${2:-}" ]; then grep -qE -- "$2" "$T/policyd.log" && return 0
        else grep -qF -- "$1" "$T/policyd.log" && return 0; fi
        sleep 0.1
    done
    fail "the policy server did not log: $1"
}

say "1. first contact from a verified host, a sender with '='"
session "$T/x" 203.0.113.9 'a=b@sender.example'
expect_reply "451 4.7.1 Service unavailable - try again later"
expect_decision "action=defer, reason=new, client_name=mx.sender.example, client_address=203.0.113.9, sender=a=b@sender.example, recipient=you@example.com"
say "ok: 451 4.7.1; the server saw the verified name and the whole sender"

say "2. the retry, a second session"
WITH_DATA=1 session "$T/x" 203.0.113.9 'a=b@sender.example'
expect_reply "250 Accepted"
expect_decision "action=pass, reason=triplet found, delay=<n>, client_name=mx.sender.example, client_address=203.0.113.9" \
    'action=pass, reason=triplet found, delay=[0-9]+, client_name=mx\.sender\.example, client_address=203\.0\.113\.9'
grep -qE '^LOG: .* header X-Greylist: delayed [0-9]+ seconds by grey_listing at your\.mx; ' <<<"$out" ||
    { echo "$out"; fail "the accepted message did not get the X-Greylist header"; }
say "ok: 250 Accepted, with the X-Greylist header"

say "3. a white host"
session "$T/x" 198.51.100.7 'w@yahoo.example'
expect_reply "250 Accepted"
expect_decision "action=pass, reason=white domains pattern, client_name=mx.yahoo.com, client_address=198.51.100.7"
say "ok: accepted at first contact"

say "4. a forged reverse name"
session "$T/x" 198.51.100.8 'f@sender.example'
expect_reply "451 4.7.1 Service unavailable - try again later"
expect_decision "action=defer, reason=new, client_name=unknown, client_address=198.51.100.8"
say "ok: the unverified name mx.google.com never reached the server; deferred"

say "5. a black host"
session "$T/x" 198.51.100.9 'b@sender.example'
expect_reply "550 5.7.1 Command rejected"
expect_decision "action=reject, reason=black domains pattern, client_name=dsl-42.pool.example, client_address=198.51.100.9"
say "ok: 550 5.7.1"

say "6. an authenticated client"
session "$T/x" 203.0.113.77 's@sender.example' -oMaa plain -oMai bob
expect_reply "250 Accepted"
expect_decision "action=pass, reason=authenticated, client_name=unknown, client_address=203.0.113.77"
say "ok: accepted at first contact"

say "7. the policy server stopped"
kill -TERM "$POLICYD"
wait "$POLICYD" || fail "the policy server did not exit cleanly on SIGTERM"
port_in_use "$POLICY_PORT" && fail "something still listens on $POLICY_PORT"
decisions=$(grep -c ': action=' "$T/policyd.log" || true)
session "$T/x" 203.0.113.88 'down@sender.example'
expect_reply "250 Accepted"
[ "$(grep -c ': action=' "$T/policyd.log" || true)" = "$decisions" ] || fail "a decision was logged with the server stopped"
say "ok: accepted by the fallback"

say "8. a server that never answers"
python3 -c 'import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
print("ready", flush=True)
held = []
while True:
    held.append(s.accept())' "$SILENT_PORT" >"$T/silent.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -qs ready "$T/silent.log" && break; sleep 0.1; done
grep -qs ready "$T/silent.log" || fail "the silent listener did not start on $SILENT_PORT"
started=$SECONDS
session "$T/silent" 203.0.113.99 'hung@sender.example'
expect_reply "250 Accepted"
[ $((SECONDS - started)) -ge 4 ] || fail "accepted before the 5 s timeout: the silent server was not asked"
say "ok: accepted by the fallback after the timeout"

say "PASS"
