#!/usr/bin/env python3
"""Cost of one new PostgreSQL connection as the filter pays it per message: TCP connect, startup
packet, trust authentication, backend fork, until ReadyForQuery; then Terminate. No driver, so
the figure is the server side plus the loopback, not our client code. Run by
bench/postgres_mailpath.sh: pg_connect_cost.py PORT COUNT."""
import socket, struct, time, statistics, sys
port=int(sys.argv[1]); n=int(sys.argv[2])
def one():
    t=time.perf_counter()
    s=socket.create_connection(("127.0.0.1",port))
    params=b"user\0postgres\0database\0postgres\0application_name\0grey_listing\0\0"
    s.sendall(struct.pack("!ii",8+len(params),196608)+params)
    buf=b""
    while True:
        d=s.recv(8192)
        if not d: raise SystemExit("closed")
        buf+=d
        # ReadyForQuery: 'Z' len=5 status
        if b"Z\0\0\0\x05I" in buf: break
    dt=time.perf_counter()-t
    s.sendall(b"X\0\0\0\x04"); s.close()
    return dt*1000
v=[one() for _ in range(n)]
print(f"connection setup (TCP + startup + backend fork, trust auth): median {statistics.median(v):.2f} ms, p90 {sorted(v)[int(n*0.9)]:.2f} ms over {n}")
