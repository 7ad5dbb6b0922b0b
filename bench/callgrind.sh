#!/usr/bin/env bash
# Instructions per decision, counted by valgrind's callgrind: repeatable on a loaded machine,
# where wall and CPU times scatter by 2x. Counts user-space instructions only (not the kernel's
# share: system calls, TCP, fsync). Run by hand (not part of .ci/run):
#   bench/callgrind.sh [SMALL] [LARGE] [ROUNDS]
# Each server runs under callgrind twice, for SMALL and for LARGE decisions (defaults 2000 and
# 6000), every decision a new triplet on a fresh SQLite database; (Ir(LARGE) - Ir(SMALL)) /
# (LARGE - SMALL) is the cost of one decision with start-up and shutdown taken out. Servers:
#   - policyd, metrics off and metrics on (--metrics-listen; scraped once per run);
#   - milter over TCP and over a unix socket, every decision a full milter session.
# Uses target/release (BIN_DIR overrides) and the release-built load generators; KINDS picks
# servers (default "policyd policyd-metrics milter milter-unix").
BENCH=callgrind
. "$(dirname "$0")/lib.sh"
SMALL=${1:-2000}
LARGE=${2:-6000}
ROUNDS=${3:-1}
BIN=${BIN_DIR:-$PWD/target/release}
CONNECTIONS=${CONNECTIONS:-20}
command -v valgrind >/dev/null || fail "valgrind is needed"
[ -x "$BIN/greylisting-policyd" ] || { echo "no build in $BIN (cargo build --release)" >&2; exit 1; }
# The load generators' executables, run directly (cargo would rebuild them whenever the library
# changed, in the middle of the measurement); built when missing.
load_bin() { find target/release/deps -maxdepth 1 -type f -executable -name "$1-*" -printf '%T@ %p\n' | sort -rn | head -1 | cut -d' ' -f2; }
for bench in policy_load milter_load; do
    [ -n "$(load_bin $bench)" ] || cargo bench --locked --bench $bench --no-run -q
done
POLICY_LOAD=$(load_bin policy_load)
MILTER_LOAD=$(load_bin milter_load)
bench_workdir gl-bench-callgrind

# run KIND N: starts the server KIND under callgrind, drives N decisions, stops it; prints Ir.
run() {
    local kind=$1 n=$2 db="$W/$1-$2.db" out="$W/$1-$2.cg" log="$W/$1-$2.log" addr listen extra=()
    rm -f "$db" "$out" "$W/milter.sock"
    "$BIN/grey_listing" --db "$db" -i >/dev/null
    case $kind in
        policyd | policyd-metrics)
            [ "$kind" = policyd-metrics ] && extra=(--metrics-listen 127.0.0.1:0)
            GREY_LISTING_LOG=stderr valgrind --tool=callgrind --callgrind-out-file="$out" \
                "$BIN/greylisting-policyd" --listen 127.0.0.1:0 --db "$db" --hostname bench \
                "${extra[@]}" 2>"$log" &
            ;;
        milter | milter-unix)
            listen=127.0.0.1:0
            [ "$kind" = milter-unix ] && listen="unix:$W/milter.sock"
            GREY_LISTING_LOG=stderr valgrind --tool=callgrind --callgrind-out-file="$out" \
                "$BIN/greylisting-milter" --listen "$listen" --db "$db" --hostname bench 2>"$log" &
            ;;
    esac
    PID=$!
    addr=$(listening_address "$log")
    [ -n "$addr" ] || { cat "$log" >&2; fail "$kind did not start"; }
    case $kind in
        policyd*) "$POLICY_LOAD" --addr "$addr" --requests "$n" \
            --connections "$CONNECTIONS" --new-ratio 1 --seed 1 >"$W/load.out" ;;
        milter*) "$MILTER_LOAD" --addr "$addr" --sessions "$n" \
            --concurrency "$CONNECTIONS" --seed 1 >"$W/load.out" ;;
    esac
    if [ "$kind" = policyd-metrics ]; then
        local maddr
        maddr=$(sed -n 's|.*Serving metrics at http://\([^/]*\)/metrics.*|\1|p' "$log" | head -1)
        curl -sf "http://$maddr/metrics" |
            awk -v n="$n" '/^greylisting_decisions_total\{/ { sum += $2 } END { exit sum != n }' ||
            fail "the metrics did not count $n decisions"
    fi
    grep -Eq 'errors=0( |$)' "$W/load.out" || fail "$kind load failed: $(cat "$W/load.out")"
    stop_servers
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

echo "machine: $(nproc) cores, $(cpu_model); $(valgrind --version); $(utc_now)"
echo "decisions: $SMALL and $LARGE, $CONNECTIONS concurrent connections/sessions, all new triplets"
for round in $(seq "$ROUNDS"); do
    for kind in ${KINDS:-policyd policyd-metrics milter milter-unix}; do
        small=$(run "$kind" "$SMALL")
        large=$(run "$kind" "$LARGE")
        awk -v k="$kind" -v r="$round" -v s="$small" -v l="$large" -v a="$SMALL" -v b="$LARGE" 'BEGIN {
            printf "round %s %-16s Ir(%d)=%d Ir(%d)=%d Ir_per_decision=%.0f\n", r, k, a, s, b, l, (l - s) / (b - a) }'
    done
done
