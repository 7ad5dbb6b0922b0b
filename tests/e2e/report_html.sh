#!/usr/bin/env bash
# `grey_listing --report --html` in a real browser. A week of decisions is made through the real
# greylisting-policyd (postgrey's policy_test_time moves its clock): fresh triplets deferred,
# most retried after waits from a minute to ten hours, a black-listed sender rejected, over
# several sender organisations. The report is rendered by headless Chromium to a PNG, and the
# script asserts:
#   - the page is written, holds three <svg> charts and no <script>;
#   - the screenshot exists and has more than 16 distinct colours (charts drawn, not a blank or
#     an error page);
#   - the numbers in --report --json's "hourly" add up to the decisions made.
# Needs root only to install chromium when it is missing. Keeps the screenshot in
# $E2E_REPORT_PNG when set (default: a temporary directory, removed).
set -euo pipefail
cd "$(dirname "$0")/../.."

E2E_NAME=report-html
source tests/e2e/lib.sh

ensure_packages chromium:chromium
# Debian's interpreter, where python3-pil installs (another python3 may come first in PATH).
PY=/usr/bin/python3
[ -x "$PY" ] || ensure_packages /usr/bin/python3:python3
# ensure_packages checks for a command; PIL is a module: name a command that never exists.
"$PY" -c 'import PIL' 2>/dev/null || ensure_packages gl-e2e-no-such-command:python3-pil
"$PY" -c 'import PIL' || fail "python3-pil is not importable by $PY"
build_debug_binaries

W=$(mktemp -d /tmp/gl-e2e-report-html.XXXXXX)
POLICYD_PID=
cleanup() {
    local rc=$?
    [ -n "$POLICYD_PID" ] && kill "$POLICYD_PID" 2>/dev/null && wait "$POLICYD_PID" 2>/dev/null
    rm -rf "$W"
    exit $rc
}
trap cleanup EXIT

DB="$W/greylist.db"
# No auto-whitelist: every new sender is greylisted, so the charts have deferrals all week.
"$BIN/grey_listing" --db "$DB" -u -grey-interval 1 -awl-count 0 >/dev/null
"$BIN/grey_listing" --db "$DB" -u -blacklist 'add:*@spam.example' >/dev/null
GREY_LISTING_LOG=stderr "$BIN/greylisting-policyd" --db "$DB" --listen 127.0.0.1:0 \
    --allow-test-time --hostname mx.test 2>"$W/policyd.log" &
POLICYD_PID=$!
for _ in $(seq 100); do grep -qs "listening on" "$W/policyd.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$W/policyd.log" | head -1)
[ -n "$PORT" ] || fail "policyd did not start: $(cat "$W/policyd.log")"

# A week ending at END: one new sender every 20 minutes, from one of five organisations; most
# retry after a wait drawn from a fixed list; every 17th is black-listed.
END=1795424400
DECIDED=$(python3 - "$PORT" "$END" <<'PY'
import socket, sys
port, end = int(sys.argv[1]), int(sys.argv[2])
orgs = [("192.0.2.%d", "mail%d.example.com"), ("198.51.100.%d", "out%d.mailer.example.net"),
        ("203.0.113.%d", "smtp%d.shop.example.org"), ("192.0.2.%d", "mx%d.news.example"),
        ("198.51.100.%d", "relay%d.bank.example")]
waits = [70, 200, 400, 900, 1500, 2400, 4000, 9000, 20000, 36000]
sock = socket.create_connection(("127.0.0.1", port))
f = sock.makefile("rwb")
def ask(ip, host, sender, t):
    req = ("request=smtpd_access_policy\nclient_address=%s\nclient_name=%s\nsender=%s\n"
           "recipient=u@local.example\npolicy_test_time=%d\n\n" % (ip, host, sender, t))
    f.write(req.encode()); f.flush()
    reply = f.readline().decode().strip(); f.readline()
    return reply
start, n, decided = end - 7 * 86400 + 600, 0, 0
letters = "abcdefghijklmnopqrstuvwxyz"
while start + n * 1200 < end - 40000:
    t = start + n * 1200
    ip, host = orgs[n % len(orgs)]
    name = letters[n % 26] + letters[n // 26 % 26] + letters[n // 676 % 26]
    sender = ("%s@spam.example" if n % 17 == 0 else "%s@sender.example") % name
    ask(ip % (n % 200 + 1), host % (n % 7), sender, t); decided += 1
    if n % 17 != 0 and n % 4 != 3:
        ask(ip % (n % 200 + 1), host % (n % 7), sender, t + waits[n % len(waits)]); decided += 1
    n += 1
print(decided)
PY
)
say "made $DECIDED decisions"

REPORT="$W/report.html"
GREY_LISTING_NOW=$END "$BIN/grey_listing" --db "$DB" --report --html "$REPORT" >/dev/null
GREY_LISTING_NOW=$END "$BIN/grey_listing" --db "$DB" --report --json >"$W/report.json"
[ "$(grep -o '<svg ' "$REPORT" | wc -l)" -eq 3 ] || fail "expected three <svg> charts"
grep -q '<script' "$REPORT" && fail "the page holds a script"
python3 - "$W/report.json" "$DECIDED" <<'PY' || fail "the hourly numbers do not add up"
import json, sys
report = json.load(open(sys.argv[1]))
total = sum(h["pass"] + h["defer"] + h["reject"] for h in report["hourly"])
assert total == int(sys.argv[2]), (total, sys.argv[2])
assert len(report["hourly"]) == 7 * 24 + 1
PY

PNG=${E2E_REPORT_PNG:-$W/report.png}
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$W/chromium" \
    --window-size=1200,1600 --screenshot="$PNG" "file://$REPORT" >"$W/chromium.log" 2>&1 ||
    fail "chromium failed: $(tail -5 "$W/chromium.log")"
[ -s "$PNG" ] || fail "no screenshot"
COLOURS=$("$PY" - "$PNG" <<'PY'
import sys
from PIL import Image
image = Image.open(sys.argv[1]).convert("RGB")
print(len(set(image.getdata())))
PY
)
[ "$COLOURS" -gt 16 ] || fail "the screenshot has only $COLOURS colours"
say "screenshot $("$PY" -c "from PIL import Image; print('%dx%d' % Image.open('$PNG').size)"), $COLOURS colours"
say "PASS"
