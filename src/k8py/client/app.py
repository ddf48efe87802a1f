"""What every k8py component process shares: the ``--kubeconfig`` flag,
logging, running under uvloop, and a clean stop on SIGTERM/SIGINT (the
main coroutine is cancelled, so leases are released and tasks end)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any, Awaitable, Callable

from . import kubeconfig
from .rest import Client


def add_client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", default=None,
                   help="kubeconfig file (default $KUBECONFIG, then the server's admin kubeconfig)")
    p.add_argument("-v", "--verbose", action="store_true")


def make_client(args: argparse.Namespace, user_agent: str, connections: int = 64) -> Client:
    path = kubeconfig.default_path(getattr(args, "kubeconfig", None))
    return Client(kubeconfig.load(path, user_agent=user_agent), connections=connections)


def run(main: Callable[[argparse.Namespace], Awaitable[Any]], args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    async def wrapped() -> Any:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await main(args)
        except asyncio.CancelledError:
            return 0

    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        rc = asyncio.run(wrapped())
    else:
        rc = uvloop.run(wrapped())
    return int(rc or 0)
