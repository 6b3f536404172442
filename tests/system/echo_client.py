#!/usr/bin/env python3
"""Echo test client: N concurrent TCP connections each send BYTES random bytes and must get them back.

Usage: echo_client.py ADDR PORT [--conns N] [--bytes B] [--timeout S]
Prints one line "conns: N bytes: B each, Xs" and exits 0 when every connection got
exactly its own bytes back in order; prints what went wrong and exits 1 otherwise.
"""
import argparse
import os
import selectors
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("port", type=int)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--bytes", type=int, default=65536)
    ap.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()

    sel = selectors.DefaultSelector()
    conns = []
    t0 = time.monotonic()
    for i in range(a.conns):
        s = socket.create_connection((a.addr, a.port), timeout=a.timeout)
        s.setblocking(False)
        c = {"i": i, "s": s, "data": os.urandom(a.bytes), "sent": 0, "got": bytearray()}
        conns.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    left = len(conns)
    deadline = t0 + a.timeout
    while left:
        if time.monotonic() > deadline:
            short = [f"{c['i']}:{len(c['got'])}" for c in conns if len(c["got"]) < a.bytes]
            print(f"timeout after {a.timeout}s; connections short of data (conn:bytes): {short[:10]}")
            return 1
        for key, ev in sel.select(timeout=0.5):
            c = key.data
            s = c["s"]
            if ev & selectors.EVENT_WRITE and c["sent"] < a.bytes:
                try:
                    c["sent"] += s.send(c["data"][c["sent"]:c["sent"] + 16384])
                except BlockingIOError:
                    pass
                if c["sent"] == a.bytes:
                    sel.modify(s, selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ:
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    print(f"connection {c['i']}: closed by the server after {len(c['got'])} bytes")
                    return 1
                c["got"] += chunk
                n = len(c["got"])
                if c["got"] != c["data"][:n]:
                    print(f"connection {c['i']}: echoed bytes differ within the first {n}")
                    return 1
                if n == a.bytes:
                    sel.unregister(s)
                    s.close()
                    left -= 1
    print(f"conns: {a.conns} bytes: {a.bytes} each, {time.monotonic() - t0:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
