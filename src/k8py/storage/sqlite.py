"""Embedded SQLite backend: one append-only log table whose id is the revision.

Design (after k3s-io/kine, "etcd over SQL"):

* ``kv`` is the log. Every write appends one row; its ``id`` *is* the
  revision. A delete appends a tombstone row (``deleted = 1``) that carries
  the deleted value. ``prev_revision`` points at the row it supersedes, so a
  watch can report the previous value. ``kv_current`` maps each live key to
  its latest row, which makes reads "as of now" a plain index range scan.
  ``meta`` holds ``compact_rev`` (and compaction progress) persistently.
* All writes go through ONE writer thread that owns the only writing
  connection (WAL mode, ``synchronous=FULL``: a commit returns only after the
  WAL is fsync'ed). Coroutines enqueue operations; the writer drains whatever
  is queued (up to ``MAX_BATCH``) and applies it in ONE transaction ("group
  commit"), then hands results and events back to the event loop with a single
  ``call_soon_threadsafe``. Failed preconditions (exists / conflict / not
  found) fail only their own operation, not the batch.
* Reads run on a small thread pool, each thread with its own read-only
  connection; multi-statement reads use one read transaction (a consistent
  WAL snapshot), so ``RangeResult.revision`` and the rows always agree.
* Watch = in-process fan-out. After each commit the writer's batch of events
  (in revision order) is pushed to every subscriber whose prefix matches.
  ``watch()`` subscribes first, then replays the log after the requested
  revision (in pages), then serves live events, dropping every revision it
  has already delivered: no gap, no duplicate.
* Slow watchers never block writers: a subscriber's queue is bounded
  (``watch_queue_limit`` events). On overflow the subscriber is detached and
  its queue dropped; the iterator then transparently catches up from the log
  (exactly like the initial replay) and re-subscribes. The only error a slow
  watcher can see is :class:`CompactedError`, if the history it still needs
  was compacted in the meantime.
* ``compact(rev)`` first records ``compact_rev`` (reads/watches below it fail
  from then on), then deletes superseded rows and tombstones with
  ``id <= rev`` in chunks, interleaved with write batches, so a big
  compaction never stalls writers for long. Progress is persisted and resumed
  after a restart.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable

from .interface import (
    CompactedError,
    ConflictError,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
    StorageError,
)

MAX_BATCH = 1000  # operations per group-commit transaction
COMPACT_CHUNK = 2000  # revisions examined per compaction transaction
REPLAY_PAGE = 1000  # log rows per replayed watch batch
LIVE_BATCH = 1000  # max events merged into one live watch batch
_COMPACTING = object()  # result marker: compact() resolves when the physical pass ends

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id);
CREATE TABLE IF NOT EXISTS kv_current (
    name TEXT PRIMARY KEY,
    id INTEGER NOT NULL,
    create_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
"""

_Q_SNAPSHOT = (
    "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'kv'),"
    " (SELECT v FROM meta WHERE k = 'compact_rev')"
)


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``
    (None: no upper bound). Code-point order equals SQLite's BINARY order."""
    for i in range(len(prefix) - 1, -1, -1):
        c = ord(prefix[i]) + 1
        if c == 0xD800:
            c = 0xE000  # skip surrogates, not encodable in UTF-8
        if c <= 0x10FFFF:
            return prefix[:i] + chr(c)
    return None


def _key_bounds(prefix: str, start_after: str | None, col: str) -> tuple[str, list[Any]]:
    conds: list[str] = []
    args: list[Any] = []
    if prefix:
        conds.append(f"{col} >= ?")
        args.append(prefix)
        end = prefix_end(prefix)
        if end is not None:
            conds.append(f"{col} < ?")
            args.append(end)
    if start_after is not None:
        conds.append(f"{col} > ?")
        args.append(start_after)
    return (" AND ".join(conds) or "1"), args


class _Sub:
    """One watcher's live queue (touched only on the event loop thread)."""

    __slots__ = ("prefix", "limit", "queue", "size", "wake", "overflow", "closed")

    def __init__(self, prefix: str, limit: int) -> None:
        self.prefix = prefix
        self.limit = limit
        self.queue: deque[list[Event]] = deque()
        self.size = 0
        self.wake = asyncio.Event()
        self.overflow = False
        self.closed = False


class SQLiteStore:
    """:class:`~k8py.storage.interface.Store` on an embedded SQLite file."""

    def __init__(self, path: str, *, read_threads: int = 2, watch_queue_limit: int = 100_000) -> None:
        self.path = path
        self.read_threads = read_threads
        self.watch_queue_limit = watch_queue_limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: queue.SimpleQueue[list[tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._outbox: list[tuple[Any, ...]] = []
        self._writer: threading.Thread | None = None
        self._wconn: sqlite3.Connection | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._rconns: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._subs: set[_Sub] = set()
        self._rev = 0  # last committed revision (written by the writer thread)
        self._compact_rev = 0  # logical: reads below it fail
        self._compact_done = 0  # physical: rows up to here are compacted
        self._compact_futs: list[asyncio.Future[Any]] = []
        self._compact_paused = False  # after an error, until the next compact()
        self._closed = False

    # ----------------------------------------------------------- lifecycle
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA cache_size=-8192")
        return conn

    def _open(self) -> None:
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        conn = self._connect()
        conn.executescript(_SCHEMA)
        seq, compact = conn.execute(_Q_SNAPSHOT).fetchone()
        self._rev = seq or 0
        self._compact_rev = compact or 0
        row = conn.execute("SELECT v FROM meta WHERE k = 'compact_done'").fetchone()
        self._compact_done = row[0] if row else 0  # < compact_rev: resume the physical pass
        self._wconn = conn

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(None, self._open)
        self._readers = ThreadPoolExecutor(self.read_threads, thread_name_prefix="k8py-sqlite-read")
        self._writer = threading.Thread(target=self._writer_main, name="k8py-sqlite-writer", daemon=True)
        self._writer.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subs):
            sub.closed = True
            sub.wake.set()
        self._subs.clear()
        loop = asyncio.get_running_loop()
        if self._writer is not None:
            self._flush_outbox()
            self._queue.put(None)
            await loop.run_in_executor(None, self._writer.join)
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        for conn in self._rconns:
            conn.close()
        self._rconns.clear()

    # ------------------------------------------------------------- writes
    async def _submit(self, *op: Any) -> Any:
        if self._closed or self._loop is None:
            raise StorageError("store is closed" if self._closed else "store not started")
        fut = self._loop.create_future()
        # Writes issued during one turn of the event loop go to the writer
        # thread together, as one queue item: one hand-off (and one group
        # commit) for all of them instead of one per write.
        if not self._outbox:
            self._loop.call_soon(self._flush_outbox)
        self._outbox.append((*op, fut))
        return await fut

    def _flush_outbox(self) -> None:
        ops, self._outbox = self._outbox, []
        if ops:
            self._queue.put(ops)

    async def create(self, key: str, value: bytes) -> int:
        return await self._submit("create", key, bytes(value), 0)

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        return await self._submit("update", key, bytes(value), expected_revision)

    async def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        return await self._submit("delete", key, b"", expected_revision)

    async def compact(self, revision: int) -> None:
        await self._submit("compact", "", b"", revision)

    def _compaction_pending(self) -> bool:
        return self._compact_done < self._compact_rev and not self._compact_paused

    def _write_txn(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        conn = self._wconn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _writer_main(self) -> None:
        q = self._queue
        stop = False
        while not stop:
            if self._compaction_pending():
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    self._compact_step()
                    continue
            else:
                item = q.get()
            batch: list[tuple[Any, ...]] = []
            while item is not None:
                batch.extend(item)
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
            stop = item is None
            if batch:
                self._run_batch(batch)
            if self._compaction_pending() and not stop:
                self._compact_step()  # progress even under constant load
        if self._compact_futs:  # the physical pass resumes at the next start
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._complete, [(f, None, None) for f in self._compact_futs], [])
        assert self._wconn is not None
        try:
            self._wconn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        self._wconn.close()

    def _run_batch(self, batch: list[tuple[Any, ...]]) -> None:
        """Apply a batch in ONE transaction (group commit), then report back."""
        assert self._loop is not None
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        events: list[Event] = []
        self._batch_rev = self._rev
        self._batch_compact: int | None = None

        def apply(conn: sqlite3.Connection) -> None:
            for kind, key, value, expected, fut in batch:
                try:
                    res = getattr(self, "_w_" + kind)(conn, key, value, expected, events)
                    results.append((fut, res, None))
                except StorageError as e:  # a failed precondition fails only this op
                    results.append((fut, None, e))

        try:
            self._write_txn(apply)
        except Exception as e:  # the whole batch failed: nothing was written
            err = StorageError(f"sqlite write failed: {e!r}")
            results = [(op[-1], None, err) for op in batch]
            events = []
        else:
            self._rev = self._batch_rev
            if self._batch_compact is not None:
                self._compact_rev = self._batch_compact
                self._compact_paused = False
                # compact() returns once the physical pass is done
                self._compact_futs += [r[0] for r in results if r[1] is _COMPACTING]
                results = [r for r in results if r[1] is not _COMPACTING]
        self._loop.call_soon_threadsafe(self._complete, results, events)

    def _current(self, conn: sqlite3.Connection, key: str) -> KeyValue | None:
        row = conn.execute(
            "SELECT c.id, c.create_revision, kv.value FROM kv_current c JOIN kv ON kv.id = c.id WHERE c.name = ?",
            (key,),
        ).fetchone()
        return None if row is None else KeyValue(key, row[2], row[1], row[0])

    def _w_create(self, conn: sqlite3.Connection, key: str, value: bytes, _e: int, events: list[Event]) -> int:
        if conn.execute("SELECT 1 FROM kv_current WHERE name = ?", (key,)).fetchone():
            raise KeyExistsError(key, self._current(conn, key))
        rev = self._batch_rev = self._batch_rev + 1
        conn.execute("INSERT INTO kv VALUES (?, ?, 0, ?, 0, ?)", (rev, key, rev, value))
        conn.execute("INSERT INTO kv_current VALUES (?, ?, ?)", (key, rev, rev))
        events.append(Event("PUT", KeyValue(key, value, rev, rev)))
        return rev

    def _w_update(self, conn: sqlite3.Connection, key: str, value: bytes, expected: int, events: list[Event]) -> int:
        prev = self._current(conn, key)
        if prev is None:
            raise KeyNotFoundError(key)
        if prev.mod_revision != expected:
            raise ConflictError(key, prev)
        rev = self._batch_rev = self._batch_rev + 1
        crev = prev.create_revision
        conn.execute("INSERT INTO kv VALUES (?, ?, 0, ?, ?, ?)", (rev, key, crev, prev.mod_revision, value))
        conn.execute("UPDATE kv_current SET id = ? WHERE name = ?", (rev, key))
        events.append(Event("PUT", KeyValue(key, value, crev, rev), prev))
        return rev

    def _w_delete(
        self, conn: sqlite3.Connection, key: str, _v: bytes, expected: int, events: list[Event]
    ) -> tuple[int, KeyValue]:
        prev = self._current(conn, key)
        if prev is None:
            raise KeyNotFoundError(key)
        if expected and prev.mod_revision != expected:
            raise ConflictError(key, prev)
        rev = self._batch_rev = self._batch_rev + 1
        crev = prev.create_revision
        conn.execute("INSERT INTO kv VALUES (?, ?, 1, ?, ?, ?)", (rev, key, crev, prev.mod_revision, prev.value))
        conn.execute("DELETE FROM kv_current WHERE name = ?", (key,))
        events.append(Event("DELETE", KeyValue(key, prev.value, crev, rev), prev))
        return rev, prev

    def _w_compact(self, conn: sqlite3.Connection, _k: str, _v: bytes, revision: int, _ev: list[Event]) -> Any:
        if revision > self._batch_rev:
            raise StorageError(f"compact: revision {revision} is a future revision (current {self._batch_rev})")
        current = self._compact_rev if self._batch_compact is None else self._batch_compact
        if revision <= current:
            return None
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('compact_rev', ?)", (revision,))
        self._batch_compact = revision
        return _COMPACTING

    def _compact_step(self) -> None:
        """Physically compact one chunk of revisions (lo, hi]: drop every row
        superseded by a row in that chunk, then the chunk's tombstones."""
        assert self._loop is not None
        lo = self._compact_done
        hi = min(lo + COMPACT_CHUNK, self._compact_rev)

        def chunk(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM kv WHERE id IN (SELECT o.id FROM kv y JOIN kv o"
                " ON o.name = y.name AND o.id < y.id WHERE y.id > ? AND y.id <= ?)",
                (lo, hi),
            )
            conn.execute("DELETE FROM kv WHERE id > ? AND id <= ? AND deleted = 1", (lo, hi))
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('compact_done', ?)", (hi,))

        futs, err = self._compact_futs, None
        try:
            self._write_txn(chunk)
            self._compact_done = hi
        except Exception as e:  # logical compaction stands; retried at the next compact()
            self._compact_paused = True
            err = StorageError(f"sqlite compaction failed: {e!r}")
        if err is not None or hi >= self._compact_rev:
            self._compact_futs = []
            self._loop.call_soon_threadsafe(self._complete, [(f, None, err) for f in futs], [])

    def _complete(self, results: list[tuple[asyncio.Future[Any], Any, BaseException | None]], events: list[Event]) -> None:
        """On the event loop: fan the batch's events out, resolve the futures."""
        if events:
            for sub in list(self._subs):
                evs = events if not sub.prefix else [e for e in events if e.kv.key.startswith(sub.prefix)]
                if not evs:
                    continue
                if sub.size + len(evs) > sub.limit:
                    sub.overflow = True  # detach; the watcher catches up from the log
                    sub.queue.clear()
                    sub.size = 0
                    self._subs.discard(sub)
                else:
                    sub.queue.append(evs)
                    sub.size += len(evs)
                sub.wake.set()
        for fut, res, exc in results:
            if fut.done():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(res)

    # -------------------------------------------------------------- reads
    def _rconn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            self._rconns.append(conn)
        return conn

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closed or self._readers is None:
            raise StorageError("store is closed" if self._closed else "store not started")
        return await asyncio.get_running_loop().run_in_executor(self._readers, fn, *args)

    def _snapshot(self, conn: sqlite3.Connection, revision: int) -> int:
        """Inside a read transaction: check ``revision`` and return the
        revision the snapshot is at."""
        seq, compact = conn.execute(_Q_SNAPSHOT).fetchone()
        seq, compact = seq or 0, compact or 0
        if revision and revision < compact:
            raise CompactedError(revision, compact, seq)
        if revision > seq:
            raise StorageError(f"required revision {revision} is a future revision (current {seq})")
        return seq

    def _r_get(self, key: str, revision: int) -> KeyValue | None:
        conn = self._rconn()
        if not revision:
            return self._current(conn, key)
        conn.execute("BEGIN")
        try:
            self._snapshot(conn, revision)
            row = conn.execute(
                "SELECT id, deleted, create_revision, value FROM kv WHERE name = ? AND id <= ? ORDER BY id DESC LIMIT 1",
                (key, revision),
            ).fetchone()
        finally:
            conn.execute("COMMIT")
        if row is None or row[1]:
            return None
        return KeyValue(key, row[3], row[2], row[0])

    def _r_range(self, prefix: str, start_after: str | None, limit: int, revision: int) -> RangeResult:
        conn = self._rconn()
        lim = f" LIMIT {int(limit)}" if limit > 0 else ""
        conn.execute("BEGIN")
        try:
            rev = self._snapshot(conn, revision)
            if not revision:
                where, args = _key_bounds(prefix, start_after, "c.name")
                rows = conn.execute(
                    "SELECT c.name, c.id, c.create_revision, kv.value FROM kv_current c JOIN kv ON kv.id = c.id"
                    f" WHERE {where} ORDER BY c.name{lim}",
                    args,
                ).fetchall()
                count = len(rows)
                if limit > 0 and count >= limit:
                    count = conn.execute(f"SELECT COUNT(*) FROM kv_current c WHERE {where}", args).fetchone()[0]
            else:
                rev = revision
                where, args = _key_bounds(prefix, start_after, "name")
                latest = f"SELECT MAX(id) AS mid FROM kv WHERE {where} AND id <= ? GROUP BY name"
                args = [*args, revision]
                rows = conn.execute(
                    f"SELECT kv.name, kv.id, kv.create_revision, kv.value FROM ({latest}) m JOIN kv ON kv.id = m.mid"
                    f" WHERE kv.deleted = 0 ORDER BY kv.name{lim}",
                    args,
                ).fetchall()
                count = len(rows)
                if limit > 0 and count >= limit:
                    count = conn.execute(
                        f"SELECT COUNT(*) FROM ({latest}) m JOIN kv ON kv.id = m.mid WHERE kv.deleted = 0", args
                    ).fetchone()[0]
        finally:
            conn.execute("COMMIT")
        kvs = [KeyValue(r[0], r[3], r[2], r[1]) for r in rows]
        return RangeResult(kvs=kvs, revision=rev, more=count > len(kvs), count=count)

    def _r_history(self, prefix: str, after: int) -> list[Event]:
        """Watch replay: up to REPLAY_PAGE events under ``prefix`` after ``after``."""
        conn = self._rconn()
        where, args = _key_bounds(prefix, None, "kv.name")
        conn.execute("BEGIN")
        try:
            seq, compact = conn.execute(_Q_SNAPSHOT).fetchone()
            if after < (compact or 0):
                raise CompactedError(after, compact, seq or 0)
            rows = conn.execute(
                "SELECT kv.id, kv.name, kv.deleted, kv.create_revision, kv.value, kv.prev_revision, p.value"
                f" FROM kv LEFT JOIN kv p ON p.id = kv.prev_revision WHERE kv.id > ? AND {where}"
                f" ORDER BY kv.id LIMIT {REPLAY_PAGE}",
                [after, *args],
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        out: list[Event] = []
        for rid, name, deleted, crev, value, prev_rev, prev_value in rows:
            prev = None
            if prev_rev and prev_value is not None:
                prev = KeyValue(name, prev_value, crev, prev_rev)
            elif prev_rev and deleted:  # a tombstone carries the deleted value itself
                prev = KeyValue(name, value, crev, prev_rev)
            if deleted:
                out.append(Event("DELETE", KeyValue(name, value, crev, rid), prev))
            else:
                out.append(Event("PUT", KeyValue(name, value, crev, rid), prev))
        return out

    # the current revision is known in-process: consistent reads can be
    # served from a watch cache that has seen it
    revision_is_local = True

    async def current_revision(self) -> int:
        return self._rev

    @property
    def compact_revision(self) -> int:
        return self._compact_rev

    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        if revision and revision < self._compact_rev:
            raise CompactedError(revision, self._compact_rev, self._rev)
        return await self._read(self._r_get, key, revision)

    async def range(
        self, prefix: str, *, start_after: str | None = None, limit: int = 0, revision: int = 0
    ) -> RangeResult:
        if revision and revision < self._compact_rev:
            raise CompactedError(revision, self._compact_rev, self._rev)
        return await self._read(self._r_range, prefix, start_after, limit, revision)

    # -------------------------------------------------------------- watch
    def watch(self, prefix: str, after_revision: int) -> AsyncIterator[list[Event]]:
        return self._watch(prefix, after_revision)

    async def _watch(self, prefix: str, after_revision: int) -> AsyncIterator[list[Event]]:
        if after_revision < self._compact_rev:
            raise CompactedError(after_revision, self._compact_rev, self._rev)
        last = after_revision
        while True:
            if self._closed:
                return
            sub = _Sub(prefix, self.watch_queue_limit)
            self._subs.add(sub)  # subscribe first ...
            try:
                while True:  # ... then replay the log after `last` ...
                    if self._closed:
                        return
                    evs = await self._read(self._r_history, prefix, last)
                    if evs:
                        last = evs[-1].kv.mod_revision
                        yield evs
                    if len(evs) < REPLAY_PAGE:
                        break
                while not sub.overflow:  # ... then live, dropping what was sent
                    if sub.closed:
                        return
                    if not sub.queue:
                        sub.wake.clear()
                        await sub.wake.wait()
                        continue
                    out: list[Event] = []
                    while sub.queue and len(out) < LIVE_BATCH:
                        evs = sub.queue.popleft()
                        sub.size -= len(evs)
                        out.extend(e for e in evs if e.kv.mod_revision > last)
                    if out:
                        last = out[-1].kv.mod_revision
                        yield out
            finally:
                self._subs.discard(sub)
            # overflowed: loop to re-subscribe and catch up from the log
