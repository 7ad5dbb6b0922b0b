#!/usr/bin/env bash
# The integration guides, tested as written (issue 8). Every fenced block in docs/integration/*.md
# preceded by `<!-- tested: NAME -->` is extracted here and executed or compared, so a guide edit
# that breaks a command fails CI. The only changes made to a block: the installed paths
# /usr/bin/<binary> point at the freshly built binaries, the port and server address are the
# test's own, and the database is a temporary one.
#   - Plesk (no Plesk here): the event-handler script runs with NEW_DOMAIN_NAME set, then
#     --info-domain must say disabled; the by-hand handler run must answer DEFER, exit 2 and log
#     the guide's log lines.
#   - qmail (Debian has no qmail): the guide's QMAILQUEUE wrapper behind a real tcpserver
#     (ucspi-tcp) with stand-ins for qmail-smtpd and the real qmail-queue, and a stub DNS server:
#     tcpserver -p passes a forward-confirmed name and drops a forged one; -h alone passes the
#     forged one. Exit 71 on defer, the guide's log line, the identical message on pass.
#   - Postfix: the guide's main.cf lines in a private Postfix (SPEC §7), the guide's swaks command
#     must get the guide's 450 4.7.1 answer, the policy server the guide's log line, the retry an
#     X-Greylist header.
# Needs root (Postfix, a DNS stub on port 53). Installs postfix, swaks, ucspi-tcp and python3 when
# missing and fails loudly when it cannot. Ports: E2E_GUIDES_SMTP_PORT (2526),
# E2E_GUIDES_POLICY_PORT (12025), E2E_GUIDES_QMAIL_PORT (2527); DNS stub on E2E_GUIDES_DNS_IP
# (127.0.53.53) port 53.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DOCS=$ROOT/docs/integration
SMTP_PORT=${E2E_GUIDES_SMTP_PORT:-2526}
POLICY_PORT=${E2E_GUIDES_POLICY_PORT:-12025}
QMAIL_PORT=${E2E_GUIDES_QMAIL_PORT:-2527}
DNS_IP=${E2E_GUIDES_DNS_IP:-127.0.53.53}
# Every tested block; a marker in the guides that is not listed here fails the run.
TESTED=(plesk-event-handler plesk-handler-run plesk-log qmail-wrapper qmail-log
    postfix-main-cf postfix-swaks postfix-defer-reply postfix-log)

E2E_NAME=guides
source tests/e2e/lib.sh

require_root "Postfix's master, a DNS stub on port 53"
export PATH="$PATH:/usr/sbin:/sbin"
ensure_packages postfix:postfix swaks:swaks tcpserver:ucspi-tcp python3:python3
ports_free "$SMTP_PORT" "$POLICY_PORT" "$QMAIL_PORT"

# Every marker in the guides is one this script tests, and the other way round.
found=$(sed -n 's/^<!-- tested: \([a-z0-9-]*\) -->$/\1/p' "$DOCS"/*.md | sort)
expected=$(printf '%s\n' "${TESTED[@]}" | sort)
[ "$found" = "$expected" ] ||
    fail "tested blocks in the guides ($(echo $found)) differ from the ones this script runs ($(echo $expected))"

# block FILE NAME: the fenced block after `<!-- tested: NAME -->` in docs/integration/FILE.
block() {
    local text
    text=$(awk -v marker="<!-- tested: $2 -->" '
        $0 == marker { state = 1; next }
        state == 1 && /^```/ { state = 2; next }
        state == 1 { exit }
        state == 2 && /^```/ { exit }
        state == 2 { print }' "$DOCS/$1")
    [ -n "$text" ] || fail "$1: no fenced block after <!-- tested: $2 -->"
    printf '%s\n' "$text"
}
# expect_logged FILE NAME IDENT LOG [PREFIX]: every line of the guide's log block written by IDENT,
# without its syslog prefix (`ident[pid]: `) and with PREFIX before it, is a line of LOG once
# the stderr log's own `<time> IDENT[pid]: ` is taken off (after PREFIX).
expect_logged() {
    local text lines line logged
    text=$(block "$1" "$2")
    lines=$(sed -n "s/^$3\[[0-9]*\]: //p" <<<"$text")
    [ -n "$lines" ] || fail "$1: block $2 has no line from $3"
    logged=$(sed -E "s/^(${5:-})[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+[+-][0-9]{2}:[0-9]{2} $3\[[0-9]+\]: /\1/" "$4")
    while IFS= read -r line; do
        grep -qxF -- "${5:-}$line" <<<"$logged" || fail "not logged as $1 says: ${5:-}$line"
    done <<<"$lines"
}

build_debug_binaries
# The guides name the installed binaries; run the ones just built.
installed_paths() { sed "s#/usr/bin/\(grey_listing\|greylisting-filter\|greylisting-policyd\)#$BIN/\1#g"; }

T=$(mktemp -d /tmp/gl-e2e-guides.XXXXXX)
chmod 755 "$T"
PIDS=()
POSTFIX_STARTED=
cleanup() {
    local rc=$?
    if [ -n "$POSTFIX_STARTED" ]; then postfix -c "$T/postfix/etc" stop >/dev/null 2>&1 || true; fi
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    if [ $rc -ne 0 ]; then
        for log in "$T"/*.log "$T"/*.err "$T/postfix/start.log" "$T/postfix/maillog"; do
            [ -f "$log" ] && { echo "---- $log"; tail -n 30 "$log"; }
        done
    fi
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT

############################################################################ Plesk with qmail
say "Plesk: the event-handler script for new domains, as written"
block plesk-qmail.md plesk-event-handler | installed_paths >"$T/grey-listing-new-domain"
chmod 755 "$T/grey-listing-new-domain"
PLESK_DB="$T/plesk.db"
NEW_DOMAIN_NAME=new.example GREY_LISTING_DB="$PLESK_DB" "$T/grey-listing-new-domain" >"$T/event.out" ||
    fail "the event-handler script failed: $(cat "$T/event.out")"
grep -qx "SUCCESS: Update of domain 'new.example' complete." "$T/event.out" ||
    fail "event handler printed: $(cat "$T/event.out")"
"$BIN/grey_listing" --db "$PLESK_DB" -id new.example | grep -qx 'Grey listing checking  disabled' ||
    fail "--info-domain new.example does not show the domain disabled"
say "ok: a new domain is created with greylisting disabled"

say "Plesk: the by-hand handler run, as written (bare environment, message on stdin)"
# Plesk's bare environment reaches no database variable: the location comes from the
# configuration file, here a temporary one.
echo "db = $PLESK_DB" >"$T/grey_listing.conf"
block plesk-qmail.md plesk-handler-run |
    sed "s#env -i PATH=/usr/bin:/bin #env -i PATH=$BIN:/usr/bin:/bin GREY_LISTING_CONF=$T/grey_listing.conf GREY_LISTING_LOG=stderr #" \
    >"$T/handler-run.sh"
grep -q "GREY_LISTING_CONF=" "$T/handler-run.sh" || fail "the handler run no longer uses 'env -i PATH=/usr/bin:/bin'"
bash "$T/handler-run.sh" >"$T/handler-run.out" 2>"$T/handler-run.err" || fail "the handler run failed"
[ "$(cat "$T/handler-run.out")" = 2 ] || fail "echo \$? printed '$(cat "$T/handler-run.out")', want 2 (DEFER)"
[ "$(tail -n1 "$T/handler-run.err")" = DEFER ] || fail "the verdict line is not DEFER"
expect_logged plesk-qmail.md plesk-log 'greylisting filter' "$T/handler-run.err" 'LOG '
say "ok: DEFER, exit status 2 and the guide's log lines"

############################################################################ plain qmail
say "qmail: the QMAILQUEUE wrapper behind tcpserver, with a stub DNS server"
block qmail.md qmail-wrapper | installed_paths >"$T/greylisting-qmail-queue"
chmod 755 "$T/greylisting-qmail-queue"
grep -q "$BIN/greylisting-filter --qmail-queue" "$T/greylisting-qmail-queue" ||
    fail "the wrapper does not run greylisting-filter --qmail-queue"
# The real qmail-queue's stand-in keeps what it was given.
cat >"$T/real-qmail-queue" <<EOF
#!/bin/sh
cat >"$T/queued.message" || exit 53
cat <&1 >"$T/queued.envelope" || exit 54
exit 0
EOF
# qmail-smtpd's stand-in: hands the queue program a fixed message (fd 0) and envelope (fd 1),
# then tells the client what tcpserver set and what the queue answered.
printf 'Received: from unknown (HELO mx) (127.0.0.1)\n  by mx with SMTP\nSubject: qmail\n\nbody\n' >"$T/message"
cat >"$T/fake-qmail-smtpd" <<EOF
#!/bin/bash
status=0
"\$QMAILQUEUE" <"$T/message" 1<"$T/envelope.\$SENDER_TAG" || status=\$?
echo "status=\$status host=\${TCPREMOTEHOST-}"
EOF
chmod 755 "$T/real-qmail-queue" "$T/fake-qmail-smtpd"
QMAIL_DB="$T/qmail.db"
"$BIN/grey_listing" --db "$QMAIL_DB" -u -grey-interval 0 >/dev/null
for tag in a b c; do printf 'F%s@sender.example\0Tyou@example.com\0\0' "$tag" >"$T/envelope.$tag"; done

DNS_PID=
start_dns() { # start_dns RECORD...: the stub answers only these records
    [ -z "$DNS_PID" ] || { kill "$DNS_PID"; wait "$DNS_PID" 2>/dev/null || true; }
    python3 "$ROOT/tests/e2e/stub_dns.py" "$DNS_IP" "$@" >"$T/dns.log" 2>&1 &
    DNS_PID=$!
    PIDS+=("$DNS_PID")
    for _ in $(seq 100); do grep -qs ready "$T/dns.log" && return 0; sleep 0.1; done
    fail "the stub DNS server did not start on $DNS_IP:53"
}
# smtp_session FLAG TAG: one connection to a fresh tcpserver started with FLAG (-p or -h); sets
# `reply` to the stand-in's "status=... host=..." line. (Not run in $(...): tcpserver would hold
# the substitution's pipe open.)
smtp_session() {
    local pid
    DNSCACHEIP=$DNS_IP GREY_LISTING_DB=$QMAIL_DB GREY_LISTING_LOG=stderr GREY_LISTING_PURGE_ONE_IN=0 \
        GREY_QMAIL_QUEUE=$T/real-qmail-queue SENDER_TAG=$2 \
        tcpserver -v "$1" -R -l localhost 127.0.0.1 "$QMAIL_PORT" \
        env QMAILQUEUE="$T/greylisting-qmail-queue" "$T/fake-qmail-smtpd" >/dev/null 2>"$T/session.log" &
    pid=$!
    PIDS+=("$pid")
    # Ready when tcpserver -v reports its first status line (a probe connection would be a session).
    for _ in $(seq 100); do grep -qs "status: 0/" "$T/session.log" && break; sleep 0.1; done
    exec 3<>"/dev/tcp/127.0.0.1/$QMAIL_PORT" || fail "cannot connect to tcpserver"
    IFS= read -r -t 30 reply <&3 || fail "no answer through tcpserver $1"
    exec 3<&-
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    cat "$T/session.log" >>"$T/qmail.log"
}

# 1. tcpserver -p, the PTR name resolves back to the client: the name reaches the filter.
start_dns PTR:1.0.0.127.in-addr.arpa=mx.sender.example A:mx.sender.example=127.0.0.1
smtp_session -p a
[ "$reply" = "status=71 host=mx.sender.example" ] || fail "-p, confirmed name, first attempt: $reply"
expect_logged qmail.md qmail-log 'greylisting filter' "$T/qmail.log"
[ ! -e "$T/queued.message" ] || fail "a deferred message reached the real qmail-queue"
smtp_session -p a
[ "$reply" = "status=0 host=mx.sender.example" ] || fail "-p, confirmed name, retry: $reply"
cmp -s "$T/queued.message" "$T/message" || fail "the real qmail-queue got a different message"
cmp -s "$T/queued.envelope" "$T/envelope.a" || fail "the real qmail-queue got a different envelope"
say "ok: tcpserver -p passes a verified name; defer exits 71 with the guide's log line; the retry is queued unchanged"

# 2. A forged PTR (mx.google.com, whose address is not the client's): -p drops the name, so the
# white pattern *google.com does not apply and the message is greylisted.
start_dns PTR:1.0.0.127.in-addr.arpa=mx.google.com A:mx.google.com=192.0.2.1
smtp_session -p b
[ "$reply" = "status=71 host=" ] || fail "-p, forged name: $reply"
grep -qF "action=defer, reason=new, client_name=unknown, client_address=127.0.0.1, sender=b@sender.example" "$T/qmail.log" ||
    fail "the filter saw a host name although tcpserver -p could not verify it"
say "ok: tcpserver -p drops a forged name"

# 3. -h alone: the forged name reaches the filter and the white pattern lets the message through.
smtp_session -h c
[ "$reply" = "status=0 host=mx.google.com" ] || fail "-h, forged name: $reply"
grep -qF "action=pass, reason=white domains pattern, client_name=mx.google.com, client_address=127.0.0.1, sender=c@sender.example" "$T/qmail.log" ||
    fail "with -h the forged name did not reach the filter"
say "ok: tcpserver -h alone passes an unverified name (why the guide says -p)"

############################################################################ Postfix
say "Postfix: the guide's main.cf lines in a private Postfix"
POSTFIX_DB="$T/postfix.db"
"$BIN/grey_listing" --db "$POSTFIX_DB" -u -grey-interval 0 >/dev/null
GREY_LISTING_LOG=stderr "$BIN/greylisting-policyd" --listen "127.0.0.1:$POLICY_PORT" --db "$POSTFIX_DB" \
    --hostname your.mx 2>"$T/policyd.log" &
PIDS+=($!)
wait_policyd "$T/policyd.log" "$POLICY_PORT"

P="$T/postfix"
postfix_config "$P" "$SMTP_PORT" your.mx example.com you
# The guide's lines, with the test's policy port.
block postfix.md postfix-main-cf | sed "s#inet:127.0.0.1:10023#inet:127.0.0.1:$POLICY_PORT#" >>"$P/etc/main.cf"
grep -q "check_policy_service inet:127.0.0.1:$POLICY_PORT" "$P/etc/main.cf" ||
    fail "the guide's main.cf lines do not call check_policy_service inet:127.0.0.1:10023"
postfix -c "$P/etc" check >"$T/postfix-check.log" 2>&1 || fail "postfix check rejects the configuration"
POSTFIX_STARTED=1
postfix_start "$P" "$SMTP_PORT"

# The guide's swaks command, pointed at the private Postfix; XCLIENT makes the connection look
# like the outside client of the guide's log line.
block postfix.md postfix-swaks |
    sed "s#--server your.mx#--server 127.0.0.1:$SMTP_PORT --xclient 'NAME=mx.sender.example ADDR=203.0.113.9' --timeout 30#" \
    >"$T/swaks.sh"
grep -q -- "--xclient" "$T/swaks.sh" || fail "the guide's swaks command no longer uses --server your.mx"
out=$(bash "$T/swaks.sh" 2>&1 || true)
reply=$(block postfix.md postfix-defer-reply)
grep -qF -- "<** $reply" <<<"$out" || { echo "$out"; fail "swaks did not get the guide's answer: $reply"; }
expect_logged postfix.md postfix-log greylisting-policyd "$T/policyd.log"
say "ok: first attempt answered as the guide says, logged as the guide says"
out=$(bash "$T/swaks.sh" 2>&1 || true)
grep -qE -- '<- *250 .*queued as' <<<"$out" || { echo "$out"; fail "the retry was not accepted"; }
delivered=
for _ in $(seq 600); do
    delivered=$(ls "$P"/mail/you/new/* 2>/dev/null | head -n1 || true)
    [ -n "$delivered" ] && break
    sleep 0.1
done
[ -n "$delivered" ] || fail "the retry was not delivered"
grep -qE '^X-Greylist: delayed [0-9]+ seconds by grey_listing at your\.mx; ' "$delivered" ||
    { cat "$delivered"; fail "the delivered message has no X-Greylist header"; }
say "ok: the retry is delivered with X-Greylist"

say "PASS"
