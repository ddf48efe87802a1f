"""k8py storage: a revisioned key-value store shaped like etcd (see ``interface``).

Backends:

* ``SQLiteStore`` (default): embedded, one file, group commit, in-process watch.
* ``EtcdStore``: a real etcd v3 cluster through its JSON gateway.

``open_store(url, data_dir)`` picks one from a URL:

* ``""``, ``"sqlite://"``            -> SQLite at ``<data_dir>/state.db``
* ``"sqlite:///abs/path/state.db"``  -> SQLite at that path
  (``"sqlite://rel/path.db"`` is relative to ``data_dir``)
* ``"etcd://host:port[,host:port...]"`` -> etcd (plain HTTP)

``run_compactor(store)`` keeps history bounded the way kube-apiserver does:
every ``interval`` seconds (default 300, kube-apiserver's
``--etcd-compaction-interval``) it compacts to the revision it saw at the
*previous* tick, so every revision stays watchable for at least one interval
(and at most two). ``keep`` additionally retains at least that many of the
most recent revisions (0: no such floor).
"""

from __future__ import annotations

import asyncio
import logging
import os

from .interface import (
    CompactedError,
    ConflictError,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
    StorageError,
    Store,
)

__all__ = [
    "CompactedError",
    "ConflictError",
    "Event",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "RangeResult",
    "StorageError",
    "Store",
    "open_store",
    "run_compactor",
]

log = logging.getLogger(__name__)


def open_store(url: str, data_dir: str) -> Store:
    """Build (not start) the store named by ``url``; see the module docstring."""
    url = (url or "").strip()
    if url in ("", "sqlite", "sqlite:", "sqlite://"):
        from .sqlite import SQLiteStore

        return SQLiteStore(os.path.join(data_dir, "state.db"))
    if url.startswith("sqlite://"):
        from .sqlite import SQLiteStore

        path = url[len("sqlite://") :]
        if not os.path.isabs(path):
            path = os.path.join(data_dir, path)
        return SQLiteStore(path)
    if url.startswith("etcd://"):
        from .etcd import EtcdStore

        hosts = [h.strip() for h in url[len("etcd://") :].rstrip("/").split(",") if h.strip()]
        if not hosts:
            raise ValueError(f"no etcd endpoints in {url!r}")
        return EtcdStore(["http://" + h for h in hosts])
    raise ValueError(f"unsupported storage URL {url!r} (use sqlite:// or etcd://host:port)")


async def run_compactor(store: Store, interval: float = 300.0, keep: int = 0) -> None:
    """Compact ``store`` forever (cancel the task to stop); see the module
    docstring. Errors are logged and retried at the next tick."""
    previous = 0
    while True:
        await asyncio.sleep(interval)
        try:
            current = await store.current_revision()
            target = previous
            if keep > 0:
                target = min(target, current - keep)
            if target > store.compact_revision:
                await store.compact(target)
                log.info("storage compacted to revision %d (current %d)", target, current)
            previous = current
        except asyncio.CancelledError:
            raise
        except Exception:  # keep compacting at the next tick
            log.exception("storage compaction failed")
