#!/usr/bin/env python3
"""How long greylisting-filter processes wait for each other on one SQLite database.

Run by hand (not part of .ci/run):
  bench/filter_lock_wait.py [--processes 64] [--messages 2000] [--rounds 3] BIN_DIR [BIN_DIR ...]

Each BIN_DIR holds a greylisting-filter and a grey_listing (a release build's target/release, or
a copy of one made by bench/compare.sh with KEEP_BUILDS=1). In every round, for each BIN_DIR in
turn (interleaved, so all see the same machine noise): a fresh database, then MESSAGES filter
runs in Plesk handler mode, PROCESSES at a time, every one a write (500 triplets from 500
networks, each deferred: new or an early retry). Prints, per run, the wall time and the
whole-process latency's median, p99 and maximum, and how many runs gave up on the lock ("locked":
the message passed ungreylisted after the 5 s wait); then the medians over rounds per BIN_DIR.
The maximum is what the busy handler decides: the run that lost the race for the lock most often.
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time

from filter_lib import percentile, spawn, write_message

T0 = 1_800_000_000
TRIPLETS = 500


def run_once(bin_dir, processes, messages):
    with tempfile.TemporaryDirectory(prefix="gl-lock-wait.") as work:
        db = os.path.join(work, "greylist.db")
        subprocess.run([os.path.join(bin_dir, "grey_listing"), "--db", db, "-u",
                        "-grey-interval", "5"], check=True, capture_output=True)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C", "GREY_LISTING_DB": db,
               "GREY_LISTING_LOG": "stderr", "GREY_LISTING_NOW": str(T0)}
        filt = os.path.join(bin_dir, "greylisting-filter")
        message = write_message(work)
        lock = threading.Lock()
        state = {"next": 0, "locked": 0, "times": []}

        def worker():
            while True:
                with lock:
                    i = state["next"]
                    state["next"] += 1
                if i >= messages:
                    return
                t = i % TRIPLETS
                took_ms, _, err = spawn(
                    message, [filt, "ctx", "alice@sender.example", f"user{t}@local.example"],
                    dict(env, TCPREMOTEIP=f"10.{t // 250}.{t % 250}.9"), stderr=True)
                with lock:
                    state["times"].append(took_ms)
                    if b"is locked by another process" in err:
                        state["locked"] += 1

        threads = [threading.Thread(target=worker) for _ in range(processes)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
        times = state["times"]
        return {"wall_s": wall, "p50_ms": statistics.median(times),
                "p99_ms": percentile(times, 99), "max_ms": max(times),
                "locked": state["locked"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=64)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("bin_dirs", nargs="+")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    results = {d: [] for d in args.bin_dirs}
    for rnd in range(1, args.rounds + 1):
        for bin_dir in args.bin_dirs:
            r = run_once(bin_dir, args.processes, args.messages)
            results[bin_dir].append(r)
            print(f"round {rnd} {bin_dir}: " + " ".join(
                f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    print(f"medians over {args.rounds} rounds:")
    for bin_dir, runs in results.items():
        print(f"  {bin_dir}: " + " ".join(
            f"{k}={statistics.median(r[k] for r in runs):.1f}" for k in runs[0]))


if __name__ == "__main__":
    main()
