"""Container logs in the CRI format, as the kubelet and `kubectl logs` read them.

Each line of the file is `<RFC3339Nano timestamp> <stream> <tag> <content>`,
where stream is `stdout` or `stderr` and tag is `F` for a full line or `P`
for a part of a longer one (lines are cut at MAX_LINE bytes, as containerd
does at 16 KiB). `pump` copies one stream of a container into the file; `LineSplitter` does
the same cut for callers that read their own fds (the shim), and `RotatingLog`
is the file with the kubelet's rotation (containerLogMaxSize 10Mi,
containerLogMaxFiles 5; a rotated file is named `0.log.<YYYYmmdd-HHMMSS>`, as
kube's container log manager names them; they are not compressed here).

Stdlib only, and asyncio is imported for type checking alone: the shim
imports this module and should stay small in memory.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing itself is not imported at run time (the shim's size)
if TYPE_CHECKING:
    import asyncio
    from typing import BinaryIO

MAX_LINE = 16 * 1024
DEFAULT_MAX_SIZE = 10 * 1024 * 1024   # kubelet's containerLogMaxSize
DEFAULT_MAX_FILES = 5                 # kubelet's containerLogMaxFiles (the live file included)


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


class LineSplitter:
    """Cuts one stream's chunks into CRI log lines (F for full, P for 16 KiB parts)."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.buf = b""

    def feed(self, chunk: bytes) -> bytes:
        """The log lines that `chunk` completes (b"" when none)."""
        self.buf += chunk
        lines = self.buf.split(b"\n")
        self.buf = lines.pop()
        out = [format_line(self.stream, line, partial=False) for line in lines if len(line) <= MAX_LINE]
        if len(out) != len(lines):  # some line is too long: cut them all properly
            out = []
            for line in lines:
                while len(line) > MAX_LINE:
                    out.append(format_line(self.stream, line[:MAX_LINE], partial=True))
                    line = line[MAX_LINE:]
                out.append(format_line(self.stream, line, partial=False))
        while len(self.buf) >= MAX_LINE:
            out.append(format_line(self.stream, self.buf[:MAX_LINE], partial=True))
            self.buf = self.buf[MAX_LINE:]
        return b"".join(out)

    def end(self) -> bytes:
        """What is left at end of stream, as a last full line."""
        rest, self.buf = self.buf, b""
        return format_line(self.stream, rest, partial=False) if rest else b""


def rotated_files(path: str) -> list[str]:
    """The rotated files of the log at `path`, oldest first (`<path>.<timestamp>`)."""
    directory, name = os.path.split(path)
    try:
        names = os.listdir(directory or ".")
    except FileNotFoundError:
        return []
    return sorted(os.path.join(directory, n) for n in names if n.startswith(name + "."))


class RotatingLog:
    """A container's CRI log file that rotates itself once it passes `max_size` bytes.

    Rotation renames the live file to `<path>.<timestamp>` and opens a new
    one; rotated files beyond `max_files - 1` are removed, oldest first. A
    write is cut between lines, never inside one, so a file may pass
    `max_size` by at most one line.
    """

    def __init__(self, path: str, max_size: int = DEFAULT_MAX_SIZE, max_files: int = DEFAULT_MAX_FILES) -> None:
        self.path = path
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self.file: BinaryIO = open(path, "ab")
        self.size = self.file.tell()

    def write(self, data: bytes) -> None:
        """Write whole log lines; rotate between lines once the file is full."""
        if not data:
            return
        if self.max_size > 0 and self.size + len(data) > self.max_size and data.count(b"\n") > 1:
            room = self.max_size - self.size
            cut = data.rfind(b"\n", 0, max(room, 0)) + 1 or data.find(b"\n") + 1
            self._write(data[:cut])
            self.write(data[cut:])
            return
        self._write(data)

    def _write(self, data: bytes) -> None:
        self.file.write(data)
        self.file.flush()
        self.size += len(data)
        if self.max_size > 0 and self.size >= self.max_size:
            self.rotate()

    def rotate(self) -> None:
        self.file.close()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        target = f"{self.path}.{stamp}"
        same_second = [p[len(target):] for p in rotated_files(self.path) if p.startswith(target)]
        if same_second:  # several rotations in one second: a counter that keeps the names in order
            n = max(int(s[1:]) if s[1:].isdigit() else 0 for s in same_second) + 1
            target = f"{target}.{n:03d}"
        try:
            os.rename(self.path, target)
        except FileNotFoundError:
            pass
        olds = rotated_files(self.path)
        for old in olds[:max(0, len(olds) - (self.max_files - 1))]:
            try:
                os.unlink(old)
            except FileNotFoundError:
                pass
        self.file = open(self.path, "ab")
        self.size = 0

    def close(self) -> None:
        self.file.close()
