#!/usr/bin/env bash
# Store benchmark (issue 7), run by hand, not by .ci/run: SQLite and PostgreSQL in the same run
# (bench/store.rs: open, per-message check latency, N-thread throughput, PostgreSQL round trip).
# Starts a throwaway PostgreSQL 15 cluster on a free loopback port (DESIGN.md §9) and removes it.
# Record the printed figures in docs/BENCHMARKS.md under "## PostgreSQL store".
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "bench/store.sh must run as root (su postgres)" >&2; exit 1; }
bin=/usr/lib/postgresql/15/bin
if [ ! -x "$bin/initdb" ]; then
    apt-get update
    apt-get install -y postgresql-15 postgresql-client-15
fi

t=$(mktemp -d /tmp/grey_listing-bench-pg.XXXXXX)
chown postgres "$t"
trap 'su postgres -c "$bin/pg_ctl -D $t/data stop -m fast -w" >/dev/null 2>&1 || true; rm -rf "$t"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
su postgres -c "$bin/initdb -D $t/data -A trust -U postgres" >"$t/initdb.log" 2>&1
# Debian's defaults (fsync and synchronous_commit on): the durable setting a site would run.
su postgres -c "$bin/pg_ctl -D $t/data -o '-p $port -k $t -c listen_addresses=127.0.0.1' -l $t/log start -w" >/dev/null

echo "== machine"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "nproc: $(nproc)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
free -h | sed -n 1,2p
echo "postgres: $("$bin/postgres" --version)"

GREY_LISTING_BENCH_PG="postgres://postgres@127.0.0.1:$port/postgres" cargo bench --locked --bench store
