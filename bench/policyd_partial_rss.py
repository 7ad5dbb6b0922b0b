#!/usr/bin/env python3
"""Memory of greylisting-policyd under incomplete requests (run by hand, not part of .ci/run).

    bench/policyd_partial_rss.py BUILD_DIR [CONNECTIONS] [KIB]

Starts BUILD_DIR/greylisting-policyd on a new database (port 0, loopback), opens CONNECTIONS
(default 4090) connections that each send KIB KiB (default 63) of a request without its end,
then one complete request per connection on a second round (so that buffers of completed requests
can be released), and prints the server's resident memory after each phase and how many of the
connections the server closed.
"""

import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def closed(sock):
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def main():
    build = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 4090
    kib = int(sys.argv[3]) if len(sys.argv) > 3 else 63
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = tempfile.mkdtemp(prefix="gl-bench-rss.")
    db = os.path.join(work, "g.db")
    subprocess.run([os.path.join(build, "grey_listing"), "--db", db, "-i"], check=True,
                   stdout=subprocess.DEVNULL)
    log_path = os.path.join(work, "policyd.log")
    log = open(log_path, "w")
    server = subprocess.Popen(
        [os.path.join(build, "greylisting-policyd"), "--listen", "127.0.0.1:0", "--db", db],
        env=dict(os.environ, GREY_LISTING_LOG="stderr"), stderr=log)
    try:
        found = None
        for _ in range(300):
            with open(log_path) as lines_so_far:
                found = re.search(r"listening on ([0-9.]+):(\d+),", lines_so_far.read())
            if found:
                break
            time.sleep(0.1)
        host, port = found.groups()
        print(f"build={build} connections={count} partial_kib={kib} "
              f"rss_start_mib={rss_mib(server.pid):.1f}")
        # One attribute line of ~4 KB at a time, as many as fit in KIB KiB.
        lines = b"".join(b"a%d=%s\n" % (i, b"v" * 4000) for i in range(kib * 1024 // 4010))
        socks = []
        for _ in range(count):
            sock = socket.create_connection((host, int(port)))
            try:
                sock.sendall(lines)
            except OSError:
                pass  # closed by the server (over its budget for incomplete requests)
            socks.append(sock)
        time.sleep(2)
        still_open = sum(not closed(s) for s in socks)
        print(f"phase=partial rss_mib={rss_mib(server.pid):.1f} open={still_open}")
        for sock in socks:
            sock.setblocking(True)
            try:
                sock.sendall(b"\n")
            except OSError:
                pass
        time.sleep(2)
        print(f"phase=completed rss_mib={rss_mib(server.pid):.1f}")
        for sock in socks:
            sock.close()
        with open(log_path) as lines_so_far:
            logged = lines_so_far.read()
        print(f"closed_over_budget={logged.count('incomplete requests hold')}")
    finally:
        server.terminate()
        server.wait()
        log.close()


if __name__ == "__main__":
    main()
