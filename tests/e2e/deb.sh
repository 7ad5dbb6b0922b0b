#!/usr/bin/env bash
# End-to-end test of the Debian package (issue 8): build it with cargo-deb, check it with
# lintian (errors fail), install it with dpkg -i, start the binary the systemd unit names — as the
# unit's user, with the unit's environment and arguments, parsed from the installed unit file,
# since CI machines run no systemd — and smoke-test the installed binaries (CLI, a policy request
# over loopback, a Plesk-style filter run); then check that dpkg -r keeps the database and
# dpkg --purge removes it.
#
# Needs root (dpkg). Installs what it lacks (lintian, adduser, cargo-deb) and fails loudly when
# it cannot. Port: E2E_DEB_POLICY_PORT (default 12024). Builds a release binary (cargo deb).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
POLICY_PORT=${E2E_DEB_POLICY_PORT:-12024}
CARGO_DEB_VERSION=3.8.0

E2E_NAME=deb
source tests/e2e/lib.sh

require_root "dpkg -i"
export PATH="$PATH:/usr/sbin:/sbin"
ensure_packages lintian:lintian adduser:adduser runuser:util-linux
if ! cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
    say "installing cargo-deb $CARGO_DEB_VERSION"
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet ||
        fail "cargo install cargo-deb failed"
fi
ports_free "$POLICY_PORT"

# An earlier, interrupted run may have left the package installed.
dpkg --purge grey-listing >/dev/null 2>&1 || true
# A database directory not made by the package (e.g. the CLI run as root without --db) would keep
# its files' owners and hide what the package sets up.
[ ! -e /var/lib/grey_listing ] ||
    fail "/var/lib/grey_listing exists without the package; move it away first: $(ls -la /var/lib/grey_listing)"

say "building the package"
# cargo deb prints the path of the .deb (under CARGO_TARGET_DIR when set) on stdout.
build_log=$(mktemp /tmp/gl-e2e-deb-build.XXXXXX)
deb=$(cargo deb --locked 2>"$build_log" | tail -n1) || { cat "$build_log" >&2; fail "cargo deb failed"; }
rm -f "$build_log"
[ -f "$deb" ] || fail "cargo deb built no package (got '$deb')"

version=$(dpkg-deb -f "$deb" Version)
changelog_version=$(sed -n '1s/^grey-listing (\([^)]*\)).*/\1/p' packaging/debian/changelog)
[ "$version" = "$changelog_version" ] ||
    fail "packaging/debian/changelog starts with $changelog_version, the package is $version"

say "lintian (errors fail the test)"
lintian --fail-on error "$deb" 2>/dev/null || fail "lintian reported errors: $(lintian "$deb" 2>&1)"

W=$(mktemp -d /tmp/gl-e2e-deb.XXXXXX)
chmod 755 "$W"
POLICYD_PID=
cleanup() {
    local rc=$?
    if [ -n "$POLICYD_PID" ]; then kill -TERM "$POLICYD_PID" 2>/dev/null || true; wait "$POLICYD_PID" 2>/dev/null || true; fi
    if [ $rc -ne 0 ]; then
        echo "---- policyd log"; cat "$W/policyd.log" 2>/dev/null || true
        echo "---- filter stderr"; cat "$W/filter.err" 2>/dev/null || true
    fi
    dpkg --purge grey-listing >/dev/null 2>&1 || true
    rm -rf "$W"
    exit $rc
}
trap cleanup EXIT

say "installing $deb"
dpkg -i "$deb" >/dev/null || fail "dpkg -i failed"
for bin in grey_listing greylisting-filter greylisting-policyd greylisting-milter; do
    [ -x "/usr/bin/$bin" ] || fail "/usr/bin/$bin missing"
    [ -f "/usr/share/man/man1/$bin.1.gz" ] || fail "man page of $bin missing"
done
[ -f /usr/share/bash-completion/completions/grey_listing ] || fail "bash completion missing"
[ -f /usr/share/zsh/vendor-completions/_grey_listing ] || fail "zsh completion missing"
[ -f /usr/share/fish/vendor_completions.d/grey_listing.fish ] || fail "fish completion missing"
for daemon in greylisting-policyd greylisting-milter; do
    [ -f "/usr/share/bash-completion/completions/$daemon" ] || fail "bash completion of $daemon missing"
    [ -f "/usr/share/zsh/vendor-completions/_$daemon" ] || fail "zsh completion of $daemon missing"
    [ -f "/usr/share/fish/vendor_completions.d/$daemon.fish" ] || fail "fish completion of $daemon missing"
done
getent passwd greylisting >/dev/null || fail "system user greylisting not created"
getent group greylisting >/dev/null || fail "system group greylisting not created"
[ "$(stat -c '%a %U %G' /var/lib/grey_listing)" = "2770 greylisting greylisting" ] ||
    fail "/var/lib/grey_listing is $(stat -c '%a %U %G' /var/lib/grey_listing), want 2770 greylisting greylisting"
[ "$(stat -c '%a %U %G' /etc/grey_listing.conf)" = "640 root greylisting" ] ||
    fail "/etc/grey_listing.conf is $(stat -c '%a %U %G' /etc/grey_listing.conf), want 640 root greylisting"
grep -qx '/etc/grey_listing.conf' /var/lib/dpkg/info/grey-listing.conffiles ||
    fail "/etc/grey_listing.conf is not a conffile"

unit=
for dir in /usr/lib/systemd/system /lib/systemd/system; do
    [ -f "$dir/greylisting-policyd.service" ] && { unit="$dir/greylisting-policyd.service"; break; }
done
[ -n "$unit" ] || fail "greylisting-policyd.service not installed"
unit_dir=$(dirname "$unit")
for directive in 'User=greylisting' 'ProtectSystem=strict' 'ReadWritePaths=/var/lib/grey_listing' \
    'NoNewPrivileges=yes' 'Restart=always' 'ExecReload=/bin/kill -HUP $MAINPID' \
    'ReadWritePaths=-/var/spool/postfix/greylisting'; do
    grep -qx "$directive" "$unit" || fail "unit lacks $directive"
done
[ -f "$unit_dir/grey-listing-purge.timer" ] || fail "purge timer not installed"
grep -qx 'OnCalendar=daily' "$unit_dir/grey-listing-purge.timer" || fail "purge timer is not daily"
grep -qx 'ExecStart=/usr/bin/grey_listing --purge' "$unit_dir/grey-listing-purge.service" ||
    fail "purge service does not run grey_listing --purge"
# The milter's unit is installed for sites that enable it; it reloads on SIGHUP.
[ -f "$unit_dir/greylisting-milter.service" ] || fail "greylisting-milter.service not installed"
grep -qx 'ExecStart=/usr/bin/greylisting-milter --listen 127.0.0.1:10024' "$unit_dir/greylisting-milter.service" ||
    fail "milter unit does not start greylisting-milter on 127.0.0.1:10024"
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit_dir/greylisting-milter.service" ||
    fail "milter unit has no ExecReload"
# Its unix sockets: Postfix's directory in the queue directory, Sendmail's runtime directory,
# both writable under ProtectSystem=strict; restarted whatever ended it.
for directive in 'ProtectSystem=strict' 'Restart=always' 'RuntimeDirectory=greylisting-milter' \
    'ReadWritePaths=-/var/spool/postfix/greylisting'; do
    grep -qx "$directive" "$unit_dir/greylisting-milter.service" || fail "milter unit lacks $directive"
done
grep -q '^ExecStartPre=+.*install -d -o greylisting -g postfix -m 2750 /var/spool/postfix/greylisting' \
    "$unit_dir/greylisting-milter.service" || fail "milter unit does not make the Postfix socket directory"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$unit" "$unit_dir/grey-listing-purge.service" \
        "$unit_dir/grey-listing-purge.timer" "$unit_dir/greylisting-milter.service" ||
        fail "systemd-analyze verify rejects the units"
fi

if [ -d /run/systemd/system ]; then
    # Where systemd runs (not on this project's CI machines), the package has started the unit.
    systemctl is-active --quiet greylisting-policyd.service ||
        fail "greylisting-policyd.service is not active: $(systemctl status greylisting-policyd.service 2>&1)"
    systemctl is-enabled --quiet grey-listing-purge.timer || fail "grey-listing-purge.timer is not enabled"
    if systemctl is-enabled --quiet greylisting-milter.service; then
        fail "greylisting-milter.service is enabled; it is installed for sites to enable"
    fi
fi

say "smoke test: the CLI as root on the packaged database"
/usr/bin/grey_listing --info-server >"$W/info.txt" || fail "grey_listing --info-server failed"
grep -qx 'SUCCESS: Gathering of server wide information complete.' "$W/info.txt" ||
    fail "unexpected --info-server output: $(cat "$W/info.txt")"
/usr/bin/grey_listing -u -grey-interval 0 >/dev/null || fail "grey_listing -u failed"
[ "$(stat -c '%a %G' /var/lib/grey_listing/greylist.db)" = "660 greylisting" ] ||
    fail "database is $(stat -c "%a %G" /var/lib/grey_listing/greylist.db), want 660 greylisting ($(ls -la /var/lib/grey_listing))"

# The unit's directive values, as systemd reads them (last one wins; Environment= accumulates).
unit_value() { sed -n "s/^$1=//p" "$unit" | tail -n1; }
unit_user=$(unit_value User)
unit_group=$(unit_value Group)
unit_umask=$(unit_value UMask)
exec_start=$(unit_value ExecStart)
mapfile -t unit_env < <(sed -n 's/^Environment=//p' "$unit")
[ -n "$unit_user" ] && [ -n "$exec_start" ] || fail "cannot read User= and ExecStart= from $unit"
read -r -a start_argv <<<"$exec_start"
# Only the port changes (10023 may be taken by postgrey on a shared machine).
for i in "${!start_argv[@]}"; do
    [ "${start_argv[$i]}" = 127.0.0.1:10023 ] && start_argv[$i]="127.0.0.1:$POLICY_PORT"
done
[[ " ${start_argv[*]} " == *" 127.0.0.1:$POLICY_PORT "* ]] ||
    fail "ExecStart '$exec_start' does not listen on 127.0.0.1:10023"

say "smoke test: starting '${start_argv[*]}' as $unit_user:${unit_group:-$unit_user}, umask ${unit_umask:-0022}"
runuser -u "$unit_user" -g "${unit_group:-$unit_user}" -- \
    env "${unit_env[@]}" GREY_LISTING_LOG=stderr \
    sh -c 'umask "$0"; exec "$@"' "${unit_umask:-0022}" "${start_argv[@]}" \
    2>"$W/policyd.log" &
POLICYD_PID=$!
for _ in $(seq 100); do grep -qs "listening on" "$W/policyd.log" && break; sleep 0.1; done
grep -q "listening on 127.0.0.1:$POLICY_PORT, database /var/lib/grey_listing/greylist.db" "$W/policyd.log" ||
    fail "policyd did not start on the database /etc/grey_listing.conf names"

# One policy request over loopback; prints the action line.
ask() {
    local reply
    exec 3<>"/dev/tcp/127.0.0.1/$POLICY_PORT" || fail "cannot connect to policyd"
    printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=%s\nclient_name=unknown\nsender=a@sender.example\nrecipient=u@local.example\n\n' "$1" >&3
    IFS= read -r -t 10 reply <&3 || fail "no answer from policyd"
    exec 3>&-
    printf '%s\n' "$reply"
}
first=$(ask 198.51.100.7)
[[ "$first" == "action=DEFER_IF_PERMIT 4.7.1 "* ]] || fail "first request answered '$first', want DEFER_IF_PERMIT"
second=$(ask 198.51.100.7)
[[ "$second" == "action=PREPEND X-Greylist: delayed "* ]] || fail "retry answered '$second', want PREPEND X-Greylist"
grep -q "action=defer, reason=new, client_name=unknown, client_address=198.51.100.7" "$W/policyd.log" ||
    fail "policyd did not log the decision"
# The server process runs as the unit's user (runuser's child execs into it).
server_pid=$(pgrep -u "$unit_user" -f "^${start_argv[0]} " || true)
[ -n "$server_pid" ] || fail "no greylisting-policyd process runs as $unit_user"
# systemctl reload: the unit's ExecReload= with systemd's $MAINPID; the server serves on.
read -r -a reload_argv <<<"$(unit_value ExecReload)"
[ ${#reload_argv[@]} -gt 0 ] || fail "no ExecReload= in $unit"
"${reload_argv[@]/\$MAINPID/$server_pid}" || fail "ExecReload '${reload_argv[*]}' failed"
for _ in $(seq 100); do grep -qs "SIGHUP: configuration read again" "$W/policyd.log" && break; sleep 0.1; done
grep -q "SIGHUP: configuration read again, reopening the database /var/lib/grey_listing/greylist.db" "$W/policyd.log" ||
    fail "policyd did not reload on ExecReload"
kill -0 "$server_pid" 2>/dev/null || fail "policyd ended on ExecReload"
third=$(ask 198.51.100.7)
[ "$third" = "action=DUNNO" ] || fail "request after the reload answered '$third', want DUNNO"
# SIGTERM to the server itself (as systemd's KillMode sends it); runuser passes its status on.
kill -TERM "$server_pid"
wait "$POLICYD_PID" || fail "policyd did not exit 0 on SIGTERM"
POLICYD_PID=

say "the unit's ExecStartPre makes the socket directory for Postfix"
pre=$(unit_value ExecStartPre)
[[ "$pre" == +* ]] || fail "ExecStartPre '$pre' does not run as root ('+')"
/bin/sh -c "$(sed -n "s/^ExecStartPre=+\/bin\/sh -c '\(.*\)'\$/\1/p" "$unit" | tail -n1)" ||
    fail "ExecStartPre failed"
if getent group postfix >/dev/null && [ -d /var/spool/postfix ]; then
    [ "$(stat -c '%a %U %G' /var/spool/postfix/greylisting)" = "2750 greylisting postfix" ] ||
        fail "/var/spool/postfix/greylisting is $(stat -c '%a %U %G' /var/spool/postfix/greylisting), want 2750 greylisting postfix"
fi

say "smoke test: the filter as a Plesk mail handler (bare environment, the greylisting user)"
status=0
printf 'Received: from mx.sender.example (HELO mx) (203.0.113.9)\n  by mx with SMTP\nSubject: hi\n\nbody\n' |
    runuser -u greylisting -- env -i PATH=/usr/bin:/bin GREY_LISTING_LOG=stderr \
        /usr/bin/greylisting-filter ctx a@b.example u@local.example 2>"$W/filter.err" || status=$?
[ "$status" = 2 ] && [ "$(tail -n1 "$W/filter.err")" = DEFER ] ||
    fail "filter exited $status with: $(cat "$W/filter.err")"
# Each LOG line carries the time and `greylisting filter[<pid>]: ` as syslog would.
sed -E 's/^LOG [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+[+-][0-9]{2}:[0-9]{2} greylisting filter\[[0-9]+\]: /LOG /' "$W/filter.err" |
    grep -qx 'LOG action=defer, reason=new, client_name=mx.sender.example, client_address=203.0.113.9, sender=a@b.example, recipient=u@local.example' ||
    fail "filter did not log its decision"

say "smoke test: the daily purge as its unit runs it"
purge_unit="$unit_dir/grey-listing-purge.service"
purge_user=$(sed -n 's/^User=//p' "$purge_unit" | tail -n1)
read -r -a purge_argv <<<"$(sed -n 's/^ExecStart=//p' "$purge_unit" | tail -n1)"
[ -n "$purge_user" ] && [ ${#purge_argv[@]} -gt 0 ] || fail "cannot read User= and ExecStart= from $purge_unit"
runuser -u "$purge_user" -- "${purge_argv[@]}" >"$W/purge.out" 2>&1 ||
    fail "'${purge_argv[*]}' as $purge_user failed: $(cat "$W/purge.out")"

say "dpkg -r keeps the database, dpkg --purge removes it"
dpkg -r grey-listing >/dev/null || fail "dpkg -r failed"
[ ! -e /usr/bin/grey_listing ] || fail "dpkg -r left /usr/bin/grey_listing"
[ -f /var/lib/grey_listing/greylist.db ] || fail "dpkg -r removed the database"
dpkg --purge grey-listing >/dev/null || fail "dpkg --purge failed"
[ ! -e /var/lib/grey_listing ] || fail "dpkg --purge left /var/lib/grey_listing"
[ ! -e /etc/grey_listing.conf ] || fail "dpkg --purge left /etc/grey_listing.conf"
[ ! -e /var/spool/postfix/greylisting ] || fail "dpkg --purge left /var/spool/postfix/greylisting"
getent passwd greylisting >/dev/null && fail "dpkg --purge left the greylisting user"

say "PASS"
