#!/usr/bin/env bash
# Benchmark: greylisting-policyd vs postgrey in the same run, same load generator
# (bench/policy_load.rs) over loopback. Run by hand as root (not part of .ci/run):
#   bench/policyd.sh [REQUESTS] [CONNECTIONS] [PREFILL]
# Defaults: 200000 requests, 50 connections, 30 % new triplets, then the same again against
# stores pre-filled with 1000000 triplets. Prints decisions/s, p50/p99 latency and peak RSS for
# both, and the ratios. Ports 12030 (postgrey) and 12031 (ours); never 10023.
# LOAD_DRIVER=threads runs the load generator with one thread per connection (runs before
# 2026-11-23 14:00 UTC) instead of its default single epoll thread (events).
BENCH=policyd
. "$(dirname "$0")/lib.sh"
REQUESTS=${1:-200000}
CONNECTIONS=${2:-50}
PREFILL=${3:-1000000}
DRIVER=${LOAD_DRIVER:-events}
PG_PORT=12030
OUR_PORT=12031

[ "$(id -u)" -eq 0 ] || fail "run as root (postgrey runs as user postgrey)"
if ! [ -x /usr/sbin/postgrey ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgrey >/dev/null
fi
for port in $PG_PORT $OUR_PORT; do port_in_use $port && fail "port $port in use"; done

cargo build --release --locked --bins -q
build_load policy_load

bench_workdir gl-bench-policyd
chmod 755 "$W"
stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }

start_postgrey() { # start_postgrey DBDIR
    /usr/sbin/postgrey --inet="127.0.0.1:$PG_PORT" --dbdir="$1" --pidfile="$W/postgrey.pid" \
        --delay=300 --hostname=pg.bench >"$W/postgrey.log" 2>&1 &
    PG_PID=$!
    PIDS+=("$PG_PID")
    wait_port $PG_PORT
}
start_ours() { # start_ours DB
    GREY_LISTING_LOG=stderr "$ROOT/target/release/greylisting-policyd" --listen "127.0.0.1:$OUR_PORT" \
        --db "$1" --allow-test-time --hostname ours.bench 2>"$W/policyd.log" &
    OUR_PID=$!
    PIDS+=("$OUR_PID")
    wait_port $OUR_PORT
}

# Pre-fills postgrey's Berkeley DB with N passed triplets, the way postgrey stores them.
prefill_postgrey() { # prefill_postgrey DBDIR N
    su postgrey -s /bin/sh -c "perl -e '
        use BerkeleyDB;
        my (\$dir, \$n) = @ARGV;
        my \$env = BerkeleyDB::Env->new(-Home => \$dir,
            -Flags => DB_CREATE|DB_RECOVER|DB_INIT_TXN|DB_INIT_MPOOL|DB_INIT_LOG) or die \"env: \$!\";
        my %db;
        tie(%db, \"BerkeleyDB::Btree\", -Filename => \"postgrey.db\", -Flags => DB_CREATE, -Env => \$env)
            or die \"db: \$!\";
        my \$t = 1800000000 - 86400;
        for my \$i (0 .. \$n - 1) {
            my \$net = sprintf(\"172.%d.%d.0\", 16 + (\$i >> 16) % 16, (\$i >> 8) & 255);
            \$db{\"\$net/prefill\$i\@pdomain\" . (\$i % 5000) . \".example/user\" . (\$i % 1000) . \"\@local.example\"} = (\$t) . \",\" . (\$t + 600);
        }
        untie %db;
        \$env->txn_checkpoint(0, 0, 0);
    ' '$1' '$2'"
}

run_pair() { # run_pair LABEL OUR_DB PG_DIR
    local label=$1 ours pg
    start_ours "$2"
    ours=$(measured "$OUR_PID" policy_load --addr "127.0.0.1:$OUR_PORT" --requests "$REQUESTS" --connections "$CONNECTIONS" --new-ratio 0.3 --driver "$DRIVER")
    stop "$OUR_PID"
    start_postgrey "$3"
    pg=$(measured "$PG_PID" policy_load --addr "127.0.0.1:$PG_PORT" --requests "$REQUESTS" --connections "$CONNECTIONS" --new-ratio 0.3 --driver "$DRIVER")
    stop "$PG_PID"
    echo "$label ours     $ours"
    echo "$label postgrey $pg"
    awk -v label="$label" -v ours="$ours" -v pg="$pg" 'BEGIN {
        n = split(ours, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); o[kv[1]] = kv[2] }
        n = split(pg, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); p[kv[1]] = kv[2] }
        printf "%s ratio    throughput x%.1f, p50 %.3f vs %.3f ms, p99 %.3f vs %.3f ms, peak RSS %s vs %s MiB, server CPU per decision %.0f vs %.0f us (x%.1f)\n",
            label, o["decisions_per_s"] / p["decisions_per_s"], o["p50_ms"], p["p50_ms"],
            o["p99_ms"], p["p99_ms"], o["peak_rss_mib"], p["peak_rss_mib"],
            o["server_cpu_s"] * 1e6 / o["requests"], p["server_cpu_s"] * 1e6 / p["requests"],
            (p["server_cpu_s"] / p["requests"]) / (o["server_cpu_s"] / o["requests"])
    }'
}

echo "machine: $(nproc) cores, $(cpu_model), $(ram_total) RAM; $(utc_now)"
echo "load: $REQUESTS requests, $CONNECTIONS connections, 30 % new triplets, $DRIVER driver; postgrey $(dpkg-query -W -f '${Version}' postgrey 2>/dev/null)"

# Run 1: empty stores.
"$ROOT/target/release/grey_listing" --db "$W/empty.db" -i >/dev/null
mkdir "$W/pg-empty" && chown postgrey "$W/pg-empty"
run_pair "empty" "$W/empty.db" "$W/pg-empty"

# Run 2: stores pre-filled with $PREFILL triplets.
"$ROOT/target/release/grey_listing" --db "$W/full.db" -i >/dev/null
policy_load --prefill-sqlite "$W/full.db" --prefill-count "$PREFILL" >/dev/null
mkdir "$W/pg-full" && chown postgrey "$W/pg-full"
prefill_postgrey "$W/pg-full" "$PREFILL"
run_pair "prefilled-$PREFILL" "$W/full.db" "$W/pg-full"
