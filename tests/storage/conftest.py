"""Fixtures for the storage conformance suite.

* ``store`` is parametrized over ``sqlite`` and ``etcd``; it is started on a
  fresh event loop (``loop``) and tests drive it with ``run(coro)``.
* The etcd backend talks to ONE session-scoped etcd process started here on
  loopback with free ports; each test writes under its own ``pfx`` so tests
  don't see each other's keys. A missing etcd binary is an error, not a skip.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Coroutine, Iterator

import pytest

try:
    import k8py.storage  # noqa: F401
except ImportError:  # not installed into the venv: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from k8py.storage.etcd import EtcdStore  # noqa: E402
from k8py.storage.sqlite import SQLiteStore  # noqa: E402

from tests.support.etcd import ETCD_BIN, EtcdProcess  # noqa: E402


@pytest.fixture(scope="session")
def etcd_url() -> Iterator[str]:
    if not (os.path.isfile(ETCD_BIN) and os.access(ETCD_BIN, os.X_OK)):
        pytest.fail(f"etcd binary not found ({ETCD_BIN}); `make test` installs it (apt: etcd-server)")
    server = EtcdProcess()
    server.start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    try:
        yield lp
    finally:
        lp.run_until_complete(lp.shutdown_asyncgens())
        lp.close()


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    def _run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    return _run


@pytest.fixture(params=["sqlite", "etcd"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(request: pytest.FixtureRequest, backend: str, loop: asyncio.AbstractEventLoop, tmp_path: Path):
    """``await make_store()`` opens (and starts) another store on the same
    data as ``store``; closed at teardown."""
    opened: list[Any] = []
    if backend == "etcd":
        request.getfixturevalue("etcd_url")  # start etcd outside the test's event loop

    async def _make(**kw: Any) -> Any:
        if backend == "sqlite":
            s: Any = SQLiteStore(str(tmp_path / "state.db"), **kw)
        else:
            s = EtcdStore(request.getfixturevalue("etcd_url"), **kw)
        await s.start()
        opened.append(s)
        return s

    yield _make
    for s in reversed(opened):
        loop.run_until_complete(s.close())


@pytest.fixture
def store(make_store: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> Any:
    return loop.run_until_complete(make_store())


_counter = itertools.count()


@pytest.fixture
def pfx(request: pytest.FixtureRequest) -> str:
    """A key prefix no other test uses (the etcd server is shared)."""
    return f"/registry/t{next(_counter)}-{uuid.uuid4().hex[:8]}/"
