#!/usr/bin/env bash
# greylisting-policyd as on a real server, end to end: a private Postfix asks it over a unix
# socket laid out as the package documents it (a directory owned by the server's user, group
# postfix, mode 2750, inside Postfix's queue directory; --socket-group postfix; main.cf
# `check_policy_service unix:greylisting/socket`), with the server run as an unprivileged user
# under umask 077 and real signals. Asserts:
#   - the socket is 0660 <user>:postfix whatever the umask, and Postfix's smtpd connects: the
#     first attempt gets 4xx 4.7.1, the retry is delivered with X-Greylist;
#   - without membership of the group, --socket-group postfix refuses to start (exit 2) and says
#     to add SupplementaryGroups=postfix; a regular file at the socket's path is left alone;
#   - SIGHUP: still serving; a new `db =` in the GREY_LISTING_CONF file takes effect; an invalid
#     file is logged and the previous configuration kept;
#   - the database deleted under the server: noticed within 15 s, a new one is created and used;
#   - SIGTERM: exit 0 and the socket is removed.
# Needs root (Postfix's master, switching users). Port: E2E_UNIX_SMTP_PORT (default 2528).
set -euo pipefail
cd "$(dirname "$0")/../.."
SMTP_PORT=${E2E_UNIX_SMTP_PORT:-2528}

E2E_NAME=policyd-unix
source tests/e2e/lib.sh

export PATH="$PATH:/usr/sbin:/sbin"
require_root "Postfix's master runs as root; the server runs as another user"
ensure_packages postfix:postfix swaks:swaks setpriv:util-linux
ports_free "$SMTP_PORT"
build_debug_binaries

# The server's user: nobody, without any supplementary group unless given one.
unprivileged_ids

P=$(mktemp -d /tmp/gl-e2e-policyd-unix.XXXXXX)
chmod 755 "$P"
POLICYD_PID=
POSTFIX_STARTED=
cleanup() {
    local rc=$?
    if [ -n "$POSTFIX_STARTED" ]; then postfix -c "$P/etc" stop >/dev/null 2>&1 || true; fi
    if [ -n "$POLICYD_PID" ]; then kill -TERM "$POLICYD_PID" 2>/dev/null || true; wait "$POLICYD_PID" 2>/dev/null || true; fi
    if [ $rc -ne 0 ]; then
        echo "---- policyd log"; tail -n 60 "$P/policyd.log" 2>/dev/null || true
        echo "---- maillog"; tail -n 40 "$P/maillog" 2>/dev/null || true
    fi
    rm -rf "$P"
    exit $rc
}
trap cleanup EXIT

# as_server CMD...: runs CMD as the server's user (no supplementary group).
as_server() { setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups -- "$@"; }

# The private Postfix; its queue directory is what `unix:greylisting/socket` is relative to.
postfix_config "$P" "$SMTP_PORT" mx.e2e.test local.example u
SOCKDIR="$P/queue/greylisting"
SOCKET="$SOCKDIR/socket"
install -d -o nobody -g postfix -m 2750 "$SOCKDIR"
cat >>"$P/etc/main.cf" <<EOF
smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service unix:greylisting/socket
EOF

# The databases and the configuration file naming one of them.
install -d -o nobody -g nogroup -m 2770 "$P/db"
CONF="$P/grey_listing.conf"
echo "db = $P/db/a.db" >"$CONF"
chmod 644 "$CONF"
as_server "$BIN/grey_listing" --db "$P/db/a.db" -u -grey-interval 0 >/dev/null
as_server "$BIN/grey_listing" --db "$P/db/b.db" -u -status off >/dev/null

say "--socket-group without membership of the group is refused"
status=0
as_server env GREY_LISTING_LOG=stderr GREY_LISTING_CONF="$CONF" "$BIN/greylisting-policyd" \
    --listen "unix:$SOCKET" --socket-group postfix 2>"$P/refused.log" || status=$?
[ "$status" = 2 ] || fail "exit $status without membership of postfix: $(cat "$P/refused.log")"
grep -q "add SupplementaryGroups=postfix to the systemd unit" "$P/refused.log" ||
    fail "no SupplementaryGroups hint: $(cat "$P/refused.log")"
[ ! -e "$SOCKET" ] || fail "a socket was left at $SOCKET"
say "ok: refused with the SupplementaryGroups hint"

say "a regular file at the socket's path is left alone"
echo keep >"$P/regular"
status=0
as_server env GREY_LISTING_LOG=stderr "$BIN/greylisting-policyd" --db "$P/db/a.db" \
    --listen "unix:$P/regular" 2>"$P/regular.log" || status=$?
[ "$status" = 2 ] && [ "$(cat "$P/regular")" = keep ] ||
    fail "exit $status, file now '$(cat "$P/regular")': $(cat "$P/regular.log")"
grep -q "not a socket (a regular file)" "$P/regular.log" || fail "unclear refusal: $(cat "$P/regular.log")"
say "ok: refused, the file is intact"

say "starting the server as nobody with SupplementaryGroups=postfix, umask 077"
setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --groups="$POSTFIX_GID" -- \
    env GREY_LISTING_LOG=stderr GREY_LISTING_CONF="$CONF" \
    sh -c 'umask 077; exec "$@"' sh "$BIN/greylisting-policyd" \
    --listen "unix:$SOCKET" --socket-group postfix --hostname mx.e2e.test 2>"$P/policyd.log" &
POLICYD_PID=$!
for _ in $(seq 100); do grep -qs "listening on" "$P/policyd.log" && break; sleep 0.1; done
grep -q "listening on unix:$SOCKET, database $P/db/a.db" "$P/policyd.log" || fail "policyd did not start"
[ "$(stat -c '%a %u %G' "$SOCKET")" = "660 $RUN_UID postfix" ] ||
    fail "socket is $(stat -c '%a %u %G' "$SOCKET"), want 660 $RUN_UID postfix"
say "ok: socket 0660 nobody:postfix under umask 077"

POSTFIX_STARTED=1
postfix_start "$P" "$SMTP_PORT"

DEFERRED='<\*\* *4[0-9][0-9] 4\.7\.1 .*Service unavailable - try again later'
ACCEPTED='<- *250 .*queued as'
# wait_log TEXT: waits up to 15 s (three times the 5 s bound) for a log line.
wait_log() {
    for _ in $(seq 150); do grep -qF -- "$1" "$P/policyd.log" && return 0; sleep 0.1; done
    fail "policyd did not log '$1' within 15 s"
}
alive() { kill -0 "$POLICYD_PID" 2>/dev/null || fail "policyd is gone after $1"; }

out=$(send mx.sender.example 198.51.100.7 "" alice@sender.example first)
expect "$out" "$DEFERRED" "Postfix asked over unix:greylisting/socket: first attempt deferred"
out=$(send mx.sender.example 198.51.100.7 "" alice@sender.example retry)
expect "$out" "$ACCEPTED" "retry accepted"
grep -qs '^X-Greylist: delayed [0-9]* seconds by grey_listing at mx\.e2e\.test; ' \
    "$(delivered retry)" || fail "delivered retry has no X-Greylist"
say "ok: delivered with X-Greylist"

say "SIGHUP with a new db = line"
echo "db = $P/db/b.db" >"$CONF"
kill -HUP "$POLICYD_PID"
wait_log "database changed from $P/db/a.db to $P/db/b.db"
alive SIGHUP
out=$(send mx.sender.example 198.51.100.7 "" bob@sender.example after-hup)
expect "$out" "$ACCEPTED" "after SIGHUP the new database (greylisting off) decides"
grep -q "action=pass, reason=disabled, .*sender=bob@sender.example" "$P/policyd.log" ||
    fail "the decision after SIGHUP was not taken on b.db"

say "SIGHUP with an invalid configuration file"
echo "db =" >"$CONF"
kill -HUP "$POLICYD_PID"
wait_log "SIGHUP: keeping the previous configuration (database $P/db/b.db)"
alive "an invalid configuration"
out=$(send mx.sender.example 198.51.100.7 "" carol@sender.example after-bad-hup)
expect "$out" "$ACCEPTED" "the previous configuration (b.db) still decides"

say "the database deleted under the server"
rm -f "$P/db/b.db" "$P/db/b.db-wal" "$P/db/b.db-shm"
wait_log "database $P/db/b.db was deleted: creating a new one and using it"
wait_log "database $P/db/b.db reopened"
[ -f "$P/db/b.db" ] || fail "no new database at $P/db/b.db"
out=$(send mx.sender.example 198.51.100.7 "" dave@sender.example after-rm)
expect "$out" "$DEFERRED" "the new database (defaults: greylisting on) decides"
as_server "$BIN/grey_listing" --db "$P/db/b.db" -u -status off >/dev/null
out=$(send mx.sender.example 198.51.100.7 "" erin@sender.example after-rm-cli)
expect "$out" "$ACCEPTED" "a CLI change on the new file applies"

say "SIGTERM"
stop_cleanly "$POLICYD_PID" "$SOCKET" policyd
POLICYD_PID=
say "ok: exit 0, socket removed"
say "all end-to-end checks passed"
