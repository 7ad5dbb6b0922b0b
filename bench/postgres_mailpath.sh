#!/usr/bin/env bash
# Mail-path benchmark of the PostgreSQL store (issue 7), run by hand as root, not by .ci/run.
# SQLite and PostgreSQL in the SAME run, on the same machine:
#   1. greylisting-filter whole-process latency (new / known triplet, median and p99, interleaved
#      with /bin/true and with each other; bench/filter_bench.py --compare) and throughput with
#      16 concurrent filter processes;
#   2. greylisting-policyd decisions/s and latency under the same load generator as
#      bench/policyd.sh (bench/policy_load.rs), once on SQLite, once on PostgreSQL.
# Starts a throwaway PostgreSQL 15 cluster (Debian defaults: fsync and synchronous_commit on) on
# a free loopback port and removes it. Prints the load average before and after.
#   RUNS=1000 MESSAGES=2000 REQUESTS=100000 CONNECTIONS=50 bench/postgres_mailpath.sh
# Figures go to docs/BENCHMARKS.md, section "PostgreSQL store".
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-1000}
MESSAGES=${MESSAGES:-2000}
REQUESTS=${REQUESTS:-100000}
CONNECTIONS=${CONNECTIONS:-50}

fail() { echo "bench postgres_mailpath: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (su postgres)"
bin=/usr/lib/postgresql/15/bin
if [ ! -x "$bin/initdb" ] || ! command -v python3 >/dev/null; then
    apt-get update -q >/dev/null
    apt-get install -y -q postgresql-15 postgresql-client-15 python3 >/dev/null
fi

cargo build --release --locked --bins -q
cargo bench --locked --bench policy_load --no-run -q 2>/dev/null || cargo bench --locked --bench policy_load --no-run
load() { cargo bench --locked -q --bench policy_load -- "$@"; }

t=$(mktemp -d /tmp/grey_listing-bench-mailpath.XXXXXX)
chown postgres "$t"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    su postgres -c "$bin/pg_ctl -D $t/data stop -m fast -w" >/dev/null 2>&1 || true
    rm -rf "$t"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
su postgres -c "$bin/initdb -D $t/data -A trust -U postgres" >"$t/initdb.log" 2>&1
su postgres -c "$bin/pg_ctl -D $t/data -o '-p $port -k $t -c listen_addresses=127.0.0.1 -c max_connections=200' -l $t/log start -w" >/dev/null
admin="postgres://postgres@127.0.0.1:$port/postgres"
psql -XAtq "$admin" -c 'CREATE DATABASE filter_bench' >/dev/null
psql -XAtq "$admin" -c 'CREATE DATABASE policyd_bench' >/dev/null

echo "## Machine"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- nproc: $(nproc)"
echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- memory: $(free -h | awk '/^Mem:/ {print $2 " total, " $7 " available"}')"
echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "- PostgreSQL: $("$bin/postgres" --version), same machine, TCP over loopback"
echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# CPU seconds (user + system) the cluster's exited processes (backends) have used so far.
pg_children_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($16 + $17) / hz }' "/proc/$(head -1 "$t/data/postmaster.pid")/stat"; }

echo
echo "### Where a filter run's time goes on PostgreSQL"
echo
echo "- $(python3 bench/pg_connect_cost.py "$port" 500)"

pg_cpu_0=$(pg_children_cpu)
python3 bench/filter_bench.py \
    --filter "$ROOT/target/release/greylisting-filter" \
    --cli "$ROOT/target/release/grey_listing" \
    --work "$t" --runs "$RUNS" --messages "$MESSAGES" \
    --compare "SQLite=$t/filter.db" \
    --compare "PostgreSQL=postgres://postgres@127.0.0.1:$port/filter_bench"

echo
echo "### greylisting-policyd ($REQUESTS requests, $CONNECTIONS connections, 30 % new triplets)"
echo
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 600); do port_in_use "$1" && return 0; sleep 0.1; done; fail "nothing listens on $1"; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
policyd_run() { # policyd_run LABEL DB
    local listen
    listen=$(free_port)
    GREY_LISTING_LOG=stderr "$ROOT/target/release/greylisting-policyd" --listen "127.0.0.1:$listen" \
        --db "$2" --allow-test-time --hostname bench 2>"$t/policyd-$1.log" &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$listen"
    local out
    out=$(load --addr "127.0.0.1:$listen" --requests "$REQUESTS" --connections "$CONNECTIONS" --new-ratio 0.3)
    local cpu
    cpu=$(cpu_s "$pid")
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    echo "$1 $out server_cpu_s=$cpu"
}
pg_cpu_1=$(pg_children_cpu)
sqlite_line=$(policyd_run SQLite "$t/policyd.db")
pg_line=$(policyd_run PostgreSQL "postgres://postgres@127.0.0.1:$port/policyd_bench")
sleep 1 # the backend of policyd's connection exits after policyd; let the postmaster reap it
pg_cpu_2=$(pg_children_cpu)
echo "$sqlite_line"
echo "$pg_line"
awk -v s="$sqlite_line" -v p="$pg_line" 'BEGIN {
    n = split(s, a, " "); for (i = 2; i <= n; i++) { split(a[i], kv, "="); S[kv[1]] = kv[2] }
    n = split(p, a, " "); for (i = 2; i <= n; i++) { split(a[i], kv, "="); P[kv[1]] = kv[2] }
    printf "PostgreSQL / SQLite: decisions/s x%.2f, p50 %.3f vs %.3f ms, p99 %.3f vs %.3f ms, server CPU per decision %.0f vs %.0f us\n",
        P["decisions_per_s"] / S["decisions_per_s"], P["p50_ms"], S["p50_ms"], P["p99_ms"], S["p99_ms"],
        P["server_cpu_s"] * 1e6 / P["requests"], S["server_cpu_s"] * 1e6 / S["requests"]
}'
echo
echo "- PostgreSQL backends' CPU (user+system): filter phase (both latency and throughput, PostgreSQL runs only) $(awk -v a="$pg_cpu_0" -v b="$pg_cpu_1" 'BEGIN { printf "%.1f s", b - a }'), policyd phase $(awk -v a="$pg_cpu_1" -v b="$pg_cpu_2" 'BEGIN { printf "%.1f s", b - a }')"
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
