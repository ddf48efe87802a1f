"""Container logs in the CRI format, as the kubelet and `kubectl logs` read them.

Each line of the file is `<RFC3339Nano timestamp> <stream> <tag> <content>`,
where stream is `stdout` or `stderr` and tag is `F` for a full line or `P`
for a part of a longer one (lines are cut at MAX_LINE bytes, as containerd
does at 16 KiB). `pump` copies one stream of a container into the file.
"""

from __future__ import annotations

import asyncio
import time
from typing import BinaryIO

MAX_LINE = 16 * 1024


def timestamp(ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds, UTC: 2016-10-06T00:17:09.669794202Z."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def format_line(stream: str, content: bytes, partial: bool, ns: int | None = None) -> bytes:
    return f"{timestamp(ns)} {stream} {'P' if partial else 'F'} ".encode() + content + b"\n"


def parse_line(line: bytes) -> tuple[str, str, bool, bytes]:
    """(timestamp, stream, partial, content) of one log line (without or with its newline)."""
    ts, stream, tag, content = line.rstrip(b"\n").split(b" ", 3)
    return ts.decode(), stream.decode(), tag == b"P", content


async def pump(reader: asyncio.StreamReader, stream: str, out: BinaryIO) -> None:
    """Copy `reader` into `out` line by line until end of file.

    The writes are small and go to a local file, so they are made directly
    from the event loop; each is flushed so that followers see it at once.
    """
    buf = b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        buf += chunk
        lines = buf.split(b"\n")
        buf = lines.pop()
        for line in lines:
            _write(out, stream, line)
        while len(buf) >= MAX_LINE:
            out.write(format_line(stream, buf[:MAX_LINE], partial=True))
            buf = buf[MAX_LINE:]
        out.flush()
    if buf:
        out.write(format_line(stream, buf, partial=False))
        out.flush()


def _write(out: BinaryIO, stream: str, line: bytes) -> None:
    while len(line) > MAX_LINE:
        out.write(format_line(stream, line[:MAX_LINE], partial=True))
        line = line[MAX_LINE:]
    out.write(format_line(stream, line, partial=False))
