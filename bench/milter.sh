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
# /proc/PID/stat) for both. The server runs on a CPU of its own and the load on the others, unless
# PIN=0 (see `pin_cpus` in bench/lib.sh). Ports 12041 (policyd) and 12042 (milter).
BENCH=milter
. "$(dirname "$0")/lib.sh"
DECISIONS=${1:-20000}
CONCURRENCY=${2:-50}
PAIRS=${3:-3}
POLICY_PORT=12041
MILTER_PORT=12042

for port in $POLICY_PORT $MILTER_PORT; do port_in_use $port && fail "port $port in use"; done

cargo build --release --locked --bins -q
build_load policy_load milter_load
bench_workdir gl-bench-milter
pin_cpus

# report PAIR SERVER LINE: a result line with the server's CPU per decision (LINE from
# `measured`); the unrounded figure is kept for the summary.
report() {
    awk -v name="$1 $2" -v out="$3" -v cpu="$(field "$3" server_cpu_s)" -v n="$(field "$3" requests)" 'BEGIN {
        printf "%-14s %s cpu_per_decision_us=%.0f\n", name, out, cpu * 1e6 / n }'
    awk -v cpu="$(field "$3" server_cpu_s)" -v n="$(field "$3" requests)" -v pair="$1" -v server="$2" \
        'BEGIN { printf "%s %s %.3f\n", pair, server, cpu * 1e6 / n }' >>"$W/cpu.txt"
}

# The medians over the pairs, and each milter's ratio to policyd within its pair.
summary() {
    python3 - "$W/cpu.txt" <<'EOF'
import collections, statistics, sys
pairs = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    pair, server, cpu = line.split()
    pairs[pair][server] = float(cpu)
policyd = [p["policyd"] for p in pairs.values()]
print(f"summary over {len(pairs)} pairs: policyd {statistics.median(policyd):.1f} us per decision (median)")
for server in ("milter", "milter-unix"):
    cpus = [p[server] for p in pairs.values()]
    ratios = sorted(p[server] / p["policyd"] for p in pairs.values())
    print(f"  {server}: {statistics.median(cpus):.1f} us per decision (median); "
          f"ratio to policyd in the same pair: median {statistics.median(ratios):.2f}, "
          f"range {ratios[0]:.2f}-{ratios[-1]:.2f}, at most 2.0 in "
          f"{sum(r <= 2.0 for r in ratios)} of {len(ratios)}")
EOF
}

echo "machine: $(nproc) cores, $(cpu_model), load average $(load_average); $(utc_now)"
echo "load: $DECISIONS decisions, $CONCURRENCY concurrent sessions, all new triplets, $PAIRS pairs"
echo "placement: $(placement)"
for pair in $(seq "$PAIRS"); do
    "$ROOT/target/release/grey_listing" --db "$W/p$pair.db" -i >/dev/null
    GREY_LISTING_LOG=stderr "${ON_SERVER_CPUS[@]}" "$ROOT/target/release/greylisting-policyd" --listen "127.0.0.1:$POLICY_PORT" \
        --db "$W/p$pair.db" --hostname bench 2>"$W/policyd.log" &
    PID=$!
    wait_port $POLICY_PORT
    out=$(measured "$PID" policy_load --addr "127.0.0.1:$POLICY_PORT" --requests "$DECISIONS" --connections "$CONCURRENCY" --new-ratio 1 --seed "$pair" --driver threads)
    stop_servers
    report "$pair" policyd "$out"

    "$ROOT/target/release/grey_listing" --db "$W/m$pair.db" -i >/dev/null
    GREY_LISTING_LOG=stderr "${ON_SERVER_CPUS[@]}" "$ROOT/target/release/greylisting-milter" --listen "127.0.0.1:$MILTER_PORT" \
        --db "$W/m$pair.db" --hostname bench 2>"$W/milter.log" &
    PID=$!
    wait_port $MILTER_PORT
    out=$(measured "$PID" milter_load --addr "127.0.0.1:$MILTER_PORT" --sessions "$DECISIONS" --concurrency "$CONCURRENCY" --seed "$pair")
    stop_servers
    [ "$(field "$out" errors)" = 0 ] || fail "milter sessions failed: $out"
    report "$pair" milter "$out"

    # The same over a unix socket (no TCP handshake and teardown per session).
    "$ROOT/target/release/grey_listing" --db "$W/u$pair.db" -i >/dev/null
    GREY_LISTING_LOG=stderr "${ON_SERVER_CPUS[@]}" "$ROOT/target/release/greylisting-milter" --listen "unix:$W/milter.sock" \
        --db "$W/u$pair.db" --hostname bench 2>"$W/milter-unix.log" &
    PID=$!
    for _ in $(seq 600); do [ -S "$W/milter.sock" ] && break; sleep 0.1; done
    out=$(measured "$PID" milter_load --addr "unix:$W/milter.sock" --sessions "$DECISIONS" --concurrency "$CONCURRENCY" --seed "$pair")
    stop_servers
    [ "$(field "$out" errors)" = 0 ] || fail "milter sessions failed: $out"
    report "$pair" milter-unix "$out"
done
summary
