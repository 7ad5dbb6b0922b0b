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
BENCH=postgres_mailpath
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-1000}
MESSAGES=${MESSAGES:-2000}
REQUESTS=${REQUESTS:-100000}
CONNECTIONS=${CONNECTIONS:-50}

pg_install

cargo build --release --locked --bins -q
build_load policy_load

bench_workdir grey_listing-bench-mailpath
t=$W
chown postgres "$t"
trap 'stop_servers; pg_stop "$t"; rm -rf "$t"' EXIT
port=$(free_port)
pg_start "$t" "$port" "-c max_connections=200"
admin="postgres://postgres@127.0.0.1:$port/postgres"
psql -XAtq "$admin" -c 'CREATE DATABASE filter_bench' >/dev/null
psql -XAtq "$admin" -c 'CREATE DATABASE policyd_bench' >/dev/null

machine_markdown
echo "- PostgreSQL: $("$PG_BIN/postgres" --version), same machine, TCP over loopback"
echo "- load average before: $(load_average)"

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
policyd_run() { # policyd_run LABEL DB
    local listen
    listen=$(free_port)
    GREY_LISTING_LOG=stderr "$ROOT/target/release/greylisting-policyd" --listen "127.0.0.1:$listen" \
        --db "$2" --allow-test-time --hostname bench 2>"$t/policyd-$1.log" &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$listen"
    local out
    out=$(policy_load --addr "127.0.0.1:$listen" --requests "$REQUESTS" --connections "$CONNECTIONS" --new-ratio 0.3)
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
echo "- load average after: $(load_average)"
