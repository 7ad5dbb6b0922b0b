#!/usr/bin/env bash
# Benchmark: time to build `grey_listing --report --html` (and, for comparison, the text and
# JSON reports) over a 7-day period holding ROWS decision-log rows (default 1,000,000). Run by
# hand (not part of .ci/run); no root needed:
#   bench/report_html.sh [ROWS] [RUNS]
# The rows are written straight into a fresh SQLite database by python3's sqlite3 module: 60 %
# pass (a third of them first passes with a delay), 35 % defer, 5 % reject, times spread evenly
# over the week, 2,000 sender organisations. Uses target/release (BIN_DIR overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
RUNS=${2:-3}
BIN=${BIN_DIR:-$PWD/target/release}
[ -x "$BIN/grey_listing" ] || { echo "no build in $BIN (cargo build --release)" >&2; exit 1; }
W=$(mktemp -d /tmp/gl-bench-report-html.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
NOW=1795424400
"$BIN/grey_listing" --db "$W/g.db" -i >/dev/null
python3 - "$W/g.db" "$ROWS" "$NOW" <<'PY'
import random, sqlite3, sys
db, rows, now = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(7)
conn = sqlite3.connect(db)
week = 7 * 86400
def row(i):
    t = now - week + i * week // rows
    r = random.random()
    verdict = "pass" if r < 0.6 else "defer" if r < 0.95 else "reject"
    org = "org%d.example" % random.randrange(2000)
    delay = random.randrange(60, 40000) if verdict == "pass" and random.random() < 0.33 else None
    reason = {"pass": "triplet found", "defer": "new", "reject": "server black list"}[verdict]
    return (t, "192.0.2.0/24", org, org, "192.0.2.%d" % (i % 250), "mail." + org,
            "s%d@%s" % (i % 5000, org), "u%d@local.example" % (i % 300), verdict, reason, None, delay)
conn.executemany(
    "INSERT INTO decision_log (time, client_network, client_key, organisation, client_address,"
    " client_name, sender, recipient, verdict, reason, pattern, delay)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", (row(i) for i in range(rows)))
conn.commit()
PY
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC'); $ROWS rows, $(du -m "$W/g.db" | cut -f1) MiB"
for run in $(seq "$RUNS"); do
    for kind in html json text; do
        case $kind in
            html) args=(--report --html "$W/report.html") ;;
            json) args=(--report --json) ;;
            text) args=(--report) ;;
        esac
        start=$(date +%s.%N)
        GREY_LISTING_NOW=$NOW "$BIN/grey_listing" --db "$W/g.db" "${args[@]}" >/dev/null
        end=$(date +%s.%N)
        awk -v r="$run" -v k="$kind" -v s="$start" -v e="$end" 'BEGIN { printf "run %d %-4s %.2f s\n", r, k, e - s }'
    done
done
echo "page size: $(du -k "$W/report.html" | cut -f1) KiB"
