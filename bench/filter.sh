#!/usr/bin/env bash
# Benchmark of greylisting-filter (issue 4; figures go to docs/BENCHMARKS.md, section
# "greylisting-filter"). Whole-process latency for new and known triplets against /bin/true in the
# same run (median, p99), the same with 1,000,000 stored triplets and the size per triplet, and
# throughput with 16 concurrent filter processes. Not run by .ci/run.
#   RUNS=2000 MESSAGES=4000 FILL=1000000 bench/filter.sh
# MODE=dns measures instead `all` mode against `suspicious` mode with a DNSWL and a DNSBL zone and
# a warm cache of DNS answers (bench/filter_dns.py), interleaved. BUILDS adds other builds (release
# binary directories, e.g. another revision's target/release) measured the same way, BASELINES
# builds without the DNS step (`all` mode only); both are space-separated LABEL=DIR:
#   MODE=dns RUNS=500 ROUNDS=6 [BUILDS="b=DIR"] [BASELINES="old=DIR"] bench/filter.sh
BENCH=filter
. "$(dirname "$0")/lib.sh"

missing=()
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

cargo build --release --locked --bin greylisting-filter --bin grey_listing

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

machine_markdown
echo "- sqlite3 CLI (for the fill only): $(sqlite3 --version | cut -d' ' -f1)"

if [[ ${MODE:-} == dns ]]; then
    others=()
    for item in ${BUILDS:-}; do others+=(--build "$item"); done
    for item in ${BASELINES:-}; do others+=(--baseline "$item"); done
    [[ -z ${BUILDS:-}${BASELINES:-} ]] || echo "- other builds: ${BUILDS:-} ${BASELINES:-}"
    echo "- load average: $(load_average)"
    python3 bench/filter_dns.py \
        --filter "$PWD/target/release/greylisting-filter" \
        --cli "$PWD/target/release/grey_listing" \
        --work "$work" "${others[@]}" \
        --runs "${RUNS:-500}" --rounds "${ROUNDS:-6}"
    exit
fi

python3 bench/filter_bench.py \
    --filter "$PWD/target/release/greylisting-filter" \
    --cli "$PWD/target/release/grey_listing" \
    --work "$work" \
    --runs "${RUNS:-2000}" --messages "${MESSAGES:-4000}" --fill "${FILL:-1000000}"
