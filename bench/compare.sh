#!/usr/bin/env bash
# Benchmark: two revisions against each other, everything that has a benchmark, in interleaved
# pairs (the machine is shared: both runs of a pair see similar noise, and the spread over pairs
# shows how much). Run by hand (not part of .ci/run); no root needed:
#   bench/compare.sh BASE_REV [HEAD_REV]
# HEAD_REV defaults to HEAD; both are commits (uncommitted changes are not measured). Sizes
# come from the environment (defaults in brackets):
#   PAIRS [8]        interleaved pairs; odd pairs run BASE first, even pairs HEAD first
#   REQUESTS [50000] policyd: requests per run, over CONNECTIONS [50] connections, 30 % new
#                    triplets (bench/policy_load.rs, as bench/policyd_ab.sh)
#   SESSIONS [10000] milter: SMTP sessions per run, CONCURRENCY [50] at a time, each a new
#                    triplet (bench/milter_load.rs over TCP, as bench/milter.sh)
#   RUNS [200]       filter and CLI: runs of each kind per pair (bench/compare.py processes)
#   ONLY ["policyd milter processes"]  which parts run
#   WORK_DIR [/tmp]  where the databases live (/dev/shm takes the disk's noise out of the
#                    write paths, and their fsyncs with it)
#   KEEP_BUILDS [0]  1 keeps the release binaries in CMP_DIR [/tmp/gl-cmp] (bin-<commit>) and
#                    reuses them on the next run; otherwise everything built is removed at exit
# Each revision is exported with `git archive` and built with `cargo build --release --locked
# --bins` in its own CARGO_TARGET_DIR under CMP_DIR; HEAD_REV's tree also builds the two load
# generators, which then drive both sides. The servers run from copies in CMP_DIR; the filter
# and the CLI from copies made afresh for every pair, both builds one after the other (how old
# a binary file is changed its start-up time by up to 0.6 ms on this machine; see "Note on
# binaries" and "Refactor and features since 283f1f0" in docs/BENCHMARKS.md). Every server run
# gets a fresh SQLite database made by its own revision's grey_listing; server CPU per decision
# is user + system time from /proc/PID/stat / decisions.
# Prints one line per run and then, per measure, the medians over pairs, their ranges, HEAD/BASE
# and the per-pair ratios (bench/compare.py summary).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASE_REV=${1:?usage: bench/compare.sh BASE_REV [HEAD_REV]}
HEAD_REV=${2:-HEAD}
PAIRS=${PAIRS:-8}
REQUESTS=${REQUESTS:-50000}
CONNECTIONS=${CONNECTIONS:-50}
SESSIONS=${SESSIONS:-10000}
CONCURRENCY=${CONCURRENCY:-50}
RUNS=${RUNS:-200}
ONLY=${ONLY:-policyd milter processes}
CMP_DIR=${CMP_DIR:-/tmp/gl-cmp}
KEEP_BUILDS=${KEEP_BUILDS:-0}

fail() { echo "bench compare: $*" >&2; exit 1; }
export PYTHONDONTWRITEBYTECODE=1 # compare.py imports filter_bench.py: leave no __pycache__ in bench/
BASE=$(git rev-parse --short=12 "$BASE_REV^{commit}") || fail "no revision $BASE_REV"
HEAD=$(git rev-parse --short=12 "$HEAD_REV^{commit}") || fail "no revision $HEAD_REV"
[ "$BASE" != "$HEAD" ] || fail "BASE_REV and HEAD_REV are the same commit ($BASE)"
for rev in "$BASE" "$HEAD"; do
    if ! git cat-file -e "$rev:src/bin/greylisting-milter.rs" 2>/dev/null && [[ $ONLY == *milter* ]]; then
        echo "bench compare: $rev has no greylisting-milter: the milter part is skipped" >&2
        ONLY=${ONLY//milter/}
    fi
done
mkdir -p "$CMP_DIR"
W=$(mktemp -d "${WORK_DIR:-/tmp}/gl-bench-compare.XXXXXX")
: >"$W/results"
PID=
BUILT=()
BUILDING=() # the source and target directories of a build under way (interrupted: removed)
cleanup() {
    [ -n "$PID" ] && { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
    rm -rf "$W" "${BUILDING[@]}"
    if [ "$KEEP_BUILDS" != 1 ]; then
        for dir in "${BUILT[@]}"; do rm -rf "$dir"; done
    fi
}
trap cleanup EXIT

BINS="grey_listing greylisting-filter greylisting-policyd greylisting-milter"
# build REV [EXTRA CARGO ARGS...]: release binaries of REV in $CMP_DIR/bin-REV (reused if there).
build() {
    local rev=$1 out=$CMP_DIR/bin-$1 src=$CMP_DIR/src-$1 target=$CMP_DIR/target-$1 name
    shift
    BUILT+=("$out")
    # (A build kept from a run where REV was BASE lacks the load generators.)
    if [ -f "$out/.complete" ] && { [ $# = 0 ] || [ -x "$out/milter_load" ]; }; then
        echo "build $rev: reusing $out"
        return
    fi
    BUILDING=("$src" "$target")
    rm -rf "$src" "$out"
    mkdir -p "$src" "$out"
    git archive "$rev" | tar -x -C "$src"
    echo "build $rev: cargo build --release --locked --bins $* (CARGO_TARGET_DIR=$target)"
    (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release --locked -q --bins "$@") \
        || fail "release build of $rev failed"
    for name in $BINS; do
        [ -x "$target/release/$name" ] && cp "$target/release/$name" "$out/"
    done
    if [ $# -gt 0 ]; then
        # The load generators: the newest executable cargo made for each bench target.
        for name in policy_load milter_load; do
            # shellcheck disable=SC2012 # names are cargo's hash-suffixed file names
            cp "$(ls -t "$target"/release/deps/"$name"-* | grep -v '\.d$' | head -1)" "$out/$name"
        done
    fi
    rm -rf "$src" "$target"
    BUILDING=()
    touch "$out/.complete"
}
build "$BASE"
build "$HEAD" --bench policy_load --bench milter_load
A=$CMP_DIR/bin-$BASE
B=$CMP_DIR/bin-$HEAD
LOAD=$B
# The load generator's slow-client mode is not used; its connections and the server's fit in
# the soft limit, but raise it as bench/policyd_ab.sh does.
ulimit -n "$(ulimit -Hn)"

peak_rss_mib() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# The resident set at the end of the load, split into anonymous memory (heap, stacks) and pages
# of mapped files (mostly the binary's own code and data).
rss_split() {
    awk '/^RssAnon|^RssFile/ {
        printf " %s=%.1f", ($1 == "RssAnon:" ? "rss_anon_mib" : "rss_file_mib"), $2 / 1024 }' "/proc/$1/status"
}
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

start() { # start SERVER DIR DB [OPTIONS...]: sets PID and ADDR (port 0: the server logs its port)
    local server=$1 dir=$2 db=$3
    shift 3
    : >"$W/server.log"
    GREY_LISTING_LOG=stderr "$dir/$server" --listen 127.0.0.1:0 --db "$db" "$@" 2>"$W/server.log" &
    PID=$!
    ADDR=
    for _ in $(seq 600); do
        ADDR=$(sed -n 's/.*listening on \([0-9.:]*\),.*/\1/p' "$W/server.log" | head -1)
        [ -n "$ADDR" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    fail "$server in $dir did not start: $(cat "$W/server.log")"
}

stop() { # stop SECTION LABEL PAIR DECISIONS LOAD_OUTPUT: one result line with the server's figures
    local rss cpu split
    rss=$(peak_rss_mib "$PID")
    split=$(rss_split "$PID")
    cpu=$(cpu_s "$PID")
    kill -TERM "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
    [ "$(field "$5" errors)" = 0 ] || fail "$1 $2: errors in the load: $5"
    awk -v s="$1 $2 $3" -v out="$5" -v cpu="$cpu" -v rss="$rss" -v parts="$split" -v n="$4" 'BEGIN {
        printf "%s %s peak_rss_mib=%s%s server_cpu_s=%s cpu_us_per_decision=%.2f\n", s, out, rss, parts, cpu, cpu * 1e6 / n }' \
        | tee -a "$W/results"
}

policyd() { # policyd LABEL DIR PAIR
    rm -f "$W/p.db"*
    "$2/grey_listing" --db "$W/p.db" -i >/dev/null
    start greylisting-policyd "$2" "$W/p.db" --allow-test-time --hostname compare.bench
    local out
    out=$("$LOAD/policy_load" --addr "$ADDR" --requests "$REQUESTS" --connections "$CONNECTIONS" \
        --new-ratio 0.3)
    stop policyd "$1" "$3" "$REQUESTS" "$out"
}

milter() { # milter LABEL DIR PAIR
    rm -f "$W/m.db"*
    "$2/grey_listing" --db "$W/m.db" -i >/dev/null
    start greylisting-milter "$2" "$W/m.db" --hostname compare.bench
    local out
    out=$("$LOAD/milter_load" --addr "$ADDR" --sessions "$SESSIONS" --concurrency "$CONCURRENCY")
    stop milter "$1" "$3" "$SESSIONS" "$out"
}

processes() { # processes PAIR (both builds interleaved within the run)
    rm -rf "$W/proc"
    mkdir "$W/proc"
    python3 "$ROOT/bench/compare.py" processes --build "BASE=$A" --build "HEAD=$B" \
        --runs "$RUNS" --work "$W/proc" --pair "$1" | tee -a "$W/results"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -h | awk '/^Mem:/ {print $2}') RAM; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "BASE = $BASE ($BASE_REV), HEAD = $HEAD ($HEAD_REV); $PAIRS pairs of: $ONLY"
echo "databases in $W ($(df --output=fstype "$W" | tail -n 1))"
echo "sizes: policyd $REQUESTS requests over $CONNECTIONS connections; milter $SESSIONS sessions, $CONCURRENCY at a time; filter and CLI $RUNS runs of each kind per pair"
for pair in $(seq "$PAIRS"); do
    echo "load $pair $(cut -d' ' -f1-3 /proc/loadavg) $(date -u '+%H:%M:%S')" | tee -a "$W/results"
    if [ $((pair % 2)) = 1 ]; then order="BASE HEAD"; else order="HEAD BASE"; fi
    for part in $ONLY; do
        if [ "$part" = processes ]; then
            processes "$pair"
            continue
        fi
        for label in $order; do
            if [ "$label" = BASE ]; then dir=$A; else dir=$B; fi
            "$part" "$label" "$dir" "$pair"
        done
    done
done
echo "end: load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%H:%M UTC')"
echo
python3 "$ROOT/bench/compare.py" summary "$W/results" BASE HEAD
