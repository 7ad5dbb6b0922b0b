#!/usr/bin/env bash
# Differential test against postgrey (issue 5): the same request sequence, timed with
# policy_test_time, goes to Debian's postgrey and to greylisting-policyd (--allow-test-time),
# configured alike: postgrey --delay=300 --retry-window=2 --auto-whitelist-clients=0 (lookup by
# /24 subnet, its default) vs ours -grey-interval 5 -expire-interval 2880 -awl-count 0
# -ipv4-prefix 24. Where DESIGN.md §4 and postgrey's documented behaviour agree (new, early retry, pass
# after the delay, first-retry window expiry, /24 neighbours, case-insensitive keys) the verdicts
# must be equal; where they differ (docs/policyd.md, "Where we differ from postgrey") each
# server must show its own documented verdict.
# A second pair of servers runs with the auto-whitelists on at both defaults (postgrey
# --auto-whitelist-clients=5, ours -awl-count 5), since the two count differently: postgrey per
# client address and at most one pass an hour, ours distinct passed triplets per /24.
# Installs postgrey when missing (as root). Ports: E2E_POSTGREY_PORT (default 12024),
# E2E_POLICY_PORT (default 12025), and for the auto-whitelist pair E2E_POSTGREY_AWL_PORT
# (default 12021) and E2E_POLICY_AWL_PORT (default 12022); never 10023.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PG_PORT=${E2E_POSTGREY_PORT:-12024}
OUR_PORT=${E2E_POLICY_PORT:-12025}
PG_AWL_PORT=${E2E_POSTGREY_AWL_PORT:-12021}
OUR_AWL_PORT=${E2E_POLICY_AWL_PORT:-12022}

E2E_NAME=postgrey
source tests/e2e/lib.sh

ensure_packages postgrey:postgrey perl:perl
id postgrey >/dev/null 2>&1 || fail "user postgrey is missing (Debian's postgrey package creates it)"
ports_free "$PG_PORT" "$OUR_PORT" "$PG_AWL_PORT" "$OUR_AWL_PORT"
build_debug_binaries

W=$(mktemp -d /tmp/gl-e2e-postgrey.XXXXXX)
chmod 755 "$W"
# Every server started (start_pair), for the cleanup.
PIDS=()
cleanup() {
    local rc=$? pid log
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ $rc -ne 0 ]; then
        for log in postgrey policyd postgrey-awl policyd-awl; do
            echo "---- $log log"; tail -n 30 "$W/$log.log" 2>/dev/null || true
        done
    fi
    rm -rf "$W"
    exit $rc
}
trap cleanup EXIT

# start_pair SUFFIX POSTGREY_PORT OUR_PORT AWL: postgrey and greylisting-policyd with the same
# greylisting settings and both auto-whitelists at AWL (0: off), each with its own store and its
# log in $W/postgreySUFFIX.log and $W/policydSUFFIX.log; their PIDs in PG_STARTED and
# OUR_STARTED. Waits until both listen.
start_pair() {
    local suffix=$1 pg_port=$2 our_port=$3 awl=$4
    mkdir -p "$W/pgdb$suffix"
    chown postgrey "$W/pgdb$suffix"
    /usr/sbin/postgrey --inet="127.0.0.1:$pg_port" --dbdir="$W/pgdb$suffix" \
        --pidfile="$W/postgrey$suffix.pid" --delay=300 --retry-window=2 --max-age=35 \
        --auto-whitelist-clients="$awl" --whitelist-clients="$W/empty_whitelist" \
        --whitelist-recipients="$W/empty_whitelist" --hostname=pg.test \
        >"$W/postgrey$suffix.log" 2>&1 &
    PG_STARTED=$!
    PIDS+=("$PG_STARTED")
    "$BIN/grey_listing" --db "$W/greylist$suffix.db" -u -grey-interval 5 -expire-interval 2880 \
        -awl-count "$awl" -ipv4-prefix 24 >/dev/null
    GREY_LISTING_LOG=stderr "$BIN/greylisting-policyd" --listen "127.0.0.1:$our_port" \
        --db "$W/greylist$suffix.db" --allow-test-time --hostname ours.test \
        2>"$W/policyd$suffix.log" &
    OUR_STARTED=$!
    PIDS+=("$OUR_STARTED")
    for _ in $(seq 300); do
        port_in_use "$pg_port" && break
        sleep 0.1
    done
    port_in_use "$pg_port" || fail "postgrey on port $pg_port did not start"
    wait_policyd "$W/policyd$suffix.log" "$our_port"
}

: >"$W/empty_whitelist"
start_pair "" "$PG_PORT" "$OUR_PORT" 0
PG_PID=$PG_STARTED
OUR_PID=$OUR_STARTED
# The auto-whitelist pair: the same settings with both auto-whitelists at their defaults.
start_pair -awl "$PG_AWL_PORT" "$OUR_AWL_PORT" 5

# The scenario: label | client_address | client_name | sender | recipient | seconds after T0 |
# expected verdict from ours | expected verdict from postgrey. "pass" = DUNNO or PREPEND,
# "defer" = DEFER_IF_PERMIT, "closed" = connection closed without an answer.
cat >"$W/scenario" <<'EOF'
new triplet|198.51.100.7|mx1.a.example|alice@a.example|u@local.example|0|defer|defer
early retry after 60 s|198.51.100.7|mx1.a.example|alice@a.example|u@local.example|60|defer|defer
early retry after 299 s|198.51.100.7|mx1.a.example|alice@a.example|u@local.example|299|defer|defer
retry after the delay (300 s)|198.51.100.7|mx1.a.example|alice@a.example|u@local.example|300|pass|pass
known triplet again|198.51.100.7|mx1.a.example|alice@a.example|u@local.example|400|pass|pass
keys are case-insensitive|198.51.100.7|mx1.a.example|Alice@A.Example|U@Local.Example|500|pass|pass
other recipient is a new triplet|198.51.100.7|mx1.a.example|alice@a.example|v@local.example|500|defer|defer
neighbour /24: first attempt|203.0.113.10|unknown|bob@b.example|u@local.example|0|defer|defer
neighbour /24: retry from .77|203.0.113.77|unknown|bob@b.example|u@local.example|310|pass|pass
other /24 is a new client|203.0.114.77|unknown|bob@b.example|u@local.example|320|defer|defer
+extension stripped (both)|198.51.100.7|mx1.a.example|alice+news@a.example|u@local.example|700|pass|pass
first retry window: first attempt|192.0.2.5|unknown|carol@c.example|u@local.example|0|defer|defer
first retry window: retry after 3 days|192.0.2.5|unknown|carol@c.example|u@local.example|259200|defer|defer
first retry window: retry after the delay|192.0.2.5|unknown|carol@c.example|u@local.example|259500|pass|pass
digit runs: first attempt from user123|198.51.100.7|mx1.a.example|user123@d.example|u@local.example|800|defer|defer
digit runs: user123 after the delay|198.51.100.7|mx1.a.example|user123@d.example|u@local.example|1100|pass|pass
DIFFERS digits inside a word folded by ours only|198.51.100.7|mx1.a.example|user456@d.example|u@local.example|1200|pass|defer
DIFFERS passed triplet unseen past expiry|203.0.113.10|unknown|bob@b.example|u@local.example|432000|defer|pass
DIFFERS unparseable client_address|999.1.2.3|unknown|eve@e.example|u@local.example|1300|pass|closed
EOF

# run_scenario POSTGREY_PORT OUR_PORT FILE: sends each step of FILE to both servers and checks
# each one's verdict.
run_scenario() { perl -MIO::Socket::INET -e '
    use strict; use warnings;
    my ($pg_port, $our_port, $file) = @ARGV;
    my $t0 = 1700000000;
    my ($agree, $failures) = (0, 0);
    open(my $fh, "<", $file) or die "scenario: $!";
    sub ask {
        my ($port, $req) = @_;
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port, Timeout => 10)
            or return ("closed", "cannot connect");
        $s->autoflush(1);
        print $s $req;
        my $reply = "";
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 20;
        my $ok = eval { while (my $line = <$s>) { last if $line eq "\n"; $reply .= $line; } 1 };
        alarm 0;
        close $s;
        return ("closed", "timeout") unless $ok;
        return ("closed", "no reply") if $reply eq "";
        chomp $reply;
        return ("defer", $reply) if $reply =~ /^action=(DEFER_IF_PERMIT|DEFER|4\d\d)\b/i;
        return ("reject", $reply) if $reply =~ /^action=(REJECT|5\d\d)\b/i;
        return ("pass", $reply) if $reply =~ /^action=(DUNNO|PREPEND|OK)\b/i;
        return ("other", $reply);
    }
    printf "%-50s %-7s %-7s\n", "step", "ours", "postgrey";
    while (my $line = <$fh>) {
        chomp $line;
        my ($label, $ip, $name, $sender, $rcpt, $dt, $want_ours, $want_pg) = split /\|/, $line;
        my $req = "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
            . "client_address=$ip\nclient_name=$name\nreverse_client_name=$name\n"
            . "helo_name=$name\nsender=$sender\nrecipient=$rcpt\n"
            . "instance=" . int(rand(1e9)) . "\npolicy_test_time=" . ($t0 + $dt) . "\n\n";
        my ($ours, $ours_text) = ask($our_port, $req);
        my ($pg, $pg_text) = ask($pg_port, $req);
        my $ok = $ours eq $want_ours && $pg eq $want_pg;
        printf "%-50s %-7s %-7s %s\n", $label, $ours, $pg, $ok ? "ok" : "UNEXPECTED (want $want_ours/$want_pg)";
        if (!$ok) { $failures++; print "    ours: $ours_text\n    postgrey: $pg_text\n"; }
        $agree++ if $ours eq $pg;
    }
    print "steps where both agree: $agree\n";
    exit($failures ? 1 : 0);
' "$@"; }
run_scenario "$PG_PORT" "$OUR_PORT" "$W/scenario" || fail "verdicts differ from the expected sequence"

# The auto-whitelists. Five distinct triplets from five addresses of 203.0.113.0/24 pass within
# ten minutes (the benchmark's load has such networks): ours whitelists the network, so a new
# triplet from a sixth address, or from one of the five, passes at once; postgrey counted one
# pass per address and greylists both. Five triplets from one address passing more than an hour
# apart whitelist that client in both.
cat >"$W/scenario-awl" <<'EOF'
five in a /24: .11 first attempt|203.0.113.11|unknown|ann@a.example|u@local.example|0|defer|defer
five in a /24: .12 first attempt|203.0.113.12|unknown|ben@b.example|u@local.example|10|defer|defer
five in a /24: .13 first attempt|203.0.113.13|unknown|cat@c.example|u@local.example|20|defer|defer
five in a /24: .14 first attempt|203.0.113.14|unknown|dan@d.example|u@local.example|30|defer|defer
five in a /24: .15 first attempt|203.0.113.15|unknown|eve@e.example|u@local.example|40|defer|defer
five in a /24: .11 after the delay|203.0.113.11|unknown|ann@a.example|u@local.example|300|pass|pass
five in a /24: .12 after the delay|203.0.113.12|unknown|ben@b.example|u@local.example|310|pass|pass
five in a /24: .13 after the delay|203.0.113.13|unknown|cat@c.example|u@local.example|320|pass|pass
five in a /24: .14 after the delay|203.0.113.14|unknown|dan@d.example|u@local.example|330|pass|pass
five in a /24: .15 after the delay|203.0.113.15|unknown|eve@e.example|u@local.example|340|pass|pass
DIFFERS new triplet from a new address of that /24|203.0.113.60|unknown|fay@f.example|u@local.example|400|pass|defer
DIFFERS new triplet from .11 (one pass counted)|203.0.113.11|unknown|gus@g.example|u@local.example|410|pass|defer
hourly: triplet 1 first attempt|198.51.100.7|unknown|ann@a.example|u@local.example|0|defer|defer
hourly: triplet 1 after the delay|198.51.100.7|unknown|ann@a.example|u@local.example|300|pass|pass
hourly: triplet 2 first attempt|198.51.100.7|unknown|ben@b.example|u@local.example|3700|defer|defer
hourly: triplet 2 after the delay|198.51.100.7|unknown|ben@b.example|u@local.example|4000|pass|pass
hourly: triplet 3 first attempt|198.51.100.7|unknown|cat@c.example|u@local.example|7400|defer|defer
hourly: triplet 3 after the delay|198.51.100.7|unknown|cat@c.example|u@local.example|7700|pass|pass
hourly: triplet 4 first attempt|198.51.100.7|unknown|dan@d.example|u@local.example|11100|defer|defer
hourly: triplet 4 after the delay|198.51.100.7|unknown|dan@d.example|u@local.example|11400|pass|pass
hourly: triplet 5 first attempt|198.51.100.7|unknown|eve@e.example|u@local.example|14800|defer|defer
hourly: triplet 5 after the delay|198.51.100.7|unknown|eve@e.example|u@local.example|15100|pass|pass
hourly: new triplet, client whitelisted in both|198.51.100.7|unknown|fay@f.example|u@local.example|15200|pass|pass
EOF
run_scenario "$PG_AWL_PORT" "$OUR_AWL_PORT" "$W/scenario-awl" ||
    fail "auto-whitelist verdicts differ from the expected sequence"
grep -q "action=pass, reason=client AWL, client_name=unknown, client_address=203.0.113.60," \
    "$W/policyd-awl.log" || fail "policyd did not pass 203.0.113.60 by the client auto-whitelist"
grep -q "reason=client AWL, client_name=unknown, client_address=198.51.100.7, sender=fay@" \
    "$W/postgrey-awl.log" || fail "postgrey did not pass 198.51.100.7 by its client auto-whitelist"

# Informational: postgrey 1.37 dies on "Can't call method ... on an undefined value".
sleep 1
if kill -0 "$PG_PID" 2>/dev/null; then say "postgrey process still running after the bad address"
else say "postgrey process died after the bad address"; fi
# Ours survived everything and still answers.
kill -0 "$OUR_PID" 2>/dev/null || fail "greylisting-policyd died"
grep -q "unparseable client_address=999.1.2.3" "$W/policyd.log" ||
    fail "policyd did not log the unparseable client_address"
say "differential test passed"
