#!/usr/bin/env python3
"""Helper of bench/compare.sh: whole-process timings of two builds, and the summary.

`compare.py processes --build BASE=DIR --build HEAD=DIR --runs N --work W --pair K` times, for
each build, whole processes started the way their callers start them (bare environment,
`subprocess`), interleaved with each other and with `/bin/true` in a new random order every
iteration so both builds see the same machine noise:
  * filter-new: `greylisting-filter` in Plesk handler mode, message on stdin, a new triplet
    (deferred, exit 2);
  * filter-known: the same for a known triplet past its interval (passed, exit 1);
  * cli-info: `grey_listing --info-server`;
  * cli-update: `grey_listing -u -grey-interval 5|6` (a settings write; alternates, so every run
    changes the value);
  * cli-list-add / cli-list-del: `grey_listing -u -blacklist add:P` then `del:P` with a new
    pattern P each iteration (the list is empty again after each pair of runs).
Each build runs from fresh copies of its binaries and works on its own databases, created by its
own `grey_listing`. One output line per
kind and build: `KIND LABEL PAIR median_ms=… above_true_ms=… p95_ms=…`.

`compare.py summary RESULTS BASE HEAD` reads the result lines of all pairs (these and
compare.sh's server lines) and prints, per measure: the median over pairs of each side with its
range, HEAD/BASE of those medians, and the per-pair ratios HEAD/BASE (median, range, how many
pairs above 1) — the spread that says what is noise on this machine.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

from filter_lib import letters, percentile

T0 = 1_800_000_000
KNOWN = ("known@sender.example", "john@local.example")
MESSAGE = ("Received: from mx.sender.example (HELO mx) (198.51.100.7)\n"
           "  by mail.local.example with SMTP; 1 Jan 2027 00:00:00 +0000\n"
           "From: bench@sender.example\nSubject: bench\n\n" + "body line\n" * 200)


class Processes:
    def __init__(self, args):
        self.args = args
        self.msg = os.path.join(args.work, "message.eml")
        with open(self.msg, "w") as f:
            f.write(MESSAGE)
        self.counter = 0
        self.builds = []
        for item in args.build:
            label, _, directory = item.partition("=")
            if not label or not directory:
                sys.exit(f"compare.py: expected LABEL=DIR, got {item!r}")
            # Each pair runs fresh copies, made one after the other: how long ago a binary file
            # was written changed its start-up time by up to 0.5 ms on this machine (see "Note on
            # binaries" in docs/BENCHMARKS.md), more than the differences measured here.
            copy = os.path.join(args.work, f"bin-{label}")
            os.mkdir(copy)
            for name in ("greylisting-filter", "grey_listing"):
                shutil.copy2(os.path.join(directory, name), copy)
            self.builds.append((label, copy))

    def env(self, db, now):
        return {"PATH": "/usr/bin:/bin", "LANG": "C", "GREY_LISTING_DB": db,
                "GREY_LISTING_LOG": "stderr", "GREY_LISTING_NOW": str(now)}

    def spawn(self, argv, env, expected, kind):
        with open(self.msg, "rb") as stdin:
            start = time.perf_counter_ns()
            proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=env)
            _, err = proc.communicate()
            ms = (time.perf_counter_ns() - start) / 1e6
        if proc.returncode != expected:
            sys.exit(f"compare.py: {kind}: {' '.join(argv)}: exit {proc.returncode}, expected "
                     f"{expected}: {err.decode(errors='replace').strip()}")
        return ms

    def jobs(self):
        """(kind, label, function returning one or more (kind, ms)) for every build."""
        jobs = [("/bin/true", "", lambda: [("/bin/true", self.spawn(
            ["/bin/true"], self.env("/nonexistent", T0), 0, "/bin/true"))])]
        for label, directory in self.builds:
            filt = os.path.join(directory, "greylisting-filter")
            cli = os.path.join(directory, "grey_listing")
            fdb = os.path.join(self.args.work, f"{label}-filter.db")
            cdb = os.path.join(self.args.work, f"{label}-cli.db")
            for db in (fdb, cdb):
                subprocess.run([cli, "--db", db, "-i"], check=True, stdout=subprocess.DEVNULL,
                               env=self.env(db, T0))
            # The known triplet, first seen at T0; timed runs a day later find it and pass.
            self.spawn([filt, "ctx", *KNOWN], self.env(fdb, T0), 2, "filter-known (first)")
            jobs += [
                ("filter-new", label, self.filter_new(filt, fdb)),
                ("filter-known", label, lambda f=filt, d=fdb: [("filter-known", self.spawn(
                    [f, "ctx", *KNOWN], self.env(d, T0 + 86_400), 1, "filter-known"))]),
                ("cli-info", label, lambda c=cli, d=cdb: [("cli-info", self.spawn(
                    [c, "--db", d, "--info-server"], self.env(d, T0), 0, "cli-info"))]),
                ("cli-update", label, self.cli_update(cli, cdb)),
                ("cli-list", label, self.cli_list(cli, cdb)),
            ]
        return jobs

    def filter_new(self, filt, db):
        def run():
            self.counter += 1
            argv = [filt, "ctx", letters(self.counter) + "@sender.example", KNOWN[1]]
            return [("filter-new", self.spawn(argv, self.env(db, T0), 2, "filter-new"))]
        return run

    def cli_update(self, cli, db):
        state = {"n": 0}

        def run():
            state["n"] += 1
            argv = [cli, "--db", db, "-u", "-grey-interval", str(5 + state["n"] % 2)]
            return [("cli-update", self.spawn(argv, self.env(db, T0), 0, "cli-update"))]
        return run

    def cli_list(self, cli, db):
        def run():
            self.counter += 1
            pattern = letters(self.counter) + "@spam.example"
            add = self.spawn([cli, "--db", db, "-u", "-blacklist", f"add:{pattern}"],
                             self.env(db, T0), 0, "cli-list-add")
            delete = self.spawn([cli, "--db", db, "-u", "-blacklist", f"del:{pattern}"],
                                self.env(db, T0), 0, "cli-list-del")
            return [("cli-list-add", add), ("cli-list-del", delete)]
        return run

    def run(self):
        jobs = self.jobs()
        times = {}
        for _ in range(self.args.runs):
            random.shuffle(jobs)
            for _, label, job in jobs:
                for kind, ms in job():
                    times.setdefault((kind, label), []).append(ms)
        floor = statistics.median(times[("/bin/true", "")])
        for (kind, label), values in times.items():
            if kind == "/bin/true":
                continue
            med = statistics.median(values)
            print(f"{kind} {label} {self.args.pair} median_ms={med:.4f} "
                  f"above_true_ms={med - floor:.4f} p95_ms={percentile(values, 95):.4f} "
                  f"true_ms={floor:.4f}")


# What the summary shows per section: (field, unit, digits).
MEASURES = {
    "policyd": [("cpu_us_per_decision", "µs", 2), ("decisions_per_s", "/s", 0),
                ("p50_ms", "ms", 3), ("p99_ms", "ms", 3), ("peak_rss_mib", "MiB", 1),
                ("rss_anon_mib", "MiB", 1), ("rss_file_mib", "MiB", 1)],
    "milter": [("cpu_us_per_decision", "µs", 2), ("decisions_per_s", "/s", 0),
               ("p50_ms", "ms", 3), ("p99_ms", "ms", 3), ("peak_rss_mib", "MiB", 1),
               ("rss_anon_mib", "MiB", 1), ("rss_file_mib", "MiB", 1)],
}
PROCESS_KINDS = ["filter-new", "filter-known", "cli-info", "cli-update", "cli-list-add",
                 "cli-list-del"]
for _kind in PROCESS_KINDS:
    MEASURES[_kind] = [("above_true_ms", "ms", 3), ("median_ms", "ms", 3)]


def summary(path, base, head):
    rows, loads = {}, []
    with open(path) as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            if words[0] == "load":
                loads.append(float(words[2]))
                continue
            section, label, pair = words[:3]
            values = dict(w.split("=", 1) for w in words[3:] if "=" in w)
            rows.setdefault(section, {}).setdefault(label, {})[pair] = values
    if loads:
        print("load average (1 min) at the start of each pair: "
              f"median {statistics.median(loads):.1f}, range {min(loads):.1f}–{max(loads):.1f}\n")
    print(f"| measure | {base}: median (range) | {head}: median (range) "
          "| HEAD/BASE of medians | per-pair HEAD/BASE: median (range; pairs above 1) |")
    print("|---|---|---|---|---|")
    for section, measures in MEASURES.items():
        sides = rows.get(section)
        if not sides or base not in sides or head not in sides:
            continue
        pairs = sorted(set(sides[base]) & set(sides[head]), key=int)
        for field, unit, digits in measures:
            if any(field not in sides[side][p] for side in (base, head) for p in pairs):
                continue  # results from before the field was recorded
            a = [float(sides[base][p][field]) for p in pairs]
            b = [float(sides[head][p][field]) for p in pairs]
            ratios = [y / x for x, y in zip(a, b) if x > 0]
            above = sum(r > 1 for r in ratios)
            ma, mb = statistics.median(a), statistics.median(b)
            fmt = f"{{:,.{digits}f}}"
            print(f"| {section} {field} ({unit}, {len(pairs)} pairs) "
                  f"| {fmt.format(ma)} ({fmt.format(min(a))}–{fmt.format(max(a))}) "
                  f"| {fmt.format(mb)} ({fmt.format(min(b))}–{fmt.format(max(b))}) "
                  f"| {mb / ma if ma > 0 else float('nan'):.3f} "
                  f"| {statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f}; "
                  f"{above} of {len(ratios)}) |")
    for section in ("policyd", "milter"):
        for label in (base, head):
            counts = {tuple((k, v[k]) for k in ("defer", "pass", "deferred", "continued", "errors")
                            if k in v) for v in rows.get(section, {}).get(label, {}).values()}
            if counts:
                shown = "; ".join(" ".join(f"{k}={v}" for k, v in c) for c in sorted(counts))
                print(f"\n{section} {label}: {shown}", end="")
    print()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    proc = sub.add_parser("processes")
    proc.add_argument("--build", action="append", required=True, metavar="LABEL=DIR")
    proc.add_argument("--runs", type=int, default=200, help="runs of each kind")
    proc.add_argument("--work", required=True)
    proc.add_argument("--pair", required=True)
    summ = sub.add_parser("summary")
    summ.add_argument("results")
    summ.add_argument("base")
    summ.add_argument("head")
    args = p.parse_args()
    if args.command == "processes":
        Processes(args).run()
    else:
        summary(args.results, args.base, args.head)


if __name__ == "__main__":
    main()
