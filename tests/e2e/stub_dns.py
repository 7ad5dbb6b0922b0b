#!/usr/bin/env python3
"""A tiny authoritative-looking DNS responder for tests/e2e/guides.sh (loopback only).

Usage: stub_dns.py IP RECORD...   with RECORD = TYPE:NAME=VALUE, TYPE one of A, PTR.
Answers A and PTR questions from the records, NXDOMAIN for everything else; tcpserver (djbdns'
resolver, pointed here with DNSCACHEIP) then sees exactly the reverse and forward zones a test
needs. Prints "ready" once bound; runs until killed.
"""
import socket
import struct
import sys

TYPES = {"A": 1, "PTR": 12}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def parse_question(packet):
    pos, labels = 12, []
    while packet[pos]:
        length = packet[pos]
        labels.append(packet[pos + 1 : pos + 1 + length].decode().lower())
        pos += 1 + length
    qtype, _qclass = struct.unpack("!HH", packet[pos + 1 : pos + 5])
    return ".".join(labels), qtype, packet[12 : pos + 5]


def main():
    ip, records = sys.argv[1], {}
    for spec in sys.argv[2:]:
        kind, rest = spec.split(":", 1)
        name, value = rest.split("=", 1)
        records[(TYPES[kind], name.lower().rstrip("."))] = value
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, 53))
    print("ready", flush=True)
    while True:
        packet, peer = sock.recvfrom(512)
        try:
            name, qtype, question = parse_question(packet)
        except (IndexError, struct.error, UnicodeDecodeError):
            continue
        value = records.get((qtype, name))
        if value is None:
            header = struct.pack("!HHHHHH", struct.unpack("!H", packet[:2])[0], 0x8583, 1, 0, 0, 0)
            sock.sendto(header + question, peer)
            continue
        rdata = socket.inet_aton(value) if qtype == 1 else encode_name(value)
        answer = struct.pack("!HHHIH", 0xC00C, qtype, 1, 60, len(rdata)) + rdata
        header = struct.pack("!HHHHHH", struct.unpack("!H", packet[:2])[0], 0x8580, 1, 1, 0, 0)
        sock.sendto(header + question + answer, peer)


if __name__ == "__main__":
    main()
