#!/usr/bin/env bash
# Benchmark: greylisting-milter beside greylisting-policyd on the same machine and the same kind
# of store, in interleaved pairs (the machine is shared: a pair's two runs see similar noise, and
# the spread over pairs shows how much). Run by hand (not part of .ci/run):
#   bench/milter.sh [DECISIONS] [CONCURRENCY] [PAIRS]
# Defaults: 20000 decisions, 50 concurrent sessions, 3 pairs. Every decision is a new triplet
# (deferred, one triplet written) on a fresh SQLite database:
#   - milter: bench/milter_load.rs, each decision a full milter session as Postfix runs it
#     (new connection, negotiate, connect, helo, mail, rcpt, quit), over TCP and over a unix
#     socket;
#   - policyd: bench/policy_load.rs --new-ratio 1 over CONCURRENCY persistent connections, one
#     request per decision (how Postfix uses a policy server), with one blocking thread per
#     connection (--driver threads) as milter_load has: a reply then wakes a blocked thread in
#     both cases, a cost the kernel charges to the server's send.
# Prints decisions/s, p50/p99, peak RSS and server CPU per decision (user + system from
# /proc/PID/stat) for both. Ports 12041 (policyd) and 12042 (milter).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DECISIONS=${1:-20000}
CONCURRENCY=${2:-50}
PAIRS=${3:-3}
POLICY_PORT=12041
MILTER_PORT=12042

fail() { echo "bench milter: $*" >&2; exit 1; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in $POLICY_PORT $MILTER_PORT; do port_in_use $port && fail "port $port in use"; done

cargo build --release --locked --bins -q
for bench in policy_load milter_load; do cargo bench --locked --bench $bench --no-run -q 2>/dev/null; done
policy_load() { cargo bench --locked -q --bench policy_load -- "$@"; }
milter_load() { cargo bench --locked -q --bench milter_load -- "$@"; }

W=$(mktemp -d /tmp/gl-bench-milter.XXXXXX)
PID=
cleanup() {
    if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$W"
}
trap cleanup EXIT

wait_port() { for _ in $(seq 600); do port_in_use "$1" && return 0; sleep 0.1; done; fail "nothing listens on $1"; }
peak_rss_mib() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; PID=; }
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# measure NAME OUTPUT: one result line with the server's CPU per decision and peak RSS.
report() {
    local name=$1 out=$2 cpu=$3 rss=$4 n
    n=$(field "$out" requests)
    awk -v name="$name" -v out="$out" -v cpu="$cpu" -v rss="$rss" -v n="$n" 'BEGIN {
        printf "%-14s %s peak_rss_mib=%s server_cpu_s=%s cpu_per_decision_us=%.0f\n", name, out, rss, cpu, cpu * 1e6 / n }'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load: $DECISIONS decisions, $CONCURRENCY concurrent sessions, all new triplets, $PAIRS pairs"
for pair in $(seq "$PAIRS"); do
    "$ROOT/target/release/grey_listing" --db "$W/p$pair.db" -i >/dev/null
    GREY_LISTING_LOG=stderr "$ROOT/target/release/greylisting-policyd" --listen "127.0.0.1:$POLICY_PORT" \
        --db "$W/p$pair.db" --hostname bench 2>"$W/policyd.log" &
    PID=$!
    wait_port $POLICY_PORT
    out=$(policy_load --addr "127.0.0.1:$POLICY_PORT" --requests "$DECISIONS" --connections "$CONCURRENCY" --new-ratio 1 --seed "$pair" --driver threads)
    rss=$(peak_rss_mib "$PID"); cpu=$(cpu_s "$PID")
    stop "$PID"
    report "$pair policyd" "$out" "$cpu" "$rss"

    "$ROOT/target/release/grey_listing" --db "$W/m$pair.db" -i >/dev/null
    GREY_LISTING_LOG=stderr "$ROOT/target/release/greylisting-milter" --listen "127.0.0.1:$MILTER_PORT" \
        --db "$W/m$pair.db" --hostname bench 2>"$W/milter.log" &
    PID=$!
    wait_port $MILTER_PORT
    out=$(milter_load --addr "127.0.0.1:$MILTER_PORT" --sessions "$DECISIONS" --concurrency "$CONCURRENCY" --seed "$pair")
    rss=$(peak_rss_mib "$PID"); cpu=$(cpu_s "$PID")
    stop "$PID"
    [ "$(field "$out" errors)" = 0 ] || fail "milter sessions failed: $out"
    report "$pair milter" "$out" "$cpu" "$rss"

    # The same over a unix socket (no TCP handshake and teardown per session).
    "$ROOT/target/release/grey_listing" --db "$W/u$pair.db" -i >/dev/null
    GREY_LISTING_LOG=stderr "$ROOT/target/release/greylisting-milter" --listen "unix:$W/milter.sock" \
        --db "$W/u$pair.db" --hostname bench 2>"$W/milter-unix.log" &
    PID=$!
    for _ in $(seq 600); do [ -S "$W/milter.sock" ] && break; sleep 0.1; done
    out=$(milter_load --addr "unix:$W/milter.sock" --sessions "$DECISIONS" --concurrency "$CONCURRENCY" --seed "$pair")
    rss=$(peak_rss_mib "$PID"); cpu=$(cpu_s "$PID")
    stop "$PID"
    [ "$(field "$out" errors)" = 0 ] || fail "milter sessions failed: $out"
    report "$pair milter-unix" "$out" "$cpu" "$rss"
done
