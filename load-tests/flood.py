#!/usr/bin/env python3
"""Connection floods against one proxy: how much memory each connection costs and whether
the memory comes back after they close.

  flood.py PORT PIDS N MODE     MODE: silent | idle | slowloris

PIDS is a comma-separated list of the proxy's processes (nginx: master and worker). Prints
one JSON line: KiB per connection while N are open, RSS after they closed relative to the
baseline (%), and whether every connection was accepted."""
import json, socket, sys, time

port, pids, n, mode = int(sys.argv[1]), [int(p) for p in sys.argv[2].split(",")], int(sys.argv[3]), sys.argv[4]


def rss_kib():
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def settle():
    last = rss_kib()
    for _ in range(20):
        time.sleep(0.2)
        now = rss_kib()
        if abs(now - last) * 100 <= last:
            return now
        last = now
    return last


# Warm up: the proxy at its working size.
for _ in range(100):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
base = settle()
held = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if mode == "idle":
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        s.recv(65536)
    elif mode == "slowloris":
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: bench\r\nX-Pad: " + b"a" * 200)
    held.append(s)
during = settle()
for s in held:
    s.close()
time.sleep(2)
after = settle()
print(json.dumps({
    "mode": mode,
    "connections": n,
    "kib_per_connection": round((during - base) / n, 2),
    "rss_after_pct": round((after - base) * 100 / base, 1),
    "baseline_kib": base,
}))
