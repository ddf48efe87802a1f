"""``k8py server``: the API server in this process, and the other
control-plane components as child processes (each could as well run on
another machine: they talk to the API server only, through the admin
kubeconfig).  A child that exits is restarted after a pause; children get
SIGTERM when the server stops, and die with it if it is killed."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import sys
from dataclasses import dataclass, field

from .apiserver.server import APIServer, Config

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0

    async def keep_running(self, stopping: asyncio.Event) -> None:
        delay = 1.0
        while not stopping.is_set():
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, preexec_fn=_die_with_parent)
            log.info("started %s (pid %d)", self.name, self.proc.pid)
            rc = await self.proc.wait()
            if stopping.is_set():
                return
            self.restarts += 1
            log.warning("%s exited with %s; restarting in %.0f s", self.name, rc, delay)
            try:
                await asyncio.wait_for(stopping.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, 30.0)

    async def stop(self, grace: float = 10.0) -> None:
        p = self.proc
        if p is None or p.returncode is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(p.wait(), grace)
        except asyncio.TimeoutError:
            p.kill()
            await p.wait()


@dataclass
class ServerOptions:
    disable_scheduler: bool = False
    disable_controller_manager: bool = False
    scheduler_args: list[str] = field(default_factory=list)
    controller_manager_args: list[str] = field(default_factory=list)
    disable_agent: bool = False
    kubelet_args: list[str] = field(default_factory=list)


def kubelet_argv(cfg: Config, extra: list[str]) -> list[str]:
    """The agent's flags for this server: its state under the server's data dir. A data dir other than
    the default gets its own pod log dir, cgroup root and bridge name, so that two servers (tests) on
    one machine never share them."""
    import hashlib
    import os
    data = os.path.abspath(cfg.data_dir)
    args = ["kubelet", "--kubeconfig", cfg.kubeconfig, "--root-dir", os.path.join(data, "kubelet"),
            "--data-dir", data]
    if data != "/var/lib/k8py":
        tag = hashlib.sha256(data.encode()).hexdigest()[:8]
        args += ["--pod-log-dir", os.path.join(data, "log", "pods"), "--cgroup-root", f"k8py-{tag}",
                 "--cni-bridge", f"k8py{tag}"]
    if cfg.advertise_address not in ("127.0.0.1", "::1", "0.0.0.0", ""):
        args += ["--node-ip", cfg.advertise_address]
    return args + list(extra)


def _k8py(*args: str) -> list[str]:
    return [sys.executable, "-m", "k8py.cli", *args]


async def run(cfg: Config, opts: ServerOptions) -> None:
    srv = APIServer(cfg)
    await srv.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    children = []
    if not opts.disable_controller_manager:
        children.append(Child("controller-manager", _k8py(
            "controller-manager", "--kubeconfig", cfg.kubeconfig, *opts.controller_manager_args)))
    if not opts.disable_scheduler:
        children.append(Child("scheduler", _k8py(
            "scheduler", "--kubeconfig", cfg.kubeconfig, *opts.scheduler_args)))
    if not opts.disable_agent:
        children.append(Child("kubelet", _k8py(*kubelet_argv(cfg, opts.kubelet_args))))
    tasks = [asyncio.create_task(c.keep_running(stopping)) for c in children]
    await stopping.wait()
    await asyncio.gather(*(c.stop() for c in children))
    await asyncio.gather(*tasks, return_exceptions=True)
    await srv.stop()
