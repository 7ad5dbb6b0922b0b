#!/usr/bin/env bash
# The PostgreSQL store against a real server (issue 7): installs Debian's PostgreSQL 15 if it is
# missing, starts a throwaway cluster on a free loopback port in a temporary directory (DESIGN.md §9),
# runs the PostgreSQL variants of the behaviour tests (store, CLI, filter, policyd, extensions,
# transfer), the multi-MX test and the fault tests (own clusters) with
# GREY_LISTING_TEST_PG pointing at it, then stops the cluster and deletes it (also on failure).
#
# Needs root (apt-get; initdb runs as the postgres user). Fails loudly on any error.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "postgres.sh must run as root (apt-get, su postgres)"

bin=/usr/lib/postgresql/15/bin
export DEBIAN_FRONTEND=noninteractive
if [ ! -x "$bin/initdb" ] || [ ! -x "$bin/pg_ctl" ] || ! command -v psql >/dev/null \
    || ! command -v python3 >/dev/null; then
    log "installing postgresql (15)"
    apt-get update -q >/dev/null
    apt-get install -y -q postgresql-15 postgresql-client-15 python3 >/dev/null
fi
[ -x "$bin/initdb" ] || fail "no $bin/initdb after installing postgresql-15"
id postgres >/dev/null 2>&1 || fail "the postgresql package did not create the postgres user"

t=$(mktemp -d /tmp/grey_listing-pg.XXXXXX)
chown postgres "$t"
cleanup() {
    su postgres -c "$bin/pg_ctl -D $t/data stop -m fast -w" >/dev/null 2>&1 || true
    rm -rf "$t"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "starting a throwaway cluster in $t on 127.0.0.1:$port"
su postgres -c "$bin/initdb -D $t/data -A trust -U postgres" >"$t/initdb.log" 2>&1 \
    || { cat "$t/initdb.log" >&2; fail "initdb failed"; }
# max_connections: tests run in parallel and several hold 64+ connections at once (64 filter
# processes, 64 store writers, two policy servers), more than the default 100.
su postgres -c "$bin/pg_ctl -D $t/data -o '-p $port -k $t -c listen_addresses=127.0.0.1 -c max_connections=300' -l $t/log start -w" >/dev/null \
    || { cat "$t/log" >&2; fail "the cluster did not start"; }

url="postgres://postgres@127.0.0.1:$port/postgres"
psql -XAtq "$url" -c 'SELECT 1' | grep -qx 1 || fail "cannot query the cluster at $url"

log "PostgreSQL variants of the behaviour tests, and the faults test (own cluster)"
# The PostgreSQL variants are #[ignore]d in a plain `cargo test`; here they must all run and
# pass. Each creates its own database, so they run in parallel like the SQLite ones.
GREY_LISTING_TEST_PG="$url" GREY_LISTING_TEST_PG_BIN="$bin" \
    cargo test --locked --test integration -- --ignored postgres 2>&1 | tee "$t/test.log"
ran=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$t/test.log" | head -1)
[ -n "$ran" ] && [ "$ran" -ge 124 ] || fail "expected at least 124 PostgreSQL tests to pass, got '${ran:-none}'"

log "grey_listing through GREY_LISTING_DB and the db = line of the configuration file"
cargo build --locked --bin grey_listing
gl="${CARGO_TARGET_DIR:-$PWD/target}/debug/grey_listing"
psql -XAtq "$url" -c 'CREATE DATABASE gl_e2e' >/dev/null
e2e="postgres://postgres:not-shown@127.0.0.1:$port/gl_e2e"
printf 'db = %s\n' "$e2e" >"$t/grey_listing.conf"
GREY_LISTING_CONF="$t/grey_listing.conf" "$gl" -u -status off -blacklist 'add:*@e2e.example' \
    | grep -qx 'SUCCESS: Update of server-wide settings complete.' || fail "update through the conf file"
GREY_LISTING_CONF=/nonexistent GREY_LISTING_DB="$e2e" "$gl" -i >"$t/info.txt" || fail "-i through GREY_LISTING_DB"
grep -qx 'Grey listing checking  disabled' "$t/info.txt" || fail "setting not stored in PostgreSQL"
grep -qx '\*@e2e.example' "$t/info.txt" || fail "pattern not stored in PostgreSQL"

log "the same database through the cluster's unix socket"
socket=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$t")
"$gl" --db "postgres://postgres@$socket:$port/gl_e2e" -i | cmp -s - "$t/info.txt" \
    || fail "unix-socket URL shows a different configuration"

log "--migrate-store PostgreSQL -> SQLite -> a second PostgreSQL database"
psql -XAtq "$url" -c 'CREATE DATABASE gl_e2e_back' >/dev/null
"$gl" --migrate-store "$e2e" "$t/copy.db" >"$t/migrate.txt" || fail "migrate to SQLite"
grep -q '^SUCCESS: Migration of store complete.$' "$t/migrate.txt" || fail "no SUCCESS line"
if grep -q not-shown "$t/migrate.txt"; then fail "password printed by --migrate-store"; fi
"$gl" --migrate-store "$t/copy.db" "postgres://postgres@127.0.0.1:$port/gl_e2e_back" >/dev/null || fail "migrate back"
"$gl" --db "postgres://postgres@127.0.0.1:$port/gl_e2e_back" -i | cmp -s - "$t/info.txt" \
    || fail "configuration differs after PostgreSQL -> SQLite -> PostgreSQL"

log "PostgreSQL store: OK ($ran tests, CLI and --migrate-store)"
