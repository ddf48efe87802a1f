"""Named network namespaces, as `ip netns` makes them.

A pod's network namespace is a file under /run/netns (iproute2's directory,
so `ip netns exec NAME ...` works on it for debugging) onto which the
namespace is bind-mounted: it outlives the process that made it and is
removed by unmounting and deleting the file. The CNI plugins and runc take
the file's path.

Every function is a coroutine: the work is done by `ip` in an asyncio
subprocess (a few milliseconds each).
"""

from __future__ import annotations

import asyncio
import os
import re

from k8py.kubelet import execute

NETNS_DIR = "/run/netns"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")


class NetnsError(Exception):
    """A network namespace could not be made, removed or entered."""


def netns_path(name: str) -> str:
    """The path of the named namespace's file."""
    _check_name(name)
    return os.path.join(NETNS_DIR, name)


def netns_exists(name: str) -> bool:
    return os.path.exists(netns_path(name))


async def create_netns(name: str) -> str:
    """Make the named namespace (with its loopback down, as the kernel
    makes it) and return its path. Fails if it exists already."""
    path = netns_path(name)
    if os.path.exists(path):
        raise NetnsError(f"network namespace {name} exists already")
    await _ip("netns", "add", name)
    return path


async def delete_netns(name: str) -> bool:
    """Unmount and remove the named namespace. Returns False when there was
    none (deleting is idempotent). Processes still inside keep it alive in
    the kernel until they exit."""
    path = netns_path(name)
    if not os.path.exists(path):
        return False
    await _ip("netns", "delete", name)
    return True


async def run_in_netns(
    name: str, *argv: str, timeout: float | None = 30.0, input: bytes | None = None
) -> tuple[int, bytes, bytes]:
    """Run a command inside the namespace; returns (exit code, stdout,
    stderr). Only the network namespace is entered (mounts stay the host's)."""
    path = netns_path(name)
    if not os.path.exists(path):
        raise NetnsError(f"no network namespace {name}")
    proc = await asyncio.create_subprocess_exec(
        "nsenter",
        f"--net={path}",
        "--",
        *argv,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise NetnsError(f"{argv[0]} in {name} timed out after {timeout}s") from None
    assert proc.returncode is not None
    return proc.returncode, out, err


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise NetnsError(f"bad network namespace name {name!r}")


async def _ip(*args: str) -> None:
    returncode, out, err = await execute.run(["ip", *args])
    if returncode != 0:
        msg = (err or out).decode(errors="replace").strip()
        raise NetnsError(f"ip {' '.join(args)}: {msg}")
