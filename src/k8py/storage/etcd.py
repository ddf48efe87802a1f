"""etcd v3 backend over etcd's gRPC-gateway JSON API (etcd 3.4+), with aiohttp.

Mapping of the :class:`~k8py.storage.interface.Store` contract:

* ``create``  = txn(create_revision(key) == 0 -> put, else range(key)).
* ``update``  = txn(create_revision > 0 and mod_revision == expected -> put,
  else range(key)); the failure branch tells NotFound from Conflict and
  carries the current value.
* ``delete``  = deleterange(prev_kv) or, with a precondition, the same txn
  shape with a delete-range (prev_kv) in the success branch.
* ``range``   = /v3/kv/range over [prefix, prefix_end) (``start_after`` ->
  key = start_after + "\\0"); ``count``/``more`` come from etcd, so
  ``count`` counts the keys after ``start_after``, ignoring ``limit``.
* ``watch``   = one streaming POST /v3/watch per watcher (start_revision =
  after_revision + 1, prev_kv). A broken stream is re-opened from the last
  delivered revision, so no revision is skipped or repeated; a "compacted"
  cancel becomes :class:`CompactedError`.
* ``compact`` = /v3/kv/compaction (physical: false).

etcd never tells a client its compact revision directly. ``start()`` finds
it with a binary search of cheap ranges at old revisions, ``compact()`` and
compacted responses keep it up to date. Keys/values are base64 in JSON and
int64s are strings. Unary requests share one ClientSession with a bounded
pool (``pool_size``); watches use a second, unbounded session because a watch
holds its HTTP connection for its whole life and must not starve the pool.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, AsyncIterator

import aiohttp
import orjson

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


def _b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode("ascii")


def _unb64(s: str | None) -> bytes:
    return base64.b64decode(s) if s else b""


def _kv(d: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=_unb64(d.get("key")).decode(),
        value=_unb64(d.get("value")),
        create_revision=int(d.get("create_revision", 0)),
        mod_revision=int(d.get("mod_revision", 0)),
    )


def _prefix_end(prefix: bytes) -> bytes:
    """etcd's "range_end for a prefix": last byte + 1 (b"\\0" means no end)."""
    p = bytearray(prefix)
    while p:
        if p[-1] < 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return b"\0"


def _rev(header: dict[str, Any] | None) -> int:
    return int((header or {}).get("revision", 0))


class EtcdStore:
    """:class:`~k8py.storage.interface.Store` on a real etcd v3 cluster."""

    def __init__(self, endpoints: list[str] | str, *, pool_size: int = 64, timeout: float = 30.0) -> None:
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e]
        self.endpoints = [e if "://" in e else "http://" + e for e in endpoints]
        self.endpoints = [e.rstrip("/") for e in self.endpoints]
        if not self.endpoints:
            raise ValueError("no etcd endpoints")
        self.pool_size = pool_size
        self.timeout = timeout
        self._ep = 0
        self._session: aiohttp.ClientSession | None = None
        self._wsession: aiohttp.ClientSession | None = None
        self._compact_rev = 0
        self._closed = False

    # ----------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.pool_size, limit_per_host=self.pool_size),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        self._wsession = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_connect=self.timeout),
        )
        await self._probe_compact_revision()

    async def close(self) -> None:
        self._closed = True
        for s in (self._session, self._wsession):
            if s is not None:
                await s.close()

    async def _probe_compact_revision(self) -> None:
        """Binary-search the smallest readable revision (etcd doesn't expose it)."""
        current = await self.current_revision()

        async def readable(rev: int) -> bool:
            try:
                await self._post("/v3/kv/range", {"key": _b64("\0"), "revision": rev, "count_only": True})
                return True
            except CompactedError:
                return False

        if current <= 1 or await readable(1):
            self._compact_rev = 0
            return
        lo, hi = 1, current  # lo unreadable, hi readable
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if await readable(mid):
                hi = mid
            else:
                lo = mid
        self._compact_rev = hi

    # ---------------------------------------------------------------- HTTP
    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._session is None or self._closed:
            raise StorageError("store is closed" if self._closed else "store not started")
        data = orjson.dumps(body)
        last_exc: Exception | None = None
        for _ in range(len(self.endpoints)):
            url = self.endpoints[self._ep] + path
            try:
                async with self._session.post(url, data=data, headers={"Content-Type": "application/json"}) as resp:
                    raw = await resp.read()
                    status = resp.status
                break
            except aiohttp.ClientConnectorError as e:  # never reached the server: safe to retry
                last_exc = e
                self._ep = (self._ep + 1) % len(self.endpoints)
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                raise StorageError(f"etcd request {path} failed: {e!r}") from e
        else:
            raise StorageError(f"etcd unreachable ({', '.join(self.endpoints)}): {last_exc!r}")
        try:
            out = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise StorageError(f"etcd {path}: HTTP {status}: {raw[:200]!r}") from e
        if status != 200 or "error" in out:
            msg = out.get("message") or out.get("error") or f"HTTP {status}"
            if "compacted" in str(msg):
                req = int(body.get("revision", 0))
                self._compact_rev = max(self._compact_rev, req + 1)
                raise CompactedError(req, self._compact_rev)
            raise StorageError(f"etcd {path}: {msg}")
        return out

    async def _txn(self, compare: list[dict[str, Any]], success: dict[str, Any], key: str) -> dict[str, Any]:
        return await self._post(
            "/v3/kv/txn",
            {"compare": compare, "success": [success], "failure": [{"request_range": {"key": _b64(key)}}]},
        )

    @staticmethod
    def _failure_kv(out: dict[str, Any]) -> KeyValue | None:
        kvs = out["responses"][0]["response_range"].get("kvs") or []
        return _kv(kvs[0]) if kvs else None

    # --------------------------------------------------------------- reads
    async def current_revision(self) -> int:
        out = await self._post("/v3/kv/range", {"key": _b64("\0"), "count_only": True})
        return _rev(out.get("header"))

    @property
    def compact_revision(self) -> int:
        return self._compact_rev

    def _check_compacted(self, revision: int) -> None:
        if revision and revision < self._compact_rev:
            raise CompactedError(revision, self._compact_rev)

    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        self._check_compacted(revision)
        body: dict[str, Any] = {"key": _b64(key)}
        if revision:
            body["revision"] = revision
        out = await self._post("/v3/kv/range", body)
        kvs = out.get("kvs")
        return _kv(kvs[0]) if kvs else None

    async def range(
        self, prefix: str, *, start_after: str | None = None, limit: int = 0, revision: int = 0
    ) -> RangeResult:
        self._check_compacted(revision)
        start = prefix.encode()
        if start_after is not None:
            start = max(start, start_after.encode() + b"\0")
        body: dict[str, Any] = {"key": _b64(start or b"\0"), "range_end": _b64(_prefix_end(prefix.encode()))}
        if limit > 0:
            body["limit"] = limit
        if revision:
            body["revision"] = revision
        out = await self._post("/v3/kv/range", body)
        kvs = [_kv(d) for d in out.get("kvs") or ()]
        return RangeResult(
            kvs=kvs,
            revision=revision or _rev(out.get("header")),
            more=bool(out.get("more", False)),
            count=int(out.get("count", 0)),
        )

    # -------------------------------------------------------------- writes
    async def create(self, key: str, value: bytes) -> int:
        k = _b64(key)
        out = await self._txn(
            [{"key": k, "result": "EQUAL", "target": "CREATE", "create_revision": 0}],
            {"request_put": {"key": k, "value": _b64(value)}},
            key,
        )
        if not out.get("succeeded"):
            raise KeyExistsError(key, self._failure_kv(out))
        return _rev(out.get("header"))

    def _guard(self, key: str, expected: int) -> list[dict[str, Any]]:
        k = _b64(key)
        return [
            {"key": k, "result": "GREATER", "target": "CREATE", "create_revision": 0},
            {"key": k, "result": "EQUAL", "target": "MOD", "mod_revision": expected},
        ]

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        out = await self._txn(
            self._guard(key, expected_revision), {"request_put": {"key": _b64(key), "value": _b64(value)}}, key
        )
        if not out.get("succeeded"):
            current = self._failure_kv(out)
            if current is None:
                raise KeyNotFoundError(key)
            raise ConflictError(key, current)
        return _rev(out.get("header"))

    async def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        if not expected_revision:
            out = await self._post("/v3/kv/deleterange", {"key": _b64(key), "prev_kv": True})
            prev = out.get("prev_kvs") or []
        else:
            out = await self._txn(
                self._guard(key, expected_revision),
                {"request_delete_range": {"key": _b64(key), "prev_kv": True}},
                key,
            )
            if not out.get("succeeded"):
                current = self._failure_kv(out)
                if current is None:
                    raise KeyNotFoundError(key)
                raise ConflictError(key, current)
            prev = out["responses"][0]["response_delete_range"].get("prev_kvs") or []
        if not prev:
            raise KeyNotFoundError(key)
        return _rev(out.get("header")), _kv(prev[0])

    async def compact(self, revision: int) -> None:
        if revision <= self._compact_rev:
            return
        try:
            await self._post("/v3/kv/compaction", {"revision": revision, "physical": False})
        except CompactedError:
            pass  # someone compacted further already
        self._compact_rev = max(self._compact_rev, revision)

    # --------------------------------------------------------------- watch
    def watch(self, prefix: str, after_revision: int) -> AsyncIterator[list[Event]]:
        return self._watch(prefix, after_revision)

    async def _watch(self, prefix: str, after_revision: int) -> AsyncIterator[list[Event]]:
        if after_revision < self._compact_rev:
            raise CompactedError(after_revision, self._compact_rev)
        key = prefix.encode()
        create = {"key": _b64(key or b"\0"), "range_end": _b64(_prefix_end(key)), "prev_kv": True}
        last = after_revision
        backoff = 0.05
        while not self._closed:
            if self._wsession is None:
                raise StorageError("store not started")
            url = self.endpoints[self._ep] + "/v3/watch"
            body = orjson.dumps({"create_request": {**create, "start_revision": last + 1}})
            try:
                async with self._wsession.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                    if resp.status != 200:
                        raise StorageError(f"etcd watch: HTTP {resp.status}: {(await resp.read())[:200]!r}")
                    buf = bytearray()
                    async for chunk in resp.content.iter_any():
                        buf += chunk
                        while (nl := buf.find(b"\n")) >= 0:
                            line = bytes(buf[:nl])
                            del buf[: nl + 1]
                            if not line.strip():
                                continue
                            evs = self._watch_message(orjson.loads(line), last)
                            if evs:
                                backoff = 0.05
                                last = evs[-1].kv.mod_revision
                                yield evs
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
                if self._closed:
                    return
                self._ep = (self._ep + 1) % len(self.endpoints)
            # stream ended or broke: re-open it after `last` (no gap, no duplicate)
            if self._closed:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _watch_message(self, msg: dict[str, Any], last: int) -> list[Event]:
        """Events of one watch response (etcd never repeats a revision within a
        stream, and a re-opened stream starts after ``last``)."""
        if "error" in msg:
            err = msg["error"]
            raise StorageError(f"etcd watch: {err.get('message', err) if isinstance(err, dict) else err}")
        result = msg.get("result") or {}
        compact = int(result.get("compact_revision", 0))
        if compact:
            self._compact_rev = max(self._compact_rev, compact)
            raise CompactedError(last, compact, _rev(result.get("header")))
        if result.get("canceled"):
            raise StorageError(f"etcd watch canceled: {result.get('cancel_reason', '')}")
        out: list[Event] = []
        for e in result.get("events") or ():
            prev = _kv(e["prev_kv"]) if e.get("prev_kv") else None
            if e.get("type") == "DELETE":
                d = e["kv"]
                key = _unb64(d.get("key")).decode()
                rev = int(d.get("mod_revision", 0))
                kv = KeyValue(key, prev.value if prev else b"", prev.create_revision if prev else 0, rev)
                ev = Event("DELETE", kv, prev)
            else:
                ev = Event("PUT", _kv(e["kv"]), prev)
            out.append(ev)
        return out
