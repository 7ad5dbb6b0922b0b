#!/usr/bin/env python3
"""Filter latency with DNS lists, run by `MODE=dns bench/filter.sh` (see docs/BENCHMARKS.md).

Measures whole filter processes in Plesk handler mode, interleaved in a new random order every
iteration so every kind sees the same machine noise:
  * `all` mode, no zones (the default): a new triplet (deferred) and a known triplet (passed);
  * `suspicious` mode with one DNSWL and one DNSBL zone and a warm cache of DNS answers: a client
    with a verified name that is on neither list (passed at the trusted-client step, no triplet)
    and a client on the DNSBL (suspicious, so greylisted: a new triplet, deferred);
  * `--build LABEL=DIR` (repeatable): the same four kinds for the filter and CLI release binaries
    in DIR, each build on its own databases created by its own CLI, its cache filled by itself;
  * `--baseline LABEL=DIR` (repeatable): a build without the DNS step, `all` mode only;
  * `/bin/true`, started the same way, as the floor.

The warm cache is filled before timing by one message per client at time T0, answered by a DNS
responder on a loopback UDP port inside this process, which counts the queries it gets. Timed
runs come from the same clients at T0 + 600 s (past the 5-minute grey interval, inside the
3,600 s life of a cached answer); after each round the query count must not have moved, so no
timed run asked DNS.
"""

import argparse
import os
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

from filter_lib import interleaved, latency_table, letters, percentile, spawn, write_message

T0 = 1_800_000_000
LATER = T0 + 600
WL_ZONE = "wl.test"
BL_ZONE = "bl.test"
KNOWN = ("known@sender.example", "john@local.example")


class StubDns:
    """A UDP responder on 127.0.0.1 (ephemeral port): an A query for a name in `listed` gets
    127.0.0.2, anything else NXDOMAIN. Counts every query."""

    def __init__(self, listed):
        self.listed = {name.lower() for name in listed}
        self.queries = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def count(self):
        with self.lock:
            return self.queries

    def serve(self):
        while True:
            packet, peer = self.sock.recvfrom(4096)
            with self.lock:
                self.queries += 1
            try:
                pos, labels = 12, []
                while packet[pos]:
                    length = packet[pos]
                    labels.append(packet[pos + 1:pos + 1 + length].decode().lower())
                    pos += 1 + length
                qtype = struct.unpack("!H", packet[pos + 1:pos + 3])[0]
                question = packet[12:pos + 5]
            except (IndexError, struct.error, UnicodeDecodeError):
                continue
            ident = packet[:2]
            if qtype == 1 and ".".join(labels) in self.listed:
                answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([127, 0, 0, 2])
                header = ident + struct.pack("!HHHHH", 0x8580, 1, 1, 0, 0)
                self.sock.sendto(header + question + answer, peer)
            else:
                header = ident + struct.pack("!HHHHH", 0x8583, 1, 0, 0, 0)
                self.sock.sendto(header + question, peer)


def reversed_name(ip, zone):
    return ".".join(reversed(ip.split("."))) + "." + zone


class DnsBench:
    def __init__(self, args):
        self.args = args
        self.msg = write_message(args.work)
        self.counter = 0
        # Clients with a verified name (TCPREMOTEHOST) that does not embed the address, so
        # steps 4a/4b are reached: `trusted` are on no list, `listed` are on the DNSBL.
        self.trusted = [(f"192.0.2.{i + 1}", f"mail.{letters(i)}-sender.example")
                        for i in range(args.clients)]
        self.listed = [(f"198.51.100.{i + 1}", f"smtp.{letters(i)}-bulk.example")
                       for i in range(args.clients)]
        self.dns = StubDns([reversed_name(ip, BL_ZONE) for ip, _ in self.listed])
        self.jobs = {"/bin/true": (None, None, None, 0, None)}

    def env(self, db, now, client):
        env = {"PATH": "/usr/bin:/bin", "LANG": "C", "GREY_LISTING_DB": db,
               "GREY_LISTING_LOG": "stderr", "GREY_LISTING_NOW": str(now),
               "GREY_LISTING_RESOLVER": f"127.0.0.1:{self.dns.port}"}
        if client is not None:
            env["TCPREMOTEIP"], env["TCPREMOTEHOST"] = client
        return env

    def spawn(self, argv, env):
        return spawn(self.msg, argv, env, stderr=True)

    def new_sender(self):
        self.counter += 1
        return letters(self.counter) + "@sender.example"

    def create_db(self, cli, path, *options):
        subprocess.run([cli, "--db", path, "-i"], check=True, stdout=subprocess.DEVNULL)
        if options:
            subprocess.run([cli, "--db", path, "-u", *options], check=True,
                           stdout=subprocess.DEVNULL)

    def add_build(self, label, directory, dns):
        """Databases and jobs for one build; with `dns`, also suspicious mode, its cache filled
        by this build through the stub."""
        prefix = f"{label} " if label else ""
        # Every build runs from a fresh copy: on this machine a binary straight from the linker
        # started 0.5 ms slower than a byte-identical copy of it, which would swamp the
        # differences measured here.
        copy = os.path.join(self.args.work, f"bin-{label or 'main'}")
        os.mkdir(copy)
        for name in ("greylisting-filter", "grey_listing"):
            shutil.copy2(os.path.join(directory, name), copy)
        filt = os.path.join(copy, "greylisting-filter")
        cli = os.path.join(copy, "grey_listing")
        db_all = os.path.join(self.args.work, f"{label or 'main'}-all.db")
        self.create_db(cli, db_all)
        # The known triplet, created at T0; timed runs at LATER find it past its interval.
        self.spawn([filt, "ctx", *KNOWN], self.env(db_all, T0, self.trusted[0]))
        self.jobs[f"{prefix}all: new triplet"] = (filt, db_all, self.trusted, 2, "reason=new")
        self.jobs[f"{prefix}all: known triplet"] = (filt, db_all, None, 1,
                                                     "reason=triplet found")
        if not dns:
            return
        db_susp = os.path.join(self.args.work, f"{label or 'main'}-suspicious.db")
        self.create_db(cli, db_susp, "-greylist-clients", "suspicious",
                       "-dnswl-zones", f"add:{WL_ZONE}", "-dnsbl-zones", f"add:{BL_ZONE}")
        before = self.dns.count()
        for client in self.trusted + self.listed:
            _, code, err = self.spawn([filt, "ctx", self.new_sender(), "john@local.example"],
                                      self.env(db_susp, T0, client))
            if code not in (1, 2) or b"dns:" in err:
                sys.exit(f"{label}: cache fill for {client}: exit {code}: "
                         f"{err.decode(errors='replace')}")
        asked, expected = self.dns.count() - before, 2 * len(self.trusted + self.listed)
        if asked != expected:
            sys.exit(f"{label}: cache fill: {asked} DNS queries, expected {expected} "
                     "(one per zone per client)")
        print(f"- {label or 'main build'}: cache filled with {asked} DNS queries for "
              f"{len(self.trusted + self.listed)} clients (one per zone per client)")
        self.jobs[f"{prefix}suspicious warm: trusted client"] = (
            filt, db_susp, self.trusted, 1, "reason=trusted client")
        self.jobs[f"{prefix}suspicious warm: DNSBL-listed, new triplet"] = (
            filt, db_susp, self.listed, 2, "reason=new")

    def run_one(self, kind):
        filt, db, clients, expected, reason = self.jobs[kind]
        if filt is None:
            ms, code, err = self.spawn(["/bin/true"], self.env("/nonexistent", LATER, None))
        elif clients is None:
            ms, code, err = self.spawn([filt, "ctx", *KNOWN], self.env(db, LATER, self.trusted[0]))
        else:
            ms, code, err = self.spawn([filt, "ctx", self.new_sender(), "john@local.example"],
                                       self.env(db, LATER, random.choice(clients)))
        if code != expected or (reason and reason.encode() not in err):
            sys.exit(f"{kind}: exit {code}, expected {expected} ({reason}): "
                     f"{err.decode(errors='replace')}")
        return ms

    def round(self, number):
        before = self.dns.count()
        kinds = interleaved({kind: lambda kind=kind: self.run_one(kind) for kind in self.jobs},
                            self.args.runs)
        if self.dns.count() != before:
            sys.exit(f"round {number}: {self.dns.count() - before} DNS queries during timed runs "
                     "(the cache should have answered everything)")
        return kinds


def summarise(rounds, runs, labels):
    kinds = list(rounds[0])
    load = os.getloadavg()
    print(f"\n### Per round: median ms ({runs} runs of each kind per round)\n")
    print("| round | " + " | ".join(kinds) + " |")
    print("|---" * (len(kinds) + 1) + "|")
    for i, r in enumerate(rounds, 1):
        print(f"| {i} | " + " | ".join(f"{statistics.median(r[k]):.3f}" for k in kinds) + " |")
    pooled = {k: [ms for r in rounds for ms in r[k]] for k in kinds}
    print(f"\n### All rounds pooled ({len(rounds) * runs} runs each; load average at the end "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f})\n")
    latency_table(pooled, pct=95, digits=3)

    def compare(b, a):
        if a not in kinds or b not in kinds:
            return
        diffs = [statistics.median(r[b]) - statistics.median(r[a]) for r in rounds]
        above = sum(d > 0 for d in diffs)
        d95 = percentile(pooled[b], 95) - percentile(pooled[a], 95)
        print(f"| {b} − {a} | "
              f"{statistics.median(pooled[b]) - statistics.median(pooled[a]):+.3f} "
              f"| {statistics.median(diffs):+.3f} ({min(diffs):+.3f} … {max(diffs):+.3f}; "
              f"{above} of {len(diffs)} above 0) | {d95:+.3f} |")

    print("\n### Differences (ms)\n")
    print("| B − A | pooled medians | per-round medians: median (range; rounds above 0) "
          "| pooled p95 |")
    print("|---|---|---|---|")
    for label in labels:
        p = f"{label} " if label else ""
        compare(f"{p}suspicious warm: trusted client", f"{p}all: known triplet")
        compare(f"{p}suspicious warm: trusted client", f"{p}all: new triplet")
        compare(f"{p}suspicious warm: DNSBL-listed, new triplet", f"{p}all: new triplet")
    for label in labels[1:]:
        for kind in ("all: new triplet", "all: known triplet", "suspicious warm: trusted client",
                     "suspicious warm: DNSBL-listed, new triplet"):
            compare(f"{label} {kind}", kind)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--filter", required=True, help="the main build's filter")
    p.add_argument("--cli", required=True, help="the main build's CLI (same directory)")
    p.add_argument("--build", action="append", default=[], metavar="LABEL=DIR")
    p.add_argument("--baseline", action="append", default=[], metavar="LABEL=DIR")
    p.add_argument("--work", required=True)
    p.add_argument("--runs", type=int, default=500, help="runs of each kind per round")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--clients", type=int, default=20, help="clients of each kind")
    args = p.parse_args()
    main_dir = os.path.dirname(os.path.abspath(args.filter))
    if os.path.dirname(os.path.abspath(args.cli)) != main_dir:
        sys.exit("--filter and --cli must be in the same directory")
    bench = DnsBench(args)
    labels = [""]
    bench.add_build("", main_dir, True)
    for item, dns in [(b, True) for b in args.build] + [(b, False) for b in args.baseline]:
        label, _, directory = item.partition("=")
        if not label or not directory:
            sys.exit(f"expected LABEL=DIR, got {item!r}")
        bench.add_build(label, directory, dns)
        labels.append(label)
    rounds = []
    for number in range(1, args.rounds + 1):
        rounds.append(bench.round(number))
        print(f"round {number} done at {time.strftime('%H:%M:%S', time.gmtime())} UTC, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"\nno DNS query during the {args.rounds * args.runs} timed runs of each kind "
          f"(stub count stayed at {bench.dns.count()})")
    summarise(rounds, args.runs, labels)


if __name__ == "__main__":
    main()
