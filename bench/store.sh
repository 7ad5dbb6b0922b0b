#!/usr/bin/env bash
# Store benchmark (issue 7), run by hand, not by .ci/run: SQLite and PostgreSQL in the same run
# (bench/store.rs: open, per-message check latency, N-thread throughput, PostgreSQL round trip).
# Starts a throwaway PostgreSQL 15 cluster on a free loopback port (DESIGN.md §9) and removes it.
# Record the printed figures in docs/BENCHMARKS.md under "## PostgreSQL store".
BENCH=store
. "$(dirname "$0")/lib.sh"

pg_install
bench_workdir grey_listing-bench-pg
chown postgres "$W"
trap 'pg_stop "$W"; rm -rf "$W"' EXIT
port=$(free_port)
pg_start "$W" "$port"

machine_plain
echo "postgres: $("$PG_BIN/postgres" --version)"

GREY_LISTING_BENCH_PG="postgres://postgres@127.0.0.1:$port/postgres" cargo bench --locked --bench store
