#!/usr/bin/env bash
# End to end for greylisting-milter with real clients, no mock: a private Postfix on 127.0.0.1
# (its own config, queue and mail directories) calls the milter through smtpd_milters with the
# settings docs/integration/postfix.md recommends; swaks poses as remote clients through XCLIENT
# (the milter sees the XCLIENT address). Then miltertest (Sendmail's libmilter test client,
# Debian's `miltertest`) speaks to the same milter with a Lua script. Asserts:
#   - a new triplet: 451 4.7.1 with our text at RCPT; the retry after the grey interval (0 here)
#     is accepted and the stored message carries X-Greylist;
#   - a white host name and a client in --trusted-networks are accepted at once, an XCLIENT
#     LOGIN (SASL) client too ({auth_authen});
#   - miltertest: connect/helo/mail/rcpt gets the reply code, a trusted client CONTINUE, the
#     retry an X-Greylist header at end of message;
#   - three messages in one pipelined SMTP session (Python's raw socket): the first with a
#     retried recipient (accepted, one X-Greylist) and a new one (deferred); the second, from a
#     white-listed sender after no RSET, and the third after RSET, carry no X-Greylist — nothing
#     of a message leaks into the next;
#   - the milter killed: mail is accepted (milter_default_action = accept); with that line
#     removed, Postfix's default (tempfail) answers 4xx, the warning the docs give.
#   - over a unix socket in Postfix's queue directory (`unix:greylisting/milter`), the milter
#     run unprivileged with --socket-group postfix: the socket is 0660 <user>:postfix, a new
#     triplet is deferred, the retry delivered with X-Greylist; SIGTERM removes the socket.
# Ports: E2E_SMTP_PORT (default 2547), E2E_MILTER_PORT (default 12047).
set -euo pipefail
cd "$(dirname "$0")/../.."
SMTP_PORT=${E2E_SMTP_PORT:-2547}
MILTER_PORT=${E2E_MILTER_PORT:-12047}

E2E_NAME=milter
source tests/e2e/lib.sh

export PATH="$PATH:/usr/sbin:/sbin"
require_root "Postfix's master runs as root"
ensure_packages postfix:postfix swaks:swaks miltertest:miltertest python3:python3 setpriv:util-linux
ports_free "$SMTP_PORT" "$MILTER_PORT"
build_debug_binaries

P=$(mktemp -d /tmp/gl-e2e-milter.XXXXXX)
chmod 755 "$P"
MILTER_PID=
POSTFIX_STARTED=
cleanup() {
    local rc=$?
    if [ -n "$POSTFIX_STARTED" ]; then postfix -c "$P/etc" stop >/dev/null 2>&1 || true; fi
    if [ -n "$MILTER_PID" ]; then kill -TERM "$MILTER_PID" 2>/dev/null || true; wait "$MILTER_PID" 2>/dev/null || true; fi
    if [ $rc -ne 0 ]; then
        echo "---- milter log"; tail -n 40 "$P/milter.log" 2>/dev/null || true
        echo "---- maillog"; tail -n 40 "$P/maillog" 2>/dev/null || true
    fi
    rm -rf "$P"
    exit $rc
}
trap cleanup EXIT

# The greylist database, set up with the real CLI: grey interval 0 so a retry passes at once.
DB="$P/greylist.db"
"$BIN/grey_listing" --db "$DB" -u -grey-interval 0 >/dev/null
GREY_LISTING_LOG=stderr "$BIN/greylisting-milter" --listen "127.0.0.1:$MILTER_PORT" --db "$DB" \
    --hostname mx.e2e.test --trusted-networks 127.0.0.0/8,192.0.2.0/24 2>"$P/milter.log" &
MILTER_PID=$!
for _ in $(seq 100); do grep -qs "listening on" "$P/milter.log" && break; sleep 0.1; done
grep -q "listening on 127.0.0.1:$MILTER_PORT" "$P/milter.log" || fail "milter did not start"

# The private Postfix, calling the milter on its port-25 service only (master.cf), with the
# main.cf settings the guide recommends.
postfix_config "$P" "$SMTP_PORT" mx.e2e.test local.example u
sed -i "s/^\(127\.0\.0\.1:$SMTP_PORT inet .*smtpd\)\$/\1\n  -o smtpd_milters=inet:127.0.0.1:$MILTER_PORT/" \
    "$P/etc/master.cf"
grep -q "^  -o smtpd_milters=inet:127.0.0.1:$MILTER_PORT\$" "$P/etc/master.cf" ||
    fail "could not add smtpd_milters to the smtp service in master.cf"
# A second mailbox, v@local.example, for the multi-message session of step 7.
postconf -c "$P/etc" "virtual_mailbox_maps = inline:{ u@local.example=u/, v@local.example=v/ }"
cat >>"$P/etc/main.cf" <<EOF
smtpd_sasl_auth_enable = yes
milter_protocol = 6
milter_default_action = accept
EOF
POSTFIX_STARTED=1
postfix_start "$P" "$SMTP_PORT"


# 1. A new triplet: the milter's 451 4.7.1 at RCPT, passed through by Postfix as it is.
out=$(send "[UNAVAILABLE]" 198.51.100.7 "" alice@sender.example first)
expect "$out" '<\*\* *451 4\.7\.1 Service unavailable - try again later' "new triplet deferred at RCPT with 451 4.7.1"
grep -q "action=defer, reason=new, client_name=unknown, client_address=198.51.100.7, sender=alice@sender.example, recipient=u@local.example" \
    "$P/milter.log" || fail "milter did not log the deferral"
# 2. The retry after the grey interval: accepted, X-Greylist in the stored message.
out=$(send "[UNAVAILABLE]" 198.51.100.7 "" alice@sender.example retry)
expect "$out" '<- *250 .*queued as' "retry accepted"
file=$(delivered retry)
grep -qE '^X-Greylist: delayed [0-9]+ seconds by grey_listing at mx\.e2e\.test; ' "$file" ||
    { cat "$file"; fail "delivered message has no X-Greylist header"; }
[ "$(grep -c '^X-Greylist:' "$file")" -eq 1 ] || fail "more than one X-Greylist header"
say "ok: delivered message carries one X-Greylist header"
# 3. A white host name (default pattern *google.com): accepted at once.
out=$(send mail-yw1.google.com 198.51.100.9 "" bob@gmail.example white)
expect "$out" '<- *250 .*queued as' "white host accepted at once"
grep -q "action=pass, reason=white domains pattern, client_name=mail-yw1.google.com" "$P/milter.log" ||
    fail "milter did not log the white host"
# 4. A client in --trusted-networks: never greylisted.
out=$(send "[UNAVAILABLE]" 192.0.2.77 "" carol@inside.example trusted)
expect "$out" '<- *250 .*queued as' "trusted network accepted at once"
grep -q "action=pass, reason=authenticated, client_name=unknown, client_address=192.0.2.77" "$P/milter.log" ||
    fail "milter did not pass the trusted client"
# 5. SASL through XCLIENT LOGIN: Postfix hands {auth_authen} to the milter.
out=$(send roaming.example 203.0.113.5 bob dave@roaming.example sasl)
expect "$out" '<- *250 .*queued as' "SASL-authenticated client accepted at once"
grep -q "action=pass, reason=authenticated, client_name=roaming.example, client_address=203.0.113.5" "$P/milter.log" ||
    fail "milter did not see {auth_authen}"
delivered white >/dev/null
delivered trusted >/dev/null
if grep -lqE -- "Subject: first\$" "$P"/mail/u/new/* 2>/dev/null; then
    fail "the deferred attempt was delivered"
fi

# 6. miltertest, a second and independent MTA side.
cat >"$P/check.lua" <<LUA
local function check(what, got, want)
    if got ~= want then error(what .. ": got " .. tostring(got) .. ", want " .. tostring(want)) end
end
local function open(host, ip)
    local conn = mt.connect("inet:$MILTER_PORT@127.0.0.1", 20, 0.2)
    if conn == nil then error "cannot connect to the milter" end
    check("conninfo", mt.conninfo(conn, host, ip), nil)
    check("connect reply", mt.getreply(conn), SMFIR_CONTINUE)
    check("helo", mt.helo(conn, "client.example"), nil)
    check("mailfrom", mt.mailfrom(conn, "<erin@sender.example>"), nil)
    return conn
end
-- A new triplet: the reply code.
local conn = open("[198.51.100.66]", "198.51.100.66")
check("rcptto", mt.rcptto(conn, "<u@local.example>"), nil)
check("new triplet reply", mt.getreply(conn), SMFIR_REPLYCODE)
mt.disconnect(conn)
-- The retry: continue, and the header at end of message.
conn = open("[198.51.100.66]", "198.51.100.66")
check("rcptto", mt.rcptto(conn, "<u@local.example>"), nil)
check("retry reply", mt.getreply(conn), SMFIR_CONTINUE)
check("eom", mt.eom(conn), nil)
check("header added", mt.eom_check(conn, MT_HDRADD, "X-Greylist"), true)
local value = mt.getheader(conn, "X-Greylist", 0)
if not string.find(value, "^delayed %d+ seconds by grey_listing at mx.e2e.test; ") then
    error("X-Greylist value: " .. value)
end
mt.disconnect(conn)
-- A trusted client: continue.
conn = open("relay.inside.example", "192.0.2.5")
check("rcptto", mt.rcptto(conn, "<u@local.example>"), nil)
check("trusted reply", mt.getreply(conn), SMFIR_CONTINUE)
mt.disconnect(conn)
LUA
miltertest -s "$P/check.lua" >"$P/miltertest.out" 2>&1 || { cat "$P/miltertest.out"; fail "miltertest script failed"; }
grep -q "action=defer, reason=new, client_name=unknown, client_address=198.51.100.66" "$P/milter.log" ||
    fail "milter did not log miltertest's deferral"
say "ok: miltertest (connect/helo/mail/rcpt reply code, header at end of message, trusted client)"

# 7. Several messages in one SMTP session, each sent as one pipelined write (MAIL, the RCPTs,
# DATA), as a busy relay sends them. The triplet (198.51.100.40, multi@sender.example, u) is
# first deferred on its own, then retried in message 1 next to v, still new: u accepted with the
# header, v deferred. Message 2 (no RSET before it) comes from a white-listed sender, message 3
# (after RSET) too: neither may inherit message 1's header.
"$BIN/grey_listing" --db "$DB" -u -whitelist "add:clean@white.example" >/dev/null
out=$(send "[UNAVAILABLE]" 198.51.100.40 "" multi@sender.example multi-first)
expect "$out" '<\*\* *451 4\.7\.1 ' "multi-message sender deferred first"
sleep 1
python3 - "$SMTP_PORT" >"$P/multi.out" 2>&1 <<'PY' || { cat "$P/multi.out"; fail "multi-message session"; }
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
replies = sock.makefile("rb")
def reply():
    while True:
        line = replies.readline().decode()
        if not line:
            sys.exit("connection closed")
        if line[3:4] != "-":
            return line.strip()
def send(text, want):
    sock.sendall(text.encode())
    got = [reply() for _ in want]
    for w, g in zip(want, got):
        if not g.startswith(w):
            sys.exit(f"sent {text!r}: got {got}, want {want}")
reply()
send("EHLO client.example\r\n", ["250"])
send("XCLIENT NAME=[UNAVAILABLE] ADDR=198.51.100.40\r\n", ["220"])
send("EHLO client.example\r\n", ["250"])
def message(sender, rcpts, want, subject, rset=""):
    body = f"Subject: {subject}\r\n\r\nmulti\r\n.\r\n"
    text = rset + f"MAIL FROM:<{sender}>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts)
    send(text + "DATA\r\n", (["250"] if rset else []) + ["250"] + want + ["354"])
    send(body, ["250"])
message("multi@sender.example", ["u@local.example", "v@local.example"], ["250", "451 4.7.1"], "multi-1")
message("clean@white.example", ["u@local.example"], ["250"], "multi-2")
message("clean@white.example", ["u@local.example"], ["250"], "multi-3", rset="RSET\r\n")
send("QUIT\r\n", ["221"])
PY
file=$(delivered multi-1)
[ "$(grep -c '^X-Greylist: delayed [0-9]* seconds by grey_listing at mx\.e2e\.test; ' "$file")" -eq 1 ] ||
    { cat "$file"; fail "message 1 of the session: want exactly one X-Greylist header"; }
for tag in multi-2 multi-3; do
    file=$(delivered $tag)
    if grep -q '^X-Greylist:' "$file"; then cat "$file"; fail "$tag inherited an X-Greylist header"; fi
done
if grep -qs -- "Subject: multi-1\$" "$P"/mail/v/new/* 2>/dev/null; then
    fail "the deferred recipient v of message 1 got the message"
fi
grep -q "action=defer, reason=new, client_name=unknown, client_address=198.51.100.40, sender=multi@sender.example, recipient=v@local.example" \
    "$P/milter.log" || fail "milter did not defer v in message 1"
say "ok: three messages in one pipelined session: header on the first only, deferred recipient left out"

# 8. The milter dies: with milter_default_action = accept, mail still flows.
kill -KILL "$MILTER_PID"
wait "$MILTER_PID" 2>/dev/null || true
MILTER_PID=
out=$(send "[UNAVAILABLE]" 198.51.100.200 "" frank@down.example down)
expect "$out" '<- *250 .*queued as' "milter down, milter_default_action = accept: accepted"
delivered down >/dev/null
# Without that line Postfix's default, tempfail, defers everything while the milter is down.
postconf -c "$P/etc" -X milter_default_action
postfix -c "$P/etc" reload >/dev/null 2>&1
sleep 1
out=$(send "[UNAVAILABLE]" 198.51.100.201 "" grace@down.example down-tempfail)
expect "$out" '<\*\* *4[0-9][0-9] ' "milter down, default milter_default_action: 4xx"
say "Postfix answered: $(grep -m1 -E '<\*\* *4' <<<"$out" | sed 's/^ *<\*\* *//')"

# 9. Over a unix socket laid out as docs/integration/postfix.md and the package's unit do it: a
# directory in Postfix's queue directory owned by the milter's user, group postfix, mode 2750;
# the milter run as an unprivileged user with postfix as supplementary group and
# --socket-group postfix; `smtpd_milters = unix:greylisting/milter`, relative to the queue
# directory (where a chrooted smtpd finds it too). milter_default_action = accept again, so that
# a milter Postfix cannot reach would show as an accepted mail, not as a 451 like ours.
unprivileged_ids
SOCKDIR="$P/queue/greylisting"
install -d -o nobody -g postfix -m 2750 "$SOCKDIR"
install -d -o nobody -g nogroup -m 2770 "$P/udb"
setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups -- \
    "$BIN/grey_listing" --db "$P/udb/g.db" -u -grey-interval 0 >/dev/null
setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --groups="$POSTFIX_GID" -- \
    env GREY_LISTING_LOG=stderr "$BIN/greylisting-milter" --listen "unix:$SOCKDIR/milter" \
    --socket-group postfix --db "$P/udb/g.db" --hostname mx.e2e.test 2>"$P/milter.log" &
MILTER_PID=$!
for _ in $(seq 100); do grep -qs "listening on" "$P/milter.log" && break; sleep 0.1; done
grep -q "listening on unix:$SOCKDIR/milter" "$P/milter.log" || fail "the milter did not start on its unix socket"
[ "$(stat -c '%a %U %G' "$SOCKDIR/milter")" = "660 nobody postfix" ] ||
    fail "socket is $(stat -c '%a %U %G' "$SOCKDIR/milter"), want 660 nobody postfix"
sed -i "s|^  -o smtpd_milters=inet:127.0.0.1:$MILTER_PORT\$|  -o smtpd_milters=unix:greylisting/milter|" "$P/etc/master.cf"
grep -q "^  -o smtpd_milters=unix:greylisting/milter\$" "$P/etc/master.cf" || fail "could not switch master.cf to the unix socket"
postconf -c "$P/etc" "milter_default_action = accept"
postfix -c "$P/etc" reload >/dev/null 2>&1
sleep 1
out=$(send "[UNAVAILABLE]" 198.51.100.210 "" henry@unix.example unix-first)
expect "$out" '<\*\* *451 4\.7\.1 Service unavailable - try again later' "over the unix socket: new triplet deferred"
grep -q "action=defer, reason=new, client_name=unknown, client_address=198.51.100.210, sender=henry@unix.example" \
    "$P/milter.log" || fail "the milter on the unix socket did not decide"
out=$(send "[UNAVAILABLE]" 198.51.100.210 "" henry@unix.example unix-retry)
expect "$out" '<- *250 .*queued as' "over the unix socket: retry accepted"
grep -qE '^X-Greylist: delayed [0-9]+ seconds by grey_listing at mx\.e2e\.test; ' "$(delivered unix-retry)" ||
    fail "the retry over the unix socket has no X-Greylist header"
stop_cleanly "$MILTER_PID" "$SOCKDIR/milter" "the milter"
MILTER_PID=
say "ok: Postfix over unix:greylisting/milter (socket 0660 nobody:postfix): deferred, then delivered with X-Greylist"
say "all end-to-end checks passed"
