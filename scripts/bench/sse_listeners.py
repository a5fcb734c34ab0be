#!/usr/bin/env python3
"""N plain-socket listeners on one event stream, for deferred-bench listeners.

Prints "connected N" once every stream has answered, then "batch K" once all N have received
the output event that starts with "batch K", and at the end a summary line; exits when every
stream has ended.  Usage: sse_listeners.py PORT PATH N
"""
import resource
import selectors
import socket
import sys

port, path, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count * 2 + 64)), hard))

selector = selectors.DefaultSelector()
received = {}
seen = {}
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n".encode())
    s.setblocking(False)
    selector.register(s, selectors.EVENT_READ)
    received[s] = b""
    seen[s] = 0

answered = set()
announced_connected = False
batches_reported = 0
open_streams = count
total = 0
while open_streams:
    for key, _ in selector.select(timeout=30):
        s = key.fileobj
        data = s.recv(65536)
        if not data or b"\r\n0\r\n\r\n" in (received[s][-16:] + data):
            total += len(data)
            selector.unregister(s)
            s.close()
            open_streams -= 1
            continue
        total += len(data)
        received[s] += data
        answered.add(s)
        seen[s] = received[s].count(b'"text":"batch ')
        received[s] = received[s][-64:] if seen[s] == 0 else received[s]
    if not announced_connected and len(answered) == count:
        announced_connected = True
        print(f"connected {count}", flush=True)
    if announced_connected:
        done = min(seen.values()) if seen else 0
        while batches_reported < done:
            print(f"batch {batches_reported}", flush=True)
            batches_reported += 1
print(f"{count} streams ended, {total} bytes received in all", flush=True)
