# Shared by the benchmark scripts in bench/; sourced, never run: `. "$(dirname "$0")/lib.sh"`
# after setting BENCH (the script's name in its error lines). Leaves the shell in the repository's
# root with ROOT set to it, and `set -euo pipefail` on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

fail() { echo "bench ${BENCH:?}: $*" >&2; exit 1; }

# Servers a script started: PID (one at a time) and PIDS (several); `stop_servers` ends them all.
PID=
PIDS=()
stop_servers() {
    local pid
    for pid in ${PID:+"$PID"} ${PIDS[@]+"${PIDS[@]}"}; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PID=
}
# bench_workdir PREFIX: a fresh directory /tmp/PREFIX.XXXXXX in W; on exit the servers are
# stopped and W removed.
bench_workdir() {
    W=$(mktemp -d "/tmp/$1.XXXXXX")
    trap 'stop_servers; rm -rf "$W"' EXIT
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 600); do port_in_use "$1" && return 0; sleep 0.1; done; fail "nothing listens on $1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# listening_address LOG: waits (up to TRIES tenths of a second, default 600) for a server started
# with port 0 to log its address, and prints it; prints nothing if it never did.
listening_address() {
    local addr= _
    for _ in $(seq "${TRIES:-600}"); do
        addr=$(sed -n 's/.*listening on \([^,]*\),.*/\1/p' "$1" | head -1)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    echo "$addr"
}

peak_rss_mib() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# CPU seconds (user + system) the process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
# field LINE KEY: the value of KEY in a load generator's `key=value` line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# measured PID COMMAND...: runs the load COMMAND against the server PID and prints the load's
# line with the server's peak RSS and CPU so far appended (`peak_rss_mib=` `server_cpu_s=`).
measured() {
    local pid=$1 out rss cpu
    shift
    out=$("$@") || return
    rss=$(peak_rss_mib "$pid")
    cpu=$(cpu_s "$pid")
    echo "$out peak_rss_mib=$rss server_cpu_s=$cpu"
}

# The load generators (bench/policy_load.rs, bench/milter_load.rs) through cargo, built first by
# `build_load NAME...` so that their build's output does not mix with the figures.
build_load() {
    local bench
    for bench in "$@"; do
        cargo bench --locked --bench "$bench" --no-run -q 2>/dev/null || cargo bench --locked --bench "$bench" --no-run
    done
}
policy_load() { on_load_cpus cargo bench --locked -q --bench policy_load -- "$@"; }
milter_load() { on_load_cpus cargo bench --locked -q --bench milter_load -- "$@"; }

# Where the server under test and the load generator run, for the scripts that compare servers'
# CPU per decision (milter.sh, milter_floor.sh), which call `pin_cpus` first. Pinned (the default,
# PIN=1), the server gets the first CPU this shell may use to itself and the load generator the
# others: otherwise the load's threads, woken by the server's every reply, are often run on the
# server's CPU and preempt it, and the server's CPU time grows by the cache it refills after each
# preemption. That cost belongs to the load generator, and the milter's load (a connection per
# decision) causes more of it than the policy load (persistent connections): an asymmetry a real
# MTA does not have, as its own SMTP session weighs the same next to either daemon. PIN=0 runs
# both where the scheduler puts them, as these scripts did before. A server is started as
# `"${ON_SERVER_CPUS[@]}" CMD... &` (a command, not a function, so that $! is the server's PID:
# taskset and env exec it); the load functions above run on the load's CPUs; `placement`
# describes it for the output's first lines.
ON_SERVER_CPUS=(env)
SERVER_CPU=
LOAD_CPUS=
pin_cpus() {
    [ "${PIN:-1}" = 0 ] && return 0
    [ "${PIN:-1}" = 1 ] || fail "PIN must be 0 or 1, not '$PIN'"
    command -v taskset >/dev/null || fail "taskset (util-linux) is missing; PIN=0 runs unpinned"
    read -r SERVER_CPU LOAD_CPUS < <(python3 -c 'import os
cpus = sorted(os.sched_getaffinity(0))
print(cpus[0], ",".join(map(str, cpus[1:])))')
    [ -n "$LOAD_CPUS" ] || fail "pinning needs two CPUs or more; PIN=0 runs unpinned"
    ON_SERVER_CPUS=(taskset -c "$SERVER_CPU")
}
on_load_cpus() { if [ -n "$LOAD_CPUS" ]; then taskset -c "$LOAD_CPUS" "$@"; else "$@"; fi; }
placement() {
    if [ -n "$LOAD_CPUS" ]; then
        echo "server pinned to CPU $SERVER_CPU, load generator to CPUs $LOAD_CPUS (PIN=1)"
    else
        echo "server and load generator unpinned (PIN=0)"
    fi
}

utc_now() { date -u '+%Y-%m-%d %H:%M UTC'; }
cpu_model() { grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'; }
ram_total() { free -h | awk '/^Mem:/ {print $2}'; }
load_average() { cut -d' ' -f1-3 /proc/loadavg; }
# The "== machine" lines the CLI and store benchmarks open with.
machine_plain() {
    echo "== machine"
    echo "date: $(utc_now)"
    echo "nproc: $(nproc)"
    echo "cpu: $(cpu_model)"
    free -h | sed -n 1,2p
}
# The Markdown "Machine" section the filter and mail-path benchmarks open with.
machine_markdown() {
    echo "## Machine"
    echo
    echo "- date: $(utc_now)"
    echo "- nproc: $(nproc)"
    echo "- CPU: $(cpu_model)"
    echo "- memory: $(free -h | awk '/^Mem:/ {print $2 " total, " $7 " available"}')"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
}

# A throwaway PostgreSQL 15 cluster (Debian's defaults: fsync and synchronous_commit on, the
# durable setting a site would run), installed when missing; needs root (it runs as postgres).
PG_BIN=/usr/lib/postgresql/15/bin
pg_install() {
    [ "$(id -u)" = 0 ] || fail "must run as root (su postgres)"
    if [ ! -x "$PG_BIN/initdb" ] || ! command -v python3 >/dev/null; then
        apt-get update -q >/dev/null
        apt-get install -y -q postgresql-15 postgresql-client-15 python3 >/dev/null
    fi
}
# pg_start DIR PORT [SERVER OPTIONS]: a new cluster in DIR/data on 127.0.0.1:PORT, its socket
# and log in DIR (which postgres must own).
pg_start() {
    su postgres -c "$PG_BIN/initdb -D $1/data -A trust -U postgres" >"$1/initdb.log" 2>&1
    su postgres -c "$PG_BIN/pg_ctl -D $1/data -o '-p $2 -k $1 -c listen_addresses=127.0.0.1 ${3:-}' -l $1/log start -w" >/dev/null
}
pg_stop() { su postgres -c "$PG_BIN/pg_ctl -D $1/data stop -m fast -w" >/dev/null 2>&1 || true; }
