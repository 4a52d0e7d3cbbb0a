#!/usr/bin/env python3
"""A hostile client for bench/compare.sh's fairness scenario: it upgrades,
then sends masked pings as fast as the socket takes them and reads (and
drops) whatever comes back, until killed or SECONDS pass.

    bench/flood.py HOST PORT SECONDS
"""
import base64
import os
import socket
import sys
import time


def main():
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    sock = socket.create_connection((host, port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            sys.exit("flood.py: the server closed the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        sys.exit(f"flood.py: no upgrade: {head[:80]!r}")
    # Pings with a zero mask key and a 4-byte payload, 256 a write; after
    # each write, what came back is read (pongs: 6 bytes a ping), so the
    # flooder reads as fast as it sends, as a client that is not refused
    # for a ping flood must.
    ping = bytes([0x89, 0x84, 0, 0, 0, 0]) + b"ping"
    burst = ping * 256
    end = time.monotonic() + seconds
    sock.settimeout(0.005)
    try:
        while time.monotonic() < end:
            sock.sendall(burst)
            owed = 6 * 256
            while owed > 0:
                try:
                    got = sock.recv(1 << 16)
                except socket.timeout:
                    break
                if not got:
                    return
                owed -= len(got)
    except OSError:
        pass


if __name__ == "__main__":
    main()
