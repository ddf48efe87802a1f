"""The storage contract: a revisioned key-value store shaped like etcd's.

One global revision counter orders every write; an object's
``resourceVersion`` is the revision of its last write (``mod_revision``).
Keys look like ``/registry/<group>/<resource>/<namespace>/<name>``.
Values are opaque bytes (the API server stores JSON).

Every backend (``sqlite``, ``etcd``) implements :class:`Store` and passes the
same conformance suite (``tests/storage``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One change. For DELETE, ``kv.value`` is the last value before the delete
    and ``kv.mod_revision`` is the revision of the delete itself."""

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev: KeyValue | None = None


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KeyValue]
    revision: int  # the revision the range was read at
    more: bool  # True when ``limit`` cut the result
    count: int  # how many keys match the whole range (at that revision)


class StorageError(Exception):
    pass


class KeyExistsError(StorageError):
    def __init__(self, key: str, current: KeyValue | None = None):
        super().__init__(f"key exists: {key}")
        self.key = key
        self.current = current


class KeyNotFoundError(StorageError):
    def __init__(self, key: str):
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StorageError):
    """The key's mod_revision is not the expected one; ``current`` is what is stored now."""

    def __init__(self, key: str, current: KeyValue | None):
        super().__init__(f"revision conflict on {key}")
        self.key = key
        self.current = current


class CompactedError(StorageError):
    def __init__(self, requested: int, compact_revision: int, current_revision: int = 0):
        super().__init__(f"revision {requested} has been compacted (compacted up to {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision
        self.current_revision = current_revision


class Store(Protocol):
    """What the API server needs from storage. All methods are coroutines
    running on the caller's event loop, except ``watch`` which is an async
    iterator. A write returns only once it is durable."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def current_revision(self) -> int: ...

    @property
    def compact_revision(self) -> int: ...

    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        """The key's value at ``revision`` (0: now). CompactedError if that
        revision is compacted."""

    async def range(
        self,
        prefix: str,
        *,
        start_after: str | None = None,
        limit: int = 0,
        revision: int = 0,
    ) -> RangeResult:
        """Keys starting with ``prefix`` (sorted by key), only those greater
        than ``start_after`` if given, at most ``limit`` (0: all), as of
        ``revision`` (0: now; CompactedError if compacted away)."""

    async def create(self, key: str, value: bytes) -> int:
        """Store a new key; return its revision. KeyExistsError if present."""

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        """Replace the value if the key's mod_revision equals
        ``expected_revision``; return the new revision. ConflictError
        (with the current value) or KeyNotFoundError otherwise."""

    async def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        """Delete (if the mod_revision matches, when ``expected_revision`` is
        not 0); return the delete's revision and the deleted value."""

    def watch(self, prefix: str, after_revision: int) -> AsyncIterator[list[Event]]:
        """Every change under ``prefix`` with revision > ``after_revision``, in
        revision order, in batches, never skipping one; then live changes until
        the iterator is closed. Raises CompactedError (on first iteration) when
        ``after_revision`` < ``compact_revision``."""

    async def compact(self, revision: int) -> None:
        """Forget history older than ``revision`` (the latest value of each
        live key is always kept)."""
