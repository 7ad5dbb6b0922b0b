"""What the filter benchmarks (bench/filter_bench.py, bench/filter_dns.py) share: the message
the filter reads, starting a timed process, the interleaved loop and the latency table."""

import os
import random
import statistics
import subprocess
import time

MESSAGE = ("Received: from mx.sender.example (HELO mx) (198.51.100.7)\n"
           "  by mail.local.example with SMTP; 1 Jan 2027 00:00:00 +0000\n"
           "From: bench@sender.example\nSubject: bench\n\n" + "body line\n" * 200)


def letters(n):
    """A digit-free unique name (sender normalisation folds digit runs)."""
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(97 + r) + out
    return out


def percentile(values, p):
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def write_message(work):
    """Writes the message every timed run reads on stdin into `work`; returns its path."""
    path = os.path.join(work, "message.eml")
    with open(path, "w") as f:
        f.write(MESSAGE)
    return path


def spawn(message, argv, env, stderr=False):
    """Runs `argv` with the file `message` on stdin: (milliseconds from start to exit, exit code,
    its stderr as bytes when `stderr`, else None)."""
    with open(message, "rb") as stdin:
        start = time.perf_counter_ns()
        proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE if stderr else subprocess.DEVNULL, env=env)
        _, err = proc.communicate()
        return (time.perf_counter_ns() - start) / 1e6, proc.returncode, err


def interleaved(jobs, runs):
    """Runs every job of `jobs` (kind: function returning the milliseconds of one run) `runs`
    times, all of them in a new random order each time round so every kind sees the same
    machine noise; returns {kind: [ms, ...]} in the order of `jobs`."""
    kinds = {kind: [] for kind in jobs}
    order = list(jobs)
    for _ in range(runs):
        random.shuffle(order)
        for kind in order:
            kinds[kind].append(jobs[kind]())
    return kinds


def latency_table(kinds, pct=99, digits=2):
    """Prints a Markdown table of each kind's median, `pct` percentile and median above the
    "/bin/true" kind; returns {kind: (median, percentile)}."""
    base = statistics.median(kinds["/bin/true"])
    print(f"| command | median ms | p{pct} ms | median above /bin/true |")
    print("|---|---|---|---|")
    result = {}
    for kind, values in kinds.items():
        med, high = statistics.median(values), percentile(values, pct)
        result[kind] = (med, high)
        extra = "" if kind == "/bin/true" else f"{med - base:+.{digits}f} ms"
        print(f"| {kind} | {med:.{digits}f} | {high:.{digits}f} | {extra} |")
    return result
