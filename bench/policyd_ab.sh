#!/usr/bin/env bash
# Benchmark: two builds of greylisting-policyd against each other, interleaved (A, B, A, B, ...)
# so that load from other processes on the machine hits both alike, with the same load generator
# (bench/policy_load.rs) over loopback. Run by hand (not part of .ci/run); no root needed:
#   bench/policyd_ab.sh BASE_DIR [REQUESTS] [CONNECTIONS] [ROUNDS] [SLOW_CLIENTS]
# BASE_DIR holds the other build's greylisting-policyd and grey_listing (e.g. a release build of
# an older commit); the build under test is target/release (NEW_DIR overrides). Defaults: 50000
# requests over 50 connections, 30 % new triplets, 3 rounds; then the same rounds again with
# SLOW_CLIENTS (default 4096) connections held open beside the load, each trickling a byte a
# second into an unfinished request (--slow-clients). Prints one line per run (decisions/s,
# p50/p99 latency, errors, peak RSS, server CPU) and the median ratio per scenario.
# A_ARGS and B_ARGS add server options to one side (BASE_DIR and NEW_DIR may then be the same
# build): B_ARGS="--metrics-listen 127.0.0.1:0" compares metrics on with off; while a server
# serves metrics, they are scraped every SCRAPE_EVERY seconds (default 1) during its run.
BENCH=policyd_ab
. "$(dirname "$0")/lib.sh"
BASE=${1:?usage: bench/policyd_ab.sh BASE_DIR [REQUESTS] [CONNECTIONS] [ROUNDS] [SLOW_CLIENTS]}
REQUESTS=${2:-50000}
CONNECTIONS=${3:-50}
ROUNDS=${4:-3}
SLOW=${5:-4096}
NEW=${NEW_DIR:-$ROOT/target/release}

for dir in "$BASE" "$NEW"; do
    [ -x "$dir/greylisting-policyd" ] && [ -x "$dir/grey_listing" ] || fail "no build in $dir"
done
build_load policy_load
# The slow clients and the server each need more than 4,096 descriptors.
ulimit -n "$(ulimit -Hn)"

bench_workdir gl-bench-policyd-ab

start() { # start BUILD_DIR DB [SERVER OPTIONS...]: sets PID and ADDR (port 0: the server reports its port)
    : >"$W/policyd.log"
    local dir=$1 db=$2
    shift 2
    # shellcheck disable=SC2086 # the options are words on purpose
    GREY_LISTING_LOG=stderr "$dir/greylisting-policyd" --listen 127.0.0.1:0 --db "$db" \
        --allow-test-time --hostname ab.bench "$@" 2>"$W/policyd.log" &
    PID=$!
    ADDR=$(TRIES=300 listening_address "$W/policyd.log")
    [ -n "$ADDR" ] || fail "server in $1 did not start"
}

run() { # run SCENARIO LABEL BUILD_DIR [LOAD OPTIONS...]
    local scenario=$1 label=$2 dir=$3 server_args
    shift 3
    rm -f "$W/g.db"*
    "$BASE/grey_listing" --db "$W/g.db" -i >/dev/null
    if [ "$label" = A ]; then server_args=${A_ARGS:-}; else server_args=${B_ARGS:-}; fi
    # shellcheck disable=SC2086 # the options are words on purpose
    start "$dir" "$W/g.db" $server_args
    local metrics scraper=
    sleep 0.2
    metrics=$(sed -n 's|.*Serving metrics at \(http://[^ ]*\).*|\1|p' "$W/policyd.log" | head -1)
    if [ -n "$metrics" ]; then
        (while curl -sf -o /dev/null "$metrics"; do sleep "${SCRAPE_EVERY:-1}"; done) &
        scraper=$!
    fi
    local out
    out=$(measured "$PID" policy_load --addr "$ADDR" --requests "$REQUESTS" --connections "$CONNECTIONS" --new-ratio 0.3 "$@")
    [ -n "$scraper" ] && { kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; }
    stop_servers
    echo "$scenario $label $out" | tee -a "$W/results"
}

echo "machine: $(nproc) cores, $(cpu_model), $(ram_total) RAM; load average $(load_average); $(utc_now)"
echo "load: $REQUESTS requests, $CONNECTIONS connections, 30 % new triplets, $ROUNDS rounds; A = $BASE, B = $NEW"
for round in $(seq "$ROUNDS"); do
    run plain A "$BASE"
    run plain B "$NEW"
done
if [ "$SLOW" -gt 0 ]; then
    for round in $(seq "$ROUNDS"); do
        run "slow-$SLOW" A "$BASE" --slow-clients "$SLOW"
        run "slow-$SLOW" B "$NEW" --slow-clients "$SLOW"
    done
fi
# Median decisions/s and p99 per scenario and side, and the ratio B/A.
awk '{
    key = $1 " " $2
    for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    n[key]++; tput[key, n[key]] = v["decisions_per_s"]; p99[key, n[key]] = v["p99_ms"]
    scen[$1] = 1
}
function median(arr, key, count,    i, j, t, a) {
    for (i = 1; i <= count; i++) a[i] = arr[key, i]
    for (i = 1; i <= count; i++) for (j = i + 1; j <= count; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return count % 2 ? a[(count + 1) / 2] : (a[count / 2] + a[count / 2 + 1]) / 2
}
END {
    for (s in scen) {
        ta = median(tput, s " A", n[s " A"]); tb = median(tput, s " B", n[s " B"])
        pa = median(p99, s " A", n[s " A"]); pb = median(p99, s " B", n[s " B"])
        printf "%s median: A %.0f/s p99 %.3f ms, B %.0f/s p99 %.3f ms, throughput B/A %.3f\n", s, ta, pa, tb, pb, (ta > 0 ? tb / ta : 0)
    }
}' "$W/results"
