#!/usr/bin/env python3
"""The peer of deferred-bench listeners: what a home-made setup would run to push a job's
output to browsers, a Server-Sent Events broadcaster on Python's asyncio and nothing else
(no store, no backlog, no resuming, one formatted copy of each event for all listeners).

Serves every GET as one event stream (chunked, like deferred's). Reads commands as JSON
lines on stdin: {"text": "..."} sends an `output` event to every listener in deferred's
format; {"end": true} ends every stream and exits. Prints "ready" once it listens.
Usage: sse_peer.py PORT
"""
import asyncio
import json
import sys

listeners = set()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve(reader, writer):
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    writer.write(chunk(b'event: state\ndata: {"status":"running"}\n\n'))
    listeners.add(writer)


async def broadcast(data: bytes):
    for writer in list(listeners):
        writer.write(data)
    await asyncio.gather(*(w.drain() for w in list(listeners)), return_exceptions=True)


async def main():
    port = int(sys.argv[1])
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=4096)
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    print("ready", flush=True)
    sequence = 0
    while line := await commands.readline():
        command = json.loads(line)
        if command.get("end"):
            await broadcast(b"0\r\n\r\n")
            for writer in list(listeners):
                writer.close()
            break
        sequence += 1
        payload = json.dumps({"at": "", "stream": "stdout", "text": command["text"]}, separators=(",", ":"))
        await broadcast(chunk(f"id: 0.{sequence}\nevent: output\ndata: {payload}\n\n".encode()))
    server.close()


asyncio.run(main())
