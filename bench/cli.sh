#!/usr/bin/env bash
# Benchmarks for the grey_listing CLI (issue 3), run by hand, not by .ci/run:
#  1. whole-process time of `grey_listing --info-server` (release build, existing database)
#     against `/bin/true` in the same hyperfine run: medians, difference and ratio;
#  2. the pattern-matcher micro-benchmark (bench/pattern.rs).
# Record the printed figures in docs/BENCHMARKS.md under "## grey_listing CLI".
BENCH=cli
. "$(dirname "$0")/lib.sh"

runs=${RUNS:-1000}

if ! command -v hyperfine >/dev/null; then
    apt-get update
    apt-get install -y hyperfine
fi

cargo build --release --locked --bin grey_listing
bin=$PWD/target/release/grey_listing

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/greylist.db
# Create the database first: the benchmark measures the everyday case, not the first open.
"$bin" --db "$db" --info-server >/dev/null

machine_plain
echo "hyperfine: $(hyperfine --version)"

echo "== grey_listing --info-server vs /bin/true ($runs runs each)"
hyperfine -N --warmup 50 --runs "$runs" --export-json "$work/cli.json" \
    --command-name "grey_listing --info-server" "$bin --db $db --info-server" \
    --command-name "/bin/true" "/bin/true"
python3 - "$work/cli.json" <<'PY'
import json, statistics, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
cli = statistics.median(results["grey_listing --info-server"]["times"]) * 1e3
true = statistics.median(results["/bin/true"]["times"]) * 1e3
print(f"median grey_listing --info-server: {cli:.3f} ms")
print(f"median /bin/true:                  {true:.3f} ms")
print(f"difference:                        {cli - true:.3f} ms (target: under 3 ms)")
print(f"ratio:                             {cli / true:.2f}x")
PY

echo "== pattern matcher"
cargo bench --locked --bench pattern
