#!/usr/bin/env bash
# Benchmark: how much of the milter's CPU per decision is the connection pattern itself, the part
# no milter can avoid, measured beside the same for the policy server. Run by hand (not part of
# .ci/run; as root the first time, to install libmilter-dev):
#   bench/milter_floor.sh [DECISIONS] [CONCURRENCY] [ROUNDS]
# Defaults: 20000 decisions, 50 concurrent sessions, 5 rounds. Each round runs, one after the
# other, the loads of bench/milter.sh (every decision a new triplet) against:
#   - policyd: greylisting-policyd, CONCURRENCY persistent connections, one request per decision;
#   - policy-floor: bench/floor_server.rs --protocol policy, the same requests answered with a
#     fixed deferral, no store, no log;
#   - milter, milter-unix: greylisting-milter over TCP and over a unix socket, each decision a
#     full milter session;
#   - milter-floor, milter-floor-unix: bench/floor_server.rs --protocol milter, the same sessions
#     answered (same negotiated steps, a fixed 451 at RCPT, the reset after QUIT) with no store
#     and no log;
#   - libmilter-floor: bench/libmilter_floor.c, the same do-nothing milter on Sendmail's
#     libmilter, the library C milters such as milter-greylist are built on;
#   - milter-greylist, only if PEER_MILTER is set: a command that starts a peer milter listening
#     on 127.0.0.1:$PORT in the foreground (how docs/BENCHMARKS.md built milter-greylist).
# CPU per decision is the server's user + system time during the load (/proc/PID/stat, after
# minus before). Every server runs on a CPU of its own and the loads on the others, unless PIN=0
# (see `pin_cpus` in bench/lib.sh). The summary gives medians and, from them, the lowest ratio to
# policyd any milter could reach on this machine: its floor plus policyd's work above policyd's
# floor, over policyd.
# Port 12043 and the socket $W/floor.sock.
BENCH=milter_floor
. "$(dirname "$0")/lib.sh"
DECISIONS=${1:-20000}
CONCURRENCY=${2:-50}
ROUNDS=${3:-5}
PORT=12043

port_in_use $PORT && fail "port $PORT in use"
if [ ! -e /usr/include/libmilter/mfapi.h ]; then
    [ "$(id -u)" = 0 ] || fail "libmilter-dev is not installed (run once as root to install it)"
    { apt-get update -q && apt-get install -y -q libmilter-dev; } >/dev/null \
        || fail "cannot install libmilter-dev"
fi
command -v cc >/dev/null || fail "no C compiler (cc) for bench/libmilter_floor.c"

cargo build --release --locked --bins -q
build_load policy_load milter_load floor_server
bench_workdir gl-bench-milter-floor
cc -O2 -Wall -o "$W/libmilter_floor" bench/libmilter_floor.c -lmilter -lpthread
# The floor server itself, not through cargo: its PID is the one whose CPU is read.
FLOOR=$(cargo bench --locked --bench floor_server --no-run -q --message-format=json 2>/dev/null \
    | python3 -c 'import json, sys; print(*[m["executable"] for m in map(json.loads, sys.stdin) if m.get("target", {}).get("name") == "floor_server"])')
[ -x "$FLOOR" ] || fail "floor_server was not built"
SOCK="$W/floor.sock"
pin_cpus

# measure ROUND NAME ADDRESS LOAD -- SERVER...: starts SERVER, waits for ADDRESS (host:port or
# unix:/path), runs the LOAD (policy or milter) against it, stops it, and records the server's
# CPU during the load per decision.
measure() {
    local round=$1 name=$2 addr=$3 load=$4 before out cpu n
    shift 5
    rm -f "$SOCK"
    "${ON_SERVER_CPUS[@]}" "$@" 2>"$W/$name.log" &
    PID=$!
    case $addr in
        unix:*) for _ in $(seq 600); do [ -S "${addr#unix:}" ] && break; sleep 0.1; done ;;
        *) wait_port "$PORT" ;;
    esac
    before=$(cpu_s "$PID")
    if [ "$load" = policy ]; then
        out=$(policy_load --addr "$addr" --requests "$DECISIONS" --connections "$CONCURRENCY" \
            --new-ratio 1 --seed "$round" --driver threads)
    else
        out=$(milter_load --addr "$addr" --sessions "$DECISIONS" --concurrency "$CONCURRENCY" --seed "$round")
    fi
    cpu=$(awk -v a="$before" -v b="$(cpu_s "$PID")" 'BEGIN { print b - a }')
    # libmilter finishes its threads before it honours SIGTERM; no server here holds anything
    # worth a graceful stop.
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
    [ "$(field "$out" errors)" = 0 ] || fail "$name: sessions failed: $out"
    n=$(field "$out" requests)
    printf '%s %-18s %s server_cpu_s=%s cpu_per_decision_us=%.1f\n' "$round" "$name" "$out" "$cpu" \
        "$(awk -v c="$cpu" -v n="$n" 'BEGIN { print c * 1e6 / n }')"
    awk -v c="$cpu" -v n="$n" -v r="$round" -v s="$name" 'BEGIN { printf "%s %s %.3f\n", r, s, c * 1e6 / n }' \
        >>"$W/cpu.txt"
}

summary() {
    python3 - "$W/cpu.txt" <<'EOF'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    _, name, cpu = line.split()
    runs[name].append(float(cpu))
m = {name: statistics.median(v) for name, v in runs.items()}
print(f"medians over {len(runs['policyd'])} rounds, server CPU per decision:")
for name in m:
    print(f"  {name:18} {m[name]:6.1f} us  {m[name] / m['policyd']:5.2f}x policyd")
work = m["policyd"] - m["policy-floor"]
print(f"policyd's work above its floor (decision, store, log): {work:.1f} us")
for suffix, how in (("", "TCP"), ("-unix", "a unix socket")):
    milter, floor = m["milter" + suffix], m["milter-floor" + suffix]
    print(f"over {how}: the milter's work above its floor {milter - floor:.1f} us; lowest ratio to "
          f"policyd any milter could reach (its floor + policyd's work) {(floor + work) / m['policyd']:.2f}, "
          f"greylisting-milter {milter / m['policyd']:.2f}")
for peer in ("libmilter-floor", "milter-greylist"):
    if peer in m:
        print(f"greylisting-milter (TCP) against {peer}: {m['milter'] / m[peer]:.2f}x its CPU")
EOF
}

echo "machine: $(nproc) cores, $(cpu_model), load average $(load_average); $(utc_now)"
echo "load: $DECISIONS decisions, $CONCURRENCY concurrent sessions, all new triplets, $ROUNDS rounds"
echo "placement: $(placement)"
TCP="127.0.0.1:$PORT"
for round in $(seq "$ROUNDS"); do
    for kind in p m u; do "$ROOT/target/release/grey_listing" --db "$W/$kind$round.db" -i >/dev/null; done
    export GREY_LISTING_LOG=stderr
    measure "$round" policyd "$TCP" policy -- "$ROOT/target/release/greylisting-policyd" \
        --listen "$TCP" --db "$W/p$round.db" --hostname bench
    measure "$round" policy-floor "$TCP" policy -- "$FLOOR" --protocol policy --listen "$TCP"
    measure "$round" milter "$TCP" milter -- "$ROOT/target/release/greylisting-milter" \
        --listen "$TCP" --db "$W/m$round.db" --hostname bench
    measure "$round" milter-floor "$TCP" milter -- "$FLOOR" --protocol milter --listen "$TCP"
    measure "$round" milter-unix "unix:$SOCK" milter -- "$ROOT/target/release/greylisting-milter" \
        --listen "unix:$SOCK" --db "$W/u$round.db" --hostname bench
    measure "$round" milter-floor-unix "unix:$SOCK" milter -- "$FLOOR" --protocol milter --listen "unix:$SOCK"
    measure "$round" libmilter-floor "$TCP" milter -- "$W/libmilter_floor" "inet:$PORT@127.0.0.1"
    if [ -n "${PEER_MILTER:-}" ]; then
        # shellcheck disable=SC2086 # a command line, split on purpose
        measure "$round" milter-greylist "$TCP" milter -- $PEER_MILTER
    fi
done
summary
