#!/usr/bin/env bash
# End to end with a real MTA (issue 5, DESIGN.md §6/§7): a private Postfix on 127.0.0.1 (its own config,
# queue and mail directories, a non-standard port) asks greylisting-policyd through
# check_policy_service; swaks poses as remote clients through XCLIENT. Asserts:
#   - first attempt: 4xx 4.7.1 with our text; retry after the grey interval (0 here): accepted and
#     the delivered message carries X-Greylist;
#   - a client whose host name matches a black pattern: 5xx 5.7.1 Command rejected;
#   - SASL-authenticated (XCLIENT LOGIN=) and whitelisted senders pass at once;
#   - a retry from a neighbouring address of the same /24 passes.
# Installs postfix and swaks when missing (as root); touches nothing of the host's mail system.
# Ports: E2E_SMTP_PORT (default 2525), E2E_POLICY_PORT (default 12023).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SMTP_PORT=${E2E_SMTP_PORT:-2525}
POLICY_PORT=${E2E_POLICY_PORT:-12023}

E2E_NAME=postfix
source tests/e2e/lib.sh

export PATH="$PATH:/usr/sbin:/sbin"
require_root "Postfix's master runs as root"
ensure_packages postfix:postfix swaks:swaks
ports_free "$SMTP_PORT" "$POLICY_PORT"
build_debug_binaries

P=$(mktemp -d /tmp/gl-e2e-postfix.XXXXXX)
chmod 755 "$P"
POLICYD_PID=
POSTFIX_STARTED=
cleanup() {
    local rc=$?
    if [ -n "$POSTFIX_STARTED" ]; then postfix -c "$P/etc" stop >/dev/null 2>&1 || true; fi
    if [ -n "$POLICYD_PID" ]; then kill -TERM "$POLICYD_PID" 2>/dev/null || true; wait "$POLICYD_PID" 2>/dev/null || true; fi
    if [ $rc -ne 0 ]; then
        echo "---- policyd log"; tail -n 40 "$P/policyd.log" 2>/dev/null || true
        echo "---- maillog"; tail -n 40 "$P/maillog" 2>/dev/null || true
    fi
    rm -rf "$P"
    exit $rc
}
trap cleanup EXIT

# The greylist database, set up with the real CLI: grey interval 0 so a retry passes at once.
DB="$P/greylist.db"
"$BIN/grey_listing" --db "$DB" -u -grey-interval 0 -whitelist 'add:*@friend.example' >/dev/null
GREY_LISTING_LOG=stderr "$BIN/greylisting-policyd" --listen "127.0.0.1:$POLICY_PORT" --db "$DB" \
    --hostname mx.e2e.test 2>"$P/policyd.log" &
POLICYD_PID=$!
wait_policyd "$P/policyd.log" "$POLICY_PORT"

# The private Postfix (DESIGN.md §9), asking the policy server at RCPT time.
postfix_config "$P" "$SMTP_PORT" mx.e2e.test local.example u
cat >>"$P/etc/main.cf" <<EOF
smtpd_sasl_auth_enable = yes
smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service inet:127.0.0.1:$POLICY_PORT
EOF
POSTFIX_STARTED=1
postfix_start "$P" "$SMTP_PORT"


# 1. First attempt: 450 4.7.1 with our text (DESIGN.md §9 reply codes).
out=$(send mx1.sender.example 198.51.100.7 "" alice@sender.example first)
expect "$out" '<\*\* *4[0-9][0-9] 4\.7\.1 .*Service unavailable - try again later' "first attempt deferred with 4xx 4.7.1"
# 2. Retry after the grey interval: accepted, X-Greylist in the delivered file.
out=$(send mx1.sender.example 198.51.100.7 "" alice@sender.example retry)
expect "$out" '<- *250 .*queued as' "retry accepted"
file=$(delivered retry)
grep -qE '^X-Greylist: delayed [0-9]+ seconds by grey_listing at mx\.e2e\.test; ' "$file" ||
    { cat "$file"; fail "delivered message has no X-Greylist header"; }
say "ok: delivered message carries X-Greylist"
# 3. A black host pattern (default dsl|broadband|hsd): 5xx 5.7.1 Command rejected.
out=$(send host7.dsl.isp.example 192.0.2.10 "" bob@isp.example black)
expect "$out" '<\*\* *5[0-9][0-9] 5\.7\.1 .*Command rejected' "black host pattern rejected with 5xx 5.7.1"
# 4. SASL-authenticated (XCLIENT LOGIN=): accepted at once.
out=$(send unknown-host.example 203.0.113.5 bob carol@roaming.example sasl)
expect "$out" '<- *250 .*queued as' "SASL-authenticated sender accepted at once"
grep -q "reason=authenticated" "$P/policyd.log" || fail "policyd did not log reason=authenticated"
# 5. Whitelisted sender: accepted at once.
out=$(send mx.friend.example 203.0.113.50 "" pal@friend.example white)
expect "$out" '<- *250 .*queued as' "whitelisted sender accepted at once"
grep -q "reason=server white list, .*sender=pal@friend.example" "$P/policyd.log" ||
    fail "policyd did not log the white list hit"
# 6. Neighbour in the same /24 retries: passes.
out=$(send "[UNAVAILABLE]" 198.51.100.20 "" dave@neighbour.example neighbour1)
expect "$out" '<\*\* *4[0-9][0-9] 4\.7\.1 ' "neighbour's first attempt deferred"
out=$(send "[UNAVAILABLE]" 198.51.100.21 "" dave@neighbour.example neighbour2)
expect "$out" '<- *250 .*queued as' "retry from another address of the same /24 accepted"
delivered neighbour2 >/dev/null
grep -q "action=pass, reason=triplet found, .*client_address=198.51.100.21" "$P/policyd.log" ||
    fail "policyd did not pass the neighbour by its triplet"
# The deferred attempts were never delivered.
if grep -lqE -- "Subject: (first|neighbour1)\$" "$P"/mail/u/new/* 2>/dev/null; then
    fail "a deferred attempt was delivered"
fi
say "all end-to-end checks passed"
