#!/usr/bin/env python3
"""Benchmark of greylisting-filter (handler mode) as whole processes, run by bench/filter.sh.

Measures, in one run and interleaved with /bin/true so both see the same machine noise:
  * latency of one filter run for a new triplet and for a known (passing) triplet: median, p99;
  * the same with FILL triplets already stored, and the database size per stored triplet;
  * throughput with 16 concurrent filter processes (messages per second).

With `--compare LABEL=LOCATION` (repeatable; bench/postgres_mailpath.sh) it instead measures the
same latencies for several database locations (a SQLite path, a PostgreSQL URL) interleaved in
one loop with /bin/true, and the throughput for each, so the stores see the same machine noise.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from filter_lib import interleaved, latency_table, letters, spawn, write_message

T0 = 1_800_000_000
EXPIRE = 51_840 * 60


class Bench:
    def __init__(self, args):
        self.args = args
        self.msg = write_message(args.work)
        self.counter = 0

    def env(self, db, now):
        return {"PATH": "/usr/bin:/bin", "LANG": "C", "GREY_LISTING_DB": db,
                "GREY_LISTING_LOG": "stderr", "GREY_LISTING_NOW": str(now)}

    def spawn(self, argv, env):
        return spawn(self.msg, argv, env)[:2]

    def new_argv(self):
        self.counter += 1
        return [self.args.filter, "ctx", letters(self.counter) + "@sender.example",
                "john@local.example"]

    def job(self, kind, argv, env, expected):
        """One timed run of `argv()` for `interleaved`; a wrong exit code ends the benchmark."""
        def run():
            ms, code = self.spawn(argv(), env)
            if code != expected:
                sys.exit(f"{kind}: exit {code}, expected {expected}")
            return ms
        return run

    def latency(self, db, label):
        known = [self.args.filter, "ctx", "known@sender.example", "john@local.example"]
        # Create the known triplet; later runs at T0 + 1 day find it and pass.
        self.spawn(known, self.env(db, T0))
        kinds = interleaved({
            "/bin/true": self.job("/bin/true", lambda: ["/bin/true"], self.env(db, T0), 0),
            "new triplet": self.job("new triplet", self.new_argv, self.env(db, T0), 2),
            "known triplet": self.job("known triplet", lambda: known,
                                      self.env(db, T0 + 86_400), 1),
        }, self.args.runs)
        print(f"\n### Latency, {label} ({self.args.runs} runs each, interleaved)\n")
        return latency_table(kinds)

    def throughput(self, db, label, workers=16):
        total = self.args.messages

        def run_filter(i):
            argv = [self.args.filter, "ctx", letters(10_000_000 + i) + "@sender.example",
                    "john@local.example"]
            return self.spawn(argv, self.env(db, T0))[1]

        def run_true(_):
            return self.spawn(["/bin/true"], self.env(db, T0))[1]

        rates = {}
        for name, fn, ok in (("/bin/true", run_true, 0), ("greylisting-filter", run_filter, 2)):
            start = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                codes = list(pool.map(fn, range(total)))
            elapsed = time.perf_counter() - start
            bad = [c for c in codes if c != ok]
            if bad:
                sys.exit(f"throughput {name}: {len(bad)} runs exited {bad[:5]}")
            rates[name] = total / elapsed
        print(f"\n### Throughput, {label}: {workers} concurrent processes, {total} messages\n")
        print("| command | messages/s |")
        print("|---|---|")
        for name, rate in rates.items():
            print(f"| {name} | {rate:.0f} |")
        print(f"\nfilter / true throughput ratio: {rates['greylisting-filter'] / rates['/bin/true']:.2f}")
        return rates


    def compare(self, stores):
        """Latency of new and known triplets for each (label, location), interleaved with each
        other and with /bin/true; then throughput for each."""
        known = [self.args.filter, "ctx", "known@sender.example", "john@local.example"]
        for _, location in stores:
            self.spawn(known, self.env(location, T0))
        jobs = {"/bin/true": self.job("/bin/true", lambda: ["/bin/true"],
                                      self.env("/nonexistent", T0), 0)}
        for label, location in stores:
            jobs[f"{label}: new triplet"] = self.job(f"{label}: new triplet", self.new_argv,
                                                     self.env(location, T0), 2)
            jobs[f"{label}: known triplet"] = self.job(f"{label}: known triplet", lambda: known,
                                                       self.env(location, T0 + 86_400), 1)
        kinds = interleaved(jobs, self.args.runs)
        base = statistics.median(kinds["/bin/true"])
        print(f"\n### Filter latency per store ({self.args.runs} runs each, interleaved)\n")
        latency_table(kinds)
        if len(stores) == 2:
            (a, _), (b, _) = stores
            for what in ("new triplet", "known triplet"):
                ma = statistics.median(kinds[f"{a}: {what}"]) - base
                mb = statistics.median(kinds[f"{b}: {what}"]) - base
                print(f"\n{what}: {b} / {a} (above /bin/true) = {mb / ma:.2f}x")
        for label, location in stores:
            self.throughput(location, label)


def checkpoint_size(db):
    subprocess.run(["sqlite3", db, "PRAGMA wal_checkpoint(TRUNCATE);"], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.getsize(db)


def fill(db, count):
    """Stores `count` live triplets in one transaction: 4 per /24, unique senders, 1000
    recipients — roughly the shape of a busy server's table."""
    sql = f"""
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < {count} - 1)
INSERT INTO triplets (client, sender, recipient, network, first_seen, earliest_accept,
                      last_seen, expires, pass_count)
SELECT n, 'sender' || x || '@bulk' || (x % 5000) || '.example', 'user' || (x % 1000) || '@local.example',
       n, {T0} - 3600, {T0} - 3300, {T0} - 60, {T0} + {EXPIRE}, x % 3
FROM (SELECT x, '10.' || (x / 1024 % 256) || '.' || (x / 4 % 256) || '.0/24' AS n FROM c);
COMMIT;
"""
    subprocess.run(["sqlite3", db], input=sql.encode(), check=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--filter", required=True)
    p.add_argument("--cli", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--fill", type=int, default=1_000_000)
    p.add_argument("--compare", action="append", default=[], metavar="LABEL=LOCATION")
    args = p.parse_args()
    bench = Bench(args)

    if args.compare:
        stores = [tuple(item.split("=", 1)) for item in args.compare]
        for _, location in stores:
            subprocess.run([args.cli, "--db", location, "-i"], check=True,
                           stdout=subprocess.DEVNULL)
        bench.compare(stores)
        return

    empty = os.path.join(args.work, "empty.db")
    subprocess.run([args.cli, "--db", empty, "-i"], check=True, stdout=subprocess.DEVNULL)
    lat_empty = bench.latency(empty, "empty database")

    filled = os.path.join(args.work, "filled.db")
    subprocess.run([args.cli, "--db", filled, "-i"], check=True, stdout=subprocess.DEVNULL)
    base_size = checkpoint_size(filled)
    start = time.perf_counter()
    fill(filled, args.fill)
    fill_secs = time.perf_counter() - start
    size = checkpoint_size(filled)
    print(f"\n### Database size\n\nfilled {args.fill} triplets in {fill_secs:.1f} s (one transaction); "
          f"file {size / 1e6:.1f} MB, {(size - base_size) / args.fill:.0f} bytes per triplet "
          f"(empty schema {base_size} bytes)")
    lat_filled = bench.latency(filled, f"{args.fill} triplets stored")

    print("\n### Filled vs empty (median above /bin/true)\n")
    for kind in ("new triplet", "known triplet"):
        e = lat_empty[kind][0] - lat_empty["/bin/true"][0]
        f = lat_filled[kind][0] - lat_filled["/bin/true"][0]
        print(f"- {kind}: empty {e:.2f} ms, filled {f:.2f} ms, ratio {f / e:.2f}x "
              f"(whole process incl. exec: {lat_filled[kind][0] / lat_empty[kind][0]:.2f}x)")

    bench.throughput(empty, "empty database")
    bench.throughput(filled, f"{args.fill} triplets stored")


if __name__ == "__main__":
    main()
