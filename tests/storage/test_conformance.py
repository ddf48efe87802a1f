"""One conformance suite for every storage backend (``store`` fixture:
sqlite and etcd), plus SQLite-only durability/restart/slow-watcher tests."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from k8py.storage import (
    CompactedError,
    ConflictError,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    StorageError,
    open_store,
    run_compactor,
)
from k8py.storage.sqlite import SQLiteStore

SRC = str(Path(__file__).resolve().parents[2] / "src")


async def collect(it: Any, n: int, timeout: float = 10.0) -> list[Event]:
    """Read batches from a watch until ``n`` events arrived."""
    out: list[Event] = []

    async def _go() -> None:
        async for batch in it:
            assert batch, "empty watch batch"
            out.extend(batch)
            if len(out) >= n:
                return

    await asyncio.wait_for(_go(), timeout)
    return out


def revs(events: list[Event]) -> list[int]:
    return [e.kv.mod_revision for e in events]


# ------------------------------------------------------------------ basics
def test_create_get_exists(store: Any, run: Any, pfx: str) -> None:
    async def body() -> None:
        k = pfx + "a"
        assert await store.get(k) is None
        rev = await store.create(k, b"one")
        kv = await store.get(k)
        assert (kv.key, kv.value, kv.create_revision, kv.mod_revision) == (k, b"one", rev, rev)
        with pytest.raises(KeyExistsError) as ei:
            await store.create(k, b"two")
        assert ei.value.key == k
        assert ei.value.current is not None and ei.value.current.mod_revision == rev
        assert (await store.get(k)).value == b"one"
        empty = pfx + "empty"
        r2 = await store.create(empty, b"")
        assert (await store.get(empty)).value == b"" and r2 > rev

    run(body())


def test_update(store: Any, run: Any, pfx: str) -> None:
    async def body() -> None:
        k = pfx + "a"
        r1 = await store.create(k, b"v1")
        r2 = await store.update(k, b"v2", r1)
        assert r2 > r1
        kv = await store.get(k)
        assert (kv.value, kv.create_revision, kv.mod_revision) == (b"v2", r1, r2)
        with pytest.raises(ConflictError) as ei:
            await store.update(k, b"v3", r1)  # stale
        assert ei.value.key == k
        assert ei.value.current.mod_revision == r2 and ei.value.current.value == b"v2"
        with pytest.raises(KeyNotFoundError):
            await store.update(pfx + "missing", b"x", r2)
        with pytest.raises(KeyNotFoundError):
            await store.update(pfx + "missing", b"x", 0)
        assert await store.get(pfx + "missing") is None
        assert (await store.get(k)).value == b"v2"

    run(body())


def test_delete(store: Any, run: Any, pfx: str) -> None:
    async def body() -> None:
        a, b = pfx + "a", pfx + "b"
        ra = await store.create(a, b"A")
        rd, old = await store.delete(a)
        assert rd > ra and (old.key, old.value, old.mod_revision, old.create_revision) == (a, b"A", ra, ra)
        assert await store.get(a) is None
        with pytest.raises(KeyNotFoundError):
            await store.delete(a)
        with pytest.raises(KeyNotFoundError):
            await store.delete(a, expected_revision=ra)
        rb = await store.create(b, b"B")
        rb2 = await store.update(b, b"B2", rb)
        with pytest.raises(ConflictError) as ei:
            await store.delete(b, expected_revision=rb)
        assert ei.value.current.mod_revision == rb2
        rdel, old = await store.delete(b, expected_revision=rb2)
        assert rdel > rb2 and old.value == b"B2" and old.mod_revision == rb2
        # re-creating starts a new life: new create_revision
        rn = await store.create(a, b"again")
        kv = await store.get(a)
        assert kv.create_revision == rn > rd and kv.value == b"again"

    run(body())


def test_revision_monotonic_and_shared(store: Any, run: Any, pfx: str) -> None:
    async def body() -> None:
        seen = []
        for i in range(10):
            seen.append(await store.create(f"{pfx}x{i}", b"v"))
            seen.append(await store.update(f"{pfx}x{i}", b"w", seen[-1]))
        assert seen == sorted(seen) and len(set(seen)) == len(seen)
        cur = await store.current_revision()
        assert cur >= seen[-1]
        assert (await store.range(pfx)).revision >= seen[-1]

    run(body())


# ------------------------------------------------------------------- range
def test_range_prefix_limit_pagination_count(store: Any, run: Any, pfx: str) -> None:
    async def body() -> None:
        names = [f"{pfx}ns/k{i:02d}" for i in range(10)]
        for n in reversed(names):
            await store.create(n, n.encode())
        await store.create(pfx + "nsx/other", b"-")  # shares the string prefix "ns" but not "ns/"
        await store.create(pfx[:-1] + "Z", b"-")  # outside pfx entirely
        res = await store.range(pfx + "ns/")
        assert [kv.key for kv in res.kvs] == names
        assert [kv.value for kv in res.kvs] == [n.encode() for n in names]
        assert (res.count, res.more) == (10, False)
        assert res.revision == await store.current_revision()
        assert (await store.range(pfx)).count == 11
        page = await store.range(pfx + "ns/", limit=3)
        assert [kv.key for kv in page.kvs] == names[:3] and page.more and page.count == 10
        got, after, pages = [], None, 0
        while True:
            page = await store.range(pfx + "ns/", start_after=after, limit=4)
            pages += 1
            got += [kv.key for kv in page.kvs]
            assert page.count == 10 - len(got) + len(page.kvs)  # keys after start_after
            if not page.more:
                break
            after = page.kvs[-1].key
        assert got == names and pages == 3
        assert (await store.range(pfx + "ns/", start_after=names[-1])).kvs == []
        assert (await store.range(pfx + "nope/")).count == 0

    run(body())


def test_range_and_get_at_older_revision(store: Any, run: Any, pfx: str) -> None:
    async def body() -> None:
        a, b, c = pfx + "a", pfx + "b", pfx + "c"
        r1 = await store.create(a, b"a1")
        r2 = await store.create(b, b"b1")
        r3 = await store.update(a, b"a2", r1)
        r4, _ = await store.delete(b)
        await store.create(c, b"c1")

        def view(res: Any) -> list[tuple[str, bytes, int]]:
            return [(kv.key, kv.value, kv.mod_revision) for kv in res.kvs]

        at2 = await store.range(pfx, revision=r2)
        assert view(at2) == [(a, b"a1", r1), (b, b"b1", r2)] and at2.revision == r2 and at2.count == 2
        assert view(await store.range(pfx, revision=r3)) == [(a, b"a2", r3), (b, b"b1", r2)]
        assert view(await store.range(pfx, revision=r4)) == [(a, b"a2", r3)]
        lim = await store.range(pfx, revision=r3, limit=1)
        assert view(lim) == [(a, b"a2", r3)] and lim.more and lim.count == 2
        nxt = await store.range(pfx, revision=r3, limit=1, start_after=a)
        assert view(nxt) == [(b, b"b1", r2)] and not nxt.more
        assert (await store.get(a, r2)).value == b"a1"
        assert (await store.get(a, r3)).value == b"a2"
        assert (await store.get(b, r3)).value == b"b1"
        assert await store.get(b, r4) is None
        assert await store.get(c, r4) is None
        with pytest.raises(StorageError):
            await store.get(a, await store.current_revision() + 1000)

    run(body())


# ------------------------------------------------------------------- watch
def test_watch_replays_then_continues_live(store: Any, run: Any, pfx: str) -> None:
    async def body() -> None:
        early = [await store.create(f"{pfx}pre{i}", b"0") for i in range(10)]
        base = early[4]
        written: list[int] = list(early[5:])
        outside = pfx[:-1] + "-outside/k"

        async def writer(n: int) -> None:
            k = f"{pfx}w{n}"
            r = await store.create(k, b"0")
            written.append(r)
            for j in range(1, 19):
                r = await store.update(k, str(j).encode(), r)
                written.append(r)
            r, _ = await store.delete(k)
            written.append(r)
            await store.create(outside + str(n), b"x")

        total = len(written) + 10 * 20
        async with contextlib.aclosing(store.watch(pfx, base)) as it:
            first = await asyncio.wait_for(it.__anext__(), 10)
            events, _ = await asyncio.gather(
                collect(it, total - len(first)), asyncio.gather(*(writer(n) for n in range(10)))
            )
        events = first + events
        assert revs(events) == sorted(written), "gap, duplicate or reordering"
        assert all(e.kv.key.startswith(pfx) for e in events)
        for n in range(10):
            mine = [e for e in events if e.kv.key == f"{pfx}w{n}"]
            assert [e.type for e in mine] == ["PUT"] * 19 + ["DELETE"]
            assert mine[0].prev is None and mine[1].prev.value == b"0"
            assert [e.kv.value for e in mine[:-1]] == [str(j).encode() for j in range(19)]
            assert mine[-1].kv.value == b"18" and mine[-1].prev.value == b"18"

    run(body())


def test_watch_delete_carries_prior_value(store: Any, run: Any, pfx: str) -> None:
    async def body() -> None:
        k = pfx + "a"
        r1 = await store.create(k, b"first")
        r2 = await store.update(k, b"last", r1)
        async with contextlib.aclosing(store.watch(pfx, r2)) as it:
            rd, _ = await store.delete(k)
            (ev,) = await collect(it, 1)
        assert ev.type == "DELETE" and ev.kv.key == k
        assert (ev.kv.value, ev.kv.mod_revision, ev.kv.create_revision) == (b"last", rd, r1)
        assert ev.prev is not None and (ev.prev.value, ev.prev.mod_revision) == (b"last", r2)

    run(body())


def test_watch_from_current_sees_only_new(store: Any, run: Any, pfx: str) -> None:
    async def body() -> None:
        await store.create(pfx + "old", b"o")
        cur = await store.current_revision()
        async with contextlib.aclosing(store.watch(pfx + "sub/", cur)) as it:
            await store.create(pfx + "subX", b"no")  # same string prefix, different dir
            r = await store.create(pfx + "sub/new", b"n")
            evs = await collect(it, 1)
        assert revs(evs) == [r] and evs[0].type == "PUT" and evs[0].prev is None

    run(body())


# -------------------------------------------------------------- compaction
def test_compaction(store: Any, run: Any, pfx: str, make_store: Any) -> None:
    async def body() -> None:
        a, b = pfx + "a", pfx + "b"
        r1 = await store.create(a, b"a1")
        r2 = await store.update(a, b"a2", r1)
        r3 = await store.create(b, b"b1")
        r4 = await store.update(b, b"b2", r3)
        await store.compact(r3)
        assert store.compact_revision == r3
        await store.compact(r2)  # older than the compact revision: a no-op
        assert store.compact_revision == r3
        with pytest.raises(CompactedError) as ei:
            await store.watch(pfx, r1).__anext__()
        assert ei.value.requested == r1 and ei.value.compact_revision == r3
        with pytest.raises(CompactedError):
            await store.get(a, r1)
        with pytest.raises(CompactedError):
            await store.range(pfx, revision=r2)
        at3 = await store.range(pfx, revision=r3)
        assert [(kv.key, kv.value) for kv in at3.kvs] == [(a, b"a2"), (b, b"b1")]
        assert (await store.get(a, r3)).value == b"a2"
        assert (await store.get(a)).value == b"a2"
        async with contextlib.aclosing(store.watch(pfx, r3)) as it:
            evs = await collect(it, 1)
        assert revs(evs) == [r4] and evs[0].prev.value == b"b1"
        fresh = await make_store()  # a new client learns the compact revision
        assert fresh.compact_revision == r3
        with pytest.raises(StorageError):
            await store.compact(await store.current_revision() + 1000)

    run(body())


def test_run_compactor(store: Any, run: Any, pfx: str) -> None:
    async def body() -> None:
        r = await store.create(pfx + "a", b"0")
        task = asyncio.create_task(run_compactor(store, interval=0.1))
        try:
            await asyncio.sleep(0.15)  # first tick: remembers the revision, compacts nothing
            assert store.compact_revision < r
            r2 = await store.update(pfx + "a", b"1", r)
            for _ in range(100):
                if store.compact_revision >= r:
                    break
                await asyncio.sleep(0.02)
            assert r <= store.compact_revision <= r2  # the revision seen one tick earlier
            assert (await store.get(pfx + "a")).value == b"1"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    run(body())


# ------------------------------------------------------------- concurrency
def test_concurrent_creates(store: Any, run: Any, pfx: str) -> None:
    async def body() -> None:
        async def worker(w: int) -> list[int]:
            return [await store.create(f"{pfx}c{w:02d}/{i:02d}", b"x" * 64) for i in range(20)]

        results = await asyncio.gather(*(worker(w) for w in range(50)))
        all_revs = [r for rs in results for r in rs]
        assert len(all_revs) == 1000 == len(set(all_revs))
        assert all(rs == sorted(rs) for rs in results)
        res = await store.range(pfx, limit=10)
        assert res.count == 1000 and res.more

    run(body(), timeout=60)


# ------------------------------------------------------------ SQLite-only
def test_open_store_urls(tmp_path: Path) -> None:
    assert open_store("", str(tmp_path)).path == str(tmp_path / "state.db")
    assert open_store("sqlite://", str(tmp_path)).path == str(tmp_path / "state.db")
    assert open_store("sqlite:///x/y.db", str(tmp_path)).path == "/x/y.db"
    assert open_store("etcd://127.0.0.1:1,127.0.0.1:2", "").endpoints == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    with pytest.raises(ValueError):
        open_store("mysql://x", "")


_WRITER = """
import asyncio, sys
sys.path.insert(0, sys.argv[2])
from k8py.storage.sqlite import SQLiteStore

async def main():
    s = SQLiteStore(sys.argv[1])
    await s.start()
    async def w(i):
        j = 0
        while True:
            k = f"/d/{i}/{j}"
            await s.create(k, b"x" * 200)
            sys.stdout.write(k + "\\n")
            sys.stdout.flush()
            j += 1
    await asyncio.gather(*(w(i) for i in range(20)))

asyncio.run(main())
"""


def test_sqlite_durable_across_sigkill(tmp_path: Path) -> None:
    db = str(tmp_path / "state.db")
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, db, SRC], stdout=subprocess.PIPE)
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        while len(acked) < 1000:
            line = proc.stdout.readline()
            assert line, "writer died early"
            acked.append(line.decode().strip())
    finally:
        proc.kill()  # SIGKILL mid-stream: writes are in flight
        rest, _ = proc.communicate(timeout=10)
    acked += [ln for ln in rest.decode().split("\n")[:-1]]  # only complete lines

    async def check() -> None:
        s = SQLiteStore(db)
        await s.start()
        try:
            present = {kv.key for kv in (await s.range("/d/")).kvs}
            missing = [k for k in acked if k not in present]
            assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
            r = await s.create("/after/crash", b"ok")
            assert r > max(kv.mod_revision for kv in (await s.range("/d/")).kvs)
        finally:
            await s.close()

    asyncio.run(check())


def test_sqlite_restart_keeps_revision_and_compaction(tmp_path: Path) -> None:
    db = str(tmp_path / "state.db")

    async def first() -> tuple[int, int]:
        s = SQLiteStore(db)
        await s.start()
        r = await s.create("/k/a", b"1")
        for i in range(5):
            r = await s.update("/k/a", str(i).encode(), r)
        await s.create("/k/gone", b"x")
        rd, _ = await s.delete("/k/gone")  # the newest row is a tombstone
        await s.compact(rd)  # ... and compaction removes it
        cur = await s.current_revision()
        await s.close()
        return cur, rd

    cur, comp = asyncio.run(first())
    with sqlite3.connect(db) as conn:  # superseded rows and tombstones are gone
        assert conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0] == 1

    async def second() -> None:
        s = SQLiteStore(db)
        await s.start()
        try:
            assert await s.current_revision() == cur
            assert s.compact_revision == comp
            with pytest.raises(CompactedError):
                await s.get("/k/a", comp - 1)
            assert (await s.get("/k/a")).value == b"4"
            assert await s.create("/k/new", b"n") == cur + 1
        finally:
            await s.close()

    asyncio.run(second())


def test_sqlite_slow_watcher_catches_up_from_log(tmp_path: Path) -> None:
    async def body() -> None:
        s = SQLiteStore(str(tmp_path / "state.db"), watch_queue_limit=10)
        await s.start()
        try:
            base = await s.current_revision()
            async with contextlib.aclosing(s.watch("/s/", base)) as it:
                written = [await s.create("/s/a0", b"0")]
                first = await collect(it, 1)
                for i in range(1, 300):  # far more than the queue holds, nobody reading
                    written.append(await s.update("/s/a0", str(i).encode(), written[-1]))
                rest = await collect(it, len(written) - 1)
            assert revs(first + rest) == written
            assert [e.kv.value for e in first + rest] == [str(i).encode() for i in range(300)]
        finally:
            await s.close()

    asyncio.run(body())


def test_sqlite_watch_survives_concurrent_compaction(tmp_path: Path) -> None:
    async def body() -> None:
        s = SQLiteStore(str(tmp_path / "state.db"))
        await s.start()
        try:
            r = await s.create("/c/a", b"0")
            for i in range(50):
                r = await s.update("/c/a", str(i).encode(), r)
            it = s.watch("/c/", 1)
            await s.compact(r)
            with pytest.raises(CompactedError):
                await it.__anext__()  # history it needs is gone: never a silent gap
        finally:
            await s.close()

    asyncio.run(body())
