"""containerLogs: a container's CRI-format log file read as `kubectl logs`
expects it (kube's kuberuntime ReadLogs).

Usage::

    opts = LogOptions.from_query(request.query)           # ValueError: a 400
    await stream_log(path, opts, write, running)            # write: async (bytes); running: async () -> bool

Partial (P) records are joined to the next ones without a newline; with
``timestamps`` each line starts with its RFC 3339 timestamp.  ``tailLines``
counts whole lines, ``sinceSeconds``/``sinceTime`` compare the records'
timestamps, ``limitBytes`` ends the stream after that many bytes.  ``follow``
keeps reading: it notices rotation (the path now names a new file: the rest
of the old one is read first, then the new one from its start) and ends once
the file is drained and ``running()`` says the container has ended.
"""

from __future__ import annotations

import asyncio
import calendar
import os
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ..runtime.crilog import parse_line

POLL_INTERVAL = 0.1


def parse_timestamp(ts: str) -> int:
    """RFC 3339 (any fraction, Z or an offset) to unix nanoseconds."""
    s = ts.strip()
    offset = 0
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1]
    elif len(s) > 6 and s[-6] in "+-" and s[-3] == ":":
        sign = 1 if s[-6] == "+" else -1
        offset = sign * (int(s[-5:-3]) * 3600 + int(s[-2:]) * 60)
        s = s[:-6]
    main, _, frac = s.partition(".")
    secs = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S")) - offset
    ns = int((frac + "000000000")[:9]) if frac else 0
    return secs * 1_000_000_000 + ns


@dataclass
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since_ns: int | None = None
    timestamps: bool = False
    limit_bytes: int | None = None

    @classmethod
    def from_query(cls, q: Any) -> "LogOptions":
        def flag(name: str) -> bool:
            return q.get(name, "").lower() in ("1", "true")

        def number(name: str) -> int | None:
            v = q.get(name)
            if v in (None, ""):
                return None
            try:
                return int(v)
            except ValueError:
                raise ValueError(f"invalid {name}: {v!r}") from None

        o = cls(follow=flag("follow"), timestamps=flag("timestamps"), tail_lines=number("tailLines"),
                limit_bytes=number("limitBytes"))
        since_seconds = number("sinceSeconds")
        if since_seconds is not None:
            o.since_ns = time.time_ns() - since_seconds * 1_000_000_000
        elif q.get("sinceTime"):
            try:
                o.since_ns = parse_timestamp(q["sinceTime"])
            except ValueError:
                raise ValueError(f"invalid sinceTime: {q['sinceTime']!r}") from None
        if o.tail_lines is not None and o.tail_lines < 0:
            o.tail_lines = None  # kube: negative means all
        return o


class _Emitter:
    def __init__(self, opts: LogOptions, write: Callable[[bytes], Awaitable[None]]):
        self.opts = opts
        self._write = write
        self.at_line_start = True
        self.sent = 0
        self.done = False  # limitBytes reached

    async def records(self, recs: list[tuple[str, str, bool, bytes]]) -> None:
        out: list[bytes] = []
        for ts, _stream, partial, content in recs:
            if self.opts.since_ns is not None:
                try:
                    if parse_timestamp(ts) < self.opts.since_ns:
                        continue
                except ValueError:
                    continue
            if self.opts.timestamps and self.at_line_start:
                out.append(ts.encode() + b" ")
            out.append(content if partial else content + b"\n")
            self.at_line_start = not partial
        if not out:
            return
        data = b"".join(out)
        if self.opts.limit_bytes is not None:
            room = self.opts.limit_bytes - self.sent
            if len(data) >= room:
                data, self.done = data[:room], True
        self.sent += len(data)
        if data:
            await self._write(data)


def _parse(lines: list[bytes]) -> list[tuple[str, str, bool, bytes]]:
    out = []
    for line in lines:
        try:
            out.append(parse_line(line))
        except ValueError:
            continue  # not a CRI line (a torn write): skip it, as kube does
    return out


def _tail(recs: list[tuple[str, str, bool, bytes]], n: int) -> list[tuple[str, str, bool, bytes]]:
    if n <= 0:
        return []
    full = 0
    for i in range(len(recs) - 1, -1, -1):
        if not recs[i][2]:
            full += 1
            if full > n:
                return recs[i + 1:]
    return recs


async def stream_log(path: str, opts: LogOptions, write: Callable[[bytes], Awaitable[None]],
                     running: Callable[[], Awaitable[bool]]) -> None:
    em = _Emitter(opts, write)
    f = await asyncio.to_thread(open, path, "rb")
    try:
        data = await asyncio.to_thread(f.read)
        lines = data.split(b"\n")
        buf = lines.pop()
        recs = _parse(lines)
        if opts.tail_lines is not None:
            recs = _tail(recs, opts.tail_lines)
        await em.records(recs)
        if not opts.follow or em.done:
            return
        while not em.done:
            chunk = f.read(65536)
            if chunk:
                buf += chunk
                lines = buf.split(b"\n")
                buf = lines.pop()
                await em.records(_parse(lines))
                continue
            if _rotated(path, f):
                # what was written to the old file between the last read and the rename comes first
                rest = f.read()
                if rest:
                    lines = (buf + rest).split(b"\n")
                    await em.records(_parse(lines[:-1]))
                f.close()
                f = await _reopen(path)
                buf = b""
                continue
            if not await running():
                # one last look: the container may have written just before it ended
                chunk = f.read()
                if chunk:
                    lines = (buf + chunk).split(b"\n")
                    await em.records(_parse(lines[:-1]))
                return
            await asyncio.sleep(POLL_INTERVAL)
    finally:
        f.close()


def _rotated(path: str, f: Any) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False  # mid-rotation: the new file is not there yet


async def _reopen(path: str) -> Any:
    while True:
        try:
            return open(path, "rb")
        except FileNotFoundError:
            await asyncio.sleep(POLL_INTERVAL)
