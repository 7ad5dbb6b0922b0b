#!/usr/bin/env bash
# End-to-end test of the Debian package (issue 8): build it with cargo-deb, check it with
# lintian, install it, start the binary the systemd unit names (there is no running systemd on
# CI machines), smoke-test the installed binaries, then remove and purge it.
#
# Needs root (dpkg). Installs what it needs: lintian, adduser, cargo-deb.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "deb.sh must run as root (dpkg -i)"

export DEBIAN_FRONTEND=noninteractive
if ! command -v lintian >/dev/null || ! command -v adduser >/dev/null; then
    log "installing lintian and adduser"
    apt-get update -q >/dev/null
    apt-get install -y -q lintian adduser >/dev/null
fi
if ! command -v cargo-deb >/dev/null; then
    log "installing cargo-deb"
    cargo install cargo-deb --locked --quiet
fi

log "building the package"
rm -rf target/debian
cargo deb --locked >/dev/null
deb=$(ls target/debian/grey-listing_*.deb)
[ -f "$deb" ] || fail "no .deb built"

log "lintian (errors fail the test)"
lintian --fail-on error --suppress-tags-from-file /dev/null "$deb" || fail "lintian reported errors"

# Start from a clean slate: an earlier, interrupted run may have left the package installed.
dpkg --purge grey-listing >/dev/null 2>&1 || true

log "installing"
dpkg -i "$deb" >/dev/null
for bin in grey_listing greylisting-filter greylisting-policyd; do
    [ -x "/usr/bin/$bin" ] || fail "/usr/bin/$bin missing"
    [ -f "/usr/share/man/man1/$bin.1.gz" ] || fail "man page of $bin missing"
done
[ -f /usr/share/bash-completion/completions/grey_listing ] || fail "bash completion missing"
[ -f /usr/share/zsh/vendor-completions/_grey_listing ] || fail "zsh completion missing"
[ -f /usr/share/fish/vendor_completions.d/grey_listing.fish ] || fail "fish completion missing"
getent passwd greylisting >/dev/null || fail "system user greylisting not created"
[ "$(stat -c '%a %U %G' /var/lib/grey_listing)" = "2770 greylisting greylisting" ] \
    || fail "/var/lib/grey_listing is $(stat -c '%a %U %G' /var/lib/grey_listing), want 2770 greylisting greylisting"
unit=$(ls /lib/systemd/system/greylisting-policyd.service /usr/lib/systemd/system/greylisting-policyd.service 2>/dev/null | head -n1)
[ -n "$unit" ] || fail "greylisting-policyd.service not installed"
for directive in 'User=greylisting' 'ProtectSystem=strict' 'ReadWritePaths=/var/lib/grey_listing' \
    'NoNewPrivileges=yes' 'Restart=on-failure'; do
    grep -qx "$directive" "$unit" || fail "unit lacks $directive"
done
ls /lib/systemd/system/grey-listing-purge.timer /usr/lib/systemd/system/grey-listing-purge.timer >/dev/null 2>&1 \
    || fail "purge timer not installed"

log "smoke test: CLI as root on the packaged database"
grey_listing --info-server | grep -qx 'SUCCESS: Gathering of server wide information complete.' \
    || fail "grey_listing --info-server failed"
grey_listing -u -grey-interval 0 >/dev/null
[ "$(stat -c '%a %G' /var/lib/grey_listing/greylist.db)" = "660 greylisting" ] \
    || fail "database is $(stat -c '%a %G' /var/lib/grey_listing/greylist.db), want 660 greylisting"

log "smoke test: the policy server as the unit runs it"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The unit's own command line, on a free port (10023 may be taken on a shared machine).
cmd=${exec_start/127.0.0.1:10023/127.0.0.1:$port}
runuser -u greylisting -- env GREY_LISTING_DB=/var/lib/grey_listing/greylist.db GREY_LISTING_LOG=stderr $cmd \
    >/tmp/grey-listing-deb-policyd.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
ask() {
    python3 - "$port" "$1" <<'PY'
import socket, sys, time
port, ip = int(sys.argv[1]), sys.argv[2]
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("policy server did not start")
s.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=%s\n"
           "client_name=unknown\nsender=a@sender.example\nrecipient=u@local.example\n\n" % ip).encode())
print(s.recv(4096).decode().splitlines()[0])
PY
}
first=$(ask 198.51.100.7)
[[ "$first" == "action=DEFER_IF_PERMIT"* ]] || fail "first request answered '$first', want DEFER_IF_PERMIT"
second=$(ask 198.51.100.7)
[[ "$second" == "action=PREPEND X-Greylist: delayed"* ]] || fail "retry answered '$second', want PREPEND X-Greylist"
kill "$pid"; wait "$pid" 2>/dev/null || true
trap - EXIT

log "smoke test: the filter as a Plesk mail handler, run as the greylisting user"
set +e
printf 'Received: from mx.sender.example (HELO mx) (203.0.113.9)\n  by mx with SMTP\nSubject: hi\n\nbody\n' |
    runuser -u greylisting -- env -i PATH=/usr/bin:/bin GREY_LISTING_LOG=stderr /usr/bin/greylisting-filter ctx a@b.example u@local.example \
    2>/tmp/grey-listing-deb-filter.err
status=$?
set -e
[ "$status" = 2 ] && [ "$(tail -n1 /tmp/grey-listing-deb-filter.err)" = DEFER ] \
    || fail "filter answered status $status: $(cat /tmp/grey-listing-deb-filter.err)"

log "remove keeps the database, purge deletes it"
dpkg -r grey-listing >/dev/null
[ -f /var/lib/grey_listing/greylist.db ] || fail "dpkg -r removed the database"
[ ! -e /usr/bin/grey_listing ] || fail "dpkg -r left /usr/bin/grey_listing"
dpkg --purge grey-listing >/dev/null
[ ! -e /var/lib/grey_listing ] || fail "dpkg --purge left /var/lib/grey_listing"

echo "deb.sh: 1 passed, 0 failed"
