"""One worker per pod: kubelet's syncPod / syncTerminatingPod /
syncTerminatedPod for one pod, as a task that sleeps until something
changes (the pod in the API, a container exiting, a probe result, a
back-off running out, the periodic resync).

A pass of ``sync``:

1. A pod being deleted (or gone from the API) is terminated: preStop hooks,
   SIGTERM, the rest of the grace period, SIGKILL; its final status is
   written, its sandbox, network and volumes removed, and the API object
   deleted with grace 0 (the status manager's last act in kubelet).
2. The sandbox: network namespace from CNI (pod IP), /etc/hosts and
   resolv.conf, volumes mounted; a failure is an event and a retry.
3. Init containers one at a time, each to a successful exit; then every
   container, started in spec order: image (policy, pull secrets, back-off),
   env, mounts, create, start, postStart hook.
4. Exited containers are restarted per restartPolicy, after the
   CrashLoopBackOff delay (10 s doubling to 5 min, reset after 10 minutes
   of running); liveness/startup failures kill the container first.
5. The status is computed and written when it changed.

Instances: a container's instance number is its restartCount (the
runtime's attempt); the worker keeps the newest two instances (the
previous one serves ``kubectl logs --previous`` and lastState).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ..client.rest import APIError
from ..client.timeutil import now_rfc3339
from . import containers as ctr
from .podstatus import ContainerView, container_status, pod_status
from .runtime.interface import (CREATED, EXITED, RUNNING, ContainerConfig, ContainerStatus, PodSandboxConfig,
                                RuntimeFailure)

if TYPE_CHECKING:
    from .kubelet import Kubelet

log = logging.getLogger(__name__)
Obj = dict[str, Any]

BACKOFF_RESET = 600.0          # a container that ran this long starts its back-off over
DEFAULT_GRACE = 30


class PodWorker:
    def __init__(self, kl: "Kubelet", pod: Obj, *, static: bool = False) -> None:
        self.kl = kl
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.static = static
        self.removed = False          # gone from the API (or from the manifest dir)
        self.finished = asyncio.Event()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.sandbox_id: str | None = None
        self.netns: str | None = None
        self.pod_ips: tuple[str, ...] = ()
        self.volume_paths: dict[str, str] | None = None
        self.waiting: dict[str, tuple[str, str]] = {}
        self.backoff: dict[str, tuple[float, float]] = {}   # name -> (delay, until)
        self.kill_reasons: dict[str, str] = {}              # container id -> why the kubelet killed it
        self.waiters: dict[str, asyncio.Task[None]] = {}
        self.images: dict[str, tuple[str, str]] = {}         # container name -> (image, imageID)
        self.start_time = ""
        self.last_status: Obj | None = None
        self.terminal = False
        self.terminating = False
        self.sandbox_error: tuple[str, str] | None = None
        self._last_volume_update = 0.0
        self._adopt_checked = False
        self.last_instances: dict[str, list[ContainerStatus]] = {}
        self._status_lock = asyncio.Lock()

    # -- plumbing -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.pod["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.pod["metadata"].get("namespace") or "default"

    @property
    def full_name(self) -> str:
        return f"{self.name}_{self.namespace}({self.uid})"

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"pod {self.namespace}/{self.name}")

    def update(self, pod: Obj) -> None:
        self.pod = pod
        self.wake.set()

    def remove(self) -> None:
        self.removed = True
        self.wake.set()

    def poke(self) -> None:
        self.wake.set()

    def event(self, type_: str, reason: str, message: str, field_path: str = "") -> None:
        obj = self.kl.event_target(self)
        if obj is None:
            return
        if field_path:
            obj = dict(obj, _fieldPath=field_path)
        self.kl.recorder.event(obj, type_, reason, message)

    async def run(self) -> None:
        delay_on_error = 1.0
        try:
            while True:
                self.wake.clear()
                try:
                    wait = await self.sync()
                    delay_on_error = 1.0
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - a worker must not die
                    log.exception("pod %s: sync failed: %s", self.full_name, e)
                    wait = delay_on_error
                    delay_on_error = min(delay_on_error * 2, 30.0)
                if self.finished.is_set():
                    return
                timeout = self.kl.cfg.sync_frequency if wait is None else min(wait, self.kl.cfg.sync_frequency)
                try:
                    await asyncio.wait_for(self.wake.wait(), max(timeout, 0.01))
                except asyncio.TimeoutError:
                    pass
        finally:
            for t in self.waiters.values():
                t.cancel()

    # -- the sync pass ------------------------------------------------------------

    async def sync(self) -> float | None:
        pod = self.pod
        if not self._adopt_checked:  # a sandbox from before a kubelet restart is this worker's to run or end
            self._adopt_checked = True
            await self.adopt()
        if self.removed or pod["metadata"].get("deletionTimestamp"):
            await self.terminate()
            return None
        phase = (pod.get("status") or {}).get("phase")
        if self.terminal or phase in ("Succeeded", "Failed"):
            if not self.terminal:  # terminal in the API (before a kubelet restart, or by another writer)
                self.terminal = True
                await self.stop_all(0)
                await self.release_network()
            return None
        if not self.start_time:
            self.start_time = (pod.get("status") or {}).get("startTime") or now_rfc3339()
        if self.sandbox_id is None:
            t0 = time.monotonic()
            ok = await self.create_sandbox()
            log.debug("pod %s: sandbox %s in %.0f ms", self.full_name, "ready" if ok else "not ready",
                      (time.monotonic() - t0) * 1000)
            if not ok:
                await self.write_status()
                return 2.0
            await self.write_status()  # ContainerCreating, with the pod IP, while images are pulled
        elif time.monotonic() - self._last_volume_update >= self.kl.cfg.sync_frequency:
            await self.update_volumes()
        wait = await self.sync_containers()
        status = await self.write_status()
        if status.get("phase") in ("Succeeded", "Failed"):
            self.terminal = True
            self.kl.probes.remove_pod(self.uid)
            await self.stop_all(0)
            await self.release_network()
            await self.write_status()
            return None
        return wait

    # -- sandbox ------------------------------------------------------------------

    def host_network(self) -> bool:
        return bool((self.pod.get("spec") or {}).get("hostNetwork")) or self.kl.network is None

    async def create_sandbox(self) -> bool:
        pod, kl = self.pod, self.kl
        spec = pod.get("spec") or {}
        if not self.host_network() and not kl.pod_cidr():
            self.sandbox_error = ("ContainerCreating", "waiting for the node's podCIDR")
            return False
        sid = None
        try:
            hostname = spec.get("hostname") or self.name
            hostname = hostname[:63]
            config = PodSandboxConfig(
                uid=self.uid, name=self.name, namespace=self.namespace, hostname=hostname,
                log_directory=f"{kl.cfg.log_dir}/{self.namespace}_{self.name}_{self.uid}",
                labels=(("io.kubernetes.pod.uid", self.uid), ("io.kubernetes.pod.name", self.name),
                        ("io.kubernetes.pod.namespace", self.namespace)),
                host_network=self.host_network(),
                cgroup_parent=ctr.cgroup_parent(kl.cfg.cgroup_root, pod) if kl.cgroups else "")
            # the network first: /etc/hosts needs the pod IP
            net = None
            if not self.host_network():
                assert kl.network is not None
                from .network import PortMapping
                ports = [PortMapping(h, c, p.lower(), ip) for h, c, p, ip in ctr.host_ports(pod)]
                net = await kl.network.setup(self.uid, self.namespace, self.name, ports, pod_uid=self.uid)
                self.pod_ips = tuple(net.pod_ips)
                self.netns = net.netns_path
            else:
                self.pod_ips = (kl.node_ip,)
                self.netns = None
            hosts, resolv = await kl.pod_files(pod, self.pod_ips)
            config = PodSandboxConfig(**{**config.__dict__, "netns_path": self.netns, "hosts_file": hosts,
                                         "resolv_conf": resolv})
            sid = await kl.runtime.run_pod_sandbox(config)
            self.sandbox_id = sid
            self.sandbox_error = None
            kl.probes.add_pod(pod, self.pod_ips[0], {}, netns_path=self.netns)
        except Exception as e:  # noqa: BLE001
            msg = f"Failed to create pod sandbox: {e}"
            log.warning("pod %s: %s", self.full_name, msg)
            self.event("Warning", "FailedCreatePodSandBox", msg)
            self.sandbox_error = ("ContainerCreating", "")
            if self.netns and not self.host_network() and kl.network is not None:
                await kl.teardown_network(self.uid)
            self.netns = None
            self.pod_ips = ()
            return False
        return await self.mount_volumes()

    async def adopt(self) -> None:
        """Take over the sandbox and containers a previous kubelet left for this pod: nothing restarts."""
        sid = self.kl.recovered.pop(self.uid, None)
        if sid is None:
            return
        self.sandbox_id = sid
        if not self.host_network() and self.kl.network is not None:
            net = self.kl.network.status(self.uid)
            if net is not None:
                self.pod_ips, self.netns = tuple(net.pod_ips), net.netns_path
        else:
            self.pod_ips = (self.kl.node_ip,)
        if not self.pod_ips:
            ips = [ip.get("ip") for ip in (self.pod.get("status") or {}).get("podIPs") or () if ip.get("ip")]
            self.pod_ips = tuple(ips)
        self.last_status = None
        self.kl.probes.add_pod(self.pod, self.pod_ips[0] if self.pod_ips else "", {}, netns_path=self.netns)
        spec = self.pod.get("spec") or {}
        by_name = {c["name"]: c for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or [])}
        for st in await self.kl.runtime.list_containers(sid):
            c = by_name.get(st.name)
            if c is not None:
                img = self.kl.image_store.find(c.get("image") or "")
                if img is not None:
                    self.images[st.name] = (img.repo_tags[0] if img.repo_tags else c.get("image", ""),
                                            img.repo_digests[0] if img.repo_digests else img.id)
            if st.state == RUNNING:
                self.watch(st.id, st.name)
                self.kl.probes.update_container(self.uid, st.name, st.id, st.started_at)
        await self.mount_volumes()
        log.info("pod %s: adopted sandbox %s", self.full_name, sid)

    async def mount_volumes(self) -> bool:
        try:
            self.volume_paths = await self.kl.volumes.mount_pod(
                self.pod, self.kl.get, pod_ip=self.pod_ips[0] if self.pod_ips else "",
                host_ip=self.kl.node_ip, node_name=self.kl.node_name, pod_ips=self.pod_ips,
                node_allocatable=self.kl.node_allocatable())
            self._last_volume_update = time.monotonic()
            return True
        except Exception as e:  # noqa: BLE001 - VolumeError or API trouble
            msg = getattr(e, "message", None) or str(e)
            self.event("Warning", "FailedMount", f"MountVolume.SetUp failed: {msg}")
            self.sandbox_error = ("ContainerCreating", "")
            self.volume_paths = None
            return False

    async def update_volumes(self) -> None:
        if self.volume_paths is None:
            await self.mount_volumes()
            return
        try:
            await self.kl.volumes.update_pod(self.pod, self.kl.get, pod_ip=self.pod_ips[0] if self.pod_ips else "",
                                             host_ip=self.kl.node_ip, node_name=self.kl.node_name)
        except Exception as e:  # noqa: BLE001
            log.info("pod %s: volume update failed: %s", self.full_name, e)
        self._last_volume_update = time.monotonic()

    async def release_network(self) -> None:
        if not self.host_network():
            await self.kl.teardown_network(self.uid)

    # -- containers ---------------------------------------------------------------

    async def instances(self) -> dict[str, list[ContainerStatus]]:
        """The runtime's instances of each container name, oldest first."""
        out: dict[str, list[ContainerStatus]] = {}
        if self.sandbox_id is None:
            return out
        for st in await self.kl.runtime.list_containers(self.sandbox_id):
            out.setdefault(st.name, []).append(st)
        for v in out.values():
            v.sort(key=lambda s: s.attempt)
        self.last_instances = out
        return out

    def restart_policy(self) -> str:
        return (self.pod.get("spec") or {}).get("restartPolicy") or "Always"

    def should_restart(self, st: ContainerStatus) -> bool:
        policy = self.restart_policy()
        return policy == "Always" or (policy == "OnFailure" and st.exit_code != 0)

    async def sync_containers(self) -> float | None:
        spec = self.pod.get("spec") or {}
        inst = await self.instances()
        wait: float | None = None

        def soonest(w: float | None) -> None:
            nonlocal wait
            if w is not None:
                wait = w if wait is None else min(wait, w)

        for ic in spec.get("initContainers") or ():
            sidecar = ic.get("restartPolicy") == "Always"
            runs = inst.get(ic["name"]) or []
            cur = runs[-1] if runs else None
            if cur is None:
                soonest(await self.start_container(ic, 0, init=True))
                return wait
            if cur.state == CREATED:  # created, but it did not start: a new one, with back-off
                soonest(await self.restart(ic, cur, init=True))
                return wait
            if cur.state == RUNNING:
                if await self.check_liveness(ic, cur):
                    return 0.05
                if sidecar:
                    continue
                return wait
            if cur.exit_code == 0 and not sidecar:
                continue
            if self.restart_policy() == "Never" and not sidecar:
                return None  # the pod fails: phase() sees it
            soonest(await self.restart(ic, cur, init=True))
            return wait
        for c in spec.get("containers") or ():
            runs = inst.get(c["name"]) or []
            cur = runs[-1] if runs else None
            if cur is None:
                soonest(await self.start_container(c, 0))
            elif cur.state == RUNNING:
                if await self.check_liveness(c, cur):
                    soonest(0.05)
            elif cur.state == CREATED or (cur.state == EXITED and self.should_restart(cur)):
                # (one that was created but did not start is replaced whatever the policy, as
                # kubelet's ShouldContainerBeRestarted does)
                soonest(await self.restart(c, cur))
        return wait

    async def check_liveness(self, c: Obj, cur: ContainerStatus) -> bool:
        """Kill a running container whose liveness or startup probe failed; True when killed."""
        why = None
        for probe in ("liveness", "startup"):
            if self.kl.probes.result(self.uid, c["name"], probe) is False:
                why = probe
        if why is None:
            return False
        msg = f"Container {c['name']} failed {why} probe, will be restarted"
        self.event("Normal", "Killing", msg, self.field_path(c))
        self.kill_reasons[cur.id] = msg
        await self.kill_container(c, cur, self.grace_of(c))
        return True

    def field_path(self, c: Obj) -> str:
        spec = self.pod.get("spec") or {}
        for kind in ("initContainers", "containers"):
            for i, x in enumerate(spec.get(kind) or ()):
                if x.get("name") == c.get("name"):
                    return f"spec.{kind}{{{c['name']}}}"
        return ""

    async def restart(self, c: Obj, cur: ContainerStatus, init: bool = False) -> float | None:
        name = c["name"]
        now = time.time()
        delay, until = self.backoff.get(name, (0.0, 0.0))
        if cur.finished_at and cur.started_at and cur.finished_at - cur.started_at > BACKOFF_RESET:
            delay, until = 0.0, 0.0
        if now < until:
            msg = f"back-off {int(delay)}s restarting failed container={name} pod={self.full_name}"
            if self.waiting.get(name, ("",))[0] != "CrashLoopBackOff":
                self.event("Warning", "BackOff", "Back-off restarting failed container " + name + " in pod "
                           + self.full_name, self.field_path(c))
            self.waiting[name] = ("CrashLoopBackOff", msg)
            return until - now
        base, cap = self.kl.cfg.crashloop_backoff, self.kl.cfg.crashloop_backoff_max
        nxt = base if delay == 0 else min(delay * 2, cap)
        self.backoff[name] = (nxt, now + nxt)
        return await self.start_container(c, cur.attempt + 1, init=init)

    def grace_of(self, c: Obj) -> float:
        md = self.pod["metadata"]
        g = md.get("deletionGracePeriodSeconds")
        if g is None:
            g = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return float(DEFAULT_GRACE if g is None else g)

    async def start_container(self, c: Obj, attempt: int, init: bool = False) -> float | None:
        """Pull, create and start one container instance; returns when to look again (None: on events)."""
        kl, name = self.kl, c["name"]
        assert self.sandbox_id is not None
        fp = self.field_path(c)
        # image
        try:
            image = await kl.ensure_image(self, c)
        except Exception as e:  # noqa: BLE001 - ImagePullError
            reason = getattr(e, "reason", "ErrImagePull")
            msg = getattr(e, "message", None) or str(e)
            if self.waiting.get(name, ("",))[0] != reason:
                if reason == "ImagePullBackOff":
                    self.event("Normal", "BackOff", f'Back-off pulling image "{c.get("image")}"', fp)
                else:
                    self.event("Warning", "Failed", f"Failed to pull image \"{c.get('image')}\": {msg}", fp)
                    self.event("Warning", "Failed", f"Error: {reason}", fp)
            self.waiting[name] = (reason, msg)
            return getattr(e, "retry_after", None) or 1.0
        self.images[name] = (image.repo_tags[0] if image.repo_tags else c.get("image", ""),
                             image.repo_digests[0] if image.repo_digests else image.id)
        # env and mounts
        try:
            env = await kl.container_env(self, c)
            env_map = dict(env)
            mounts = kl.volumes.mounts_for(self.pod, c, self.volume_paths or {}, env)
        except Exception as e:  # noqa: BLE001 - CreateContainerConfigError
            msg = getattr(e, "message", None) or str(e)
            if self.waiting.get(name, ("",))[0] != "CreateContainerConfigError":
                self.event("Warning", "Failed", f"Error: {msg}", fp)
            self.waiting[name] = ("CreateContainerConfigError", msg)
            return 2.0
        t_created = time.monotonic()
        cfg = image.config
        args = ctr.argv(c, cfg.entrypoint, cfg.cmd, env_map)
        if not args:
            self.waiting[name] = ("CreateContainerError", "no command specified")
            return 5.0
        config = ContainerConfig(
            name=name, layers=tuple(image.layer_dirs), args=tuple(args),
            env=ctr.merge_env(cfg.env, env), working_dir=c.get("workingDir") or cfg.working_dir or "/",
            mounts=tuple(mounts), resources=ctr.resources(c), security=ctr.security(self.pod, c, cfg.user),
            attempt=attempt, stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")),
            tty=bool(c.get("tty")),
            labels=(("io.kubernetes.container.name", name), ("io.kubernetes.pod.uid", self.uid)))
        try:
            cid = await kl.runtime.create_container(self.sandbox_id, config)
        except Exception as e:  # noqa: BLE001
            self.event("Warning", "Failed", f"Error: {e}", fp)
            self.waiting[name] = ("CreateContainerError", str(e))
            return 5.0
        self.event("Normal", "Created", f"Created container {name}", fp)
        try:
            await kl.runtime.start_container(cid)
        except Exception as e:  # noqa: BLE001
            self.event("Warning", "Failed", f"Error: {e}", fp)
            self.waiting[name] = ("RunContainerError", str(e))
            await self.prune(name, keep=attempt)
            return 5.0
        self.waiting.pop(name, None)
        log.debug("pod %s: container %s created and started in %.0f ms", self.full_name, name,
                  (time.monotonic() - t_created) * 1000)
        self.event("Normal", "Started", f"Started container {name}", fp)
        self.watch(cid, name)
        await self.prune(name, keep=attempt)
        st = await kl.runtime.container_status(cid)
        kl.probes.update_container(self.uid, name, cid, st.started_at)
        post = ((c.get("lifecycle") or {}).get("postStart"))
        if post and st.state == RUNNING:
            ok, msg = await kl.run_hook(self, c, cid, post, timeout=self.grace_of(c))
            if not ok:
                self.event("Warning", "FailedPostStartHook", msg, fp)
                self.kill_reasons[cid] = "FailedPostStartHook"
                await kl.runtime.stop_container(cid, self.grace_of(c))
        return None

    def watch(self, cid: str, name: str) -> None:
        """Wake the worker when the container exits."""
        if cid in self.waiters:
            return

        async def waiter() -> None:
            try:
                await self.kl.runtime.wait_container(cid)
            except RuntimeFailure:
                return
            finally:
                self.waiters.pop(cid, None)
            self.kl.probes.update_container(self.uid, name, None, 0.0)
            self.wake.set()

        self.waiters[cid] = asyncio.create_task(waiter(), name=f"wait {cid[:12]}")

    async def prune(self, name: str, keep: int) -> None:
        """Remove instances older than the one before `keep` (kubelet keeps one dead container per name)."""
        if self.sandbox_id is None:
            return
        for st in await self.kl.runtime.list_containers(self.sandbox_id):
            if st.name == name and st.attempt < keep - 1 and st.state != RUNNING:
                await self.kl.runtime.remove_container(st.id)

    async def kill_container(self, c: Obj | None, st: ContainerStatus, grace: float) -> None:
        """preStop (within the grace period), then SIGTERM and SIGKILL when the rest runs out."""
        start = time.monotonic()
        pre = ((c or {}).get("lifecycle") or {}).get("preStop")
        if pre and st.state == RUNNING and grace > 0:
            try:
                ok, msg = await asyncio.wait_for(self.kl.run_hook(self, c or {}, st.id, pre, timeout=grace), grace)
                if not ok:
                    self.event("Warning", "FailedPreStopHook", msg, self.field_path(c or {}))
            except asyncio.TimeoutError:
                pass
        left = max(0.0, grace - (time.monotonic() - start))
        # kubelet gives at least 2 s after preStop when the grace ran out (minimumGracePeriodInSeconds)
        if pre and grace > 0:
            left = max(left, 2.0)
        await self.kl.runtime.stop_container(st.id, left)

    async def stop_all(self, grace: float | None) -> None:
        if self.sandbox_id is None:
            return
        spec = self.pod.get("spec") or {}
        by_name = {c["name"]: c for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or [])}
        running = [st for st in await self.kl.runtime.list_containers(self.sandbox_id) if st.state == RUNNING]
        if not running:
            return

        async def one(st: ContainerStatus) -> None:
            c = by_name.get(st.name)
            g = self.grace_of(c or {}) if grace is None else grace
            if grace is None:
                self.event("Normal", "Killing", f"Stopping container {st.name}",
                           self.field_path(c) if c else "")
            await self.kill_container(c, st, g)

        await asyncio.gather(*(one(st) for st in running))

    # -- termination --------------------------------------------------------------

    async def terminate(self) -> None:
        if not self.terminating:
            self.terminating = True
            log.info("pod %s: terminating", self.full_name)
        self.kl.probes.remove_pod(self.uid)
        await self.stop_all(None)
        if not self.removed:
            try:
                await self.write_status(terminal=True)
            except (APIError, OSError) as e:
                log.info("pod %s: final status not written: %s", self.full_name, e)
        await self.cleanup()
        if not self.removed and not self.static:
            await self.kl.delete_pod(self)
        self.finished.set()

    async def cleanup(self) -> None:
        for t in list(self.waiters.values()):
            t.cancel()
        if self.sandbox_id is not None:
            await self.release_network()
            await self.kl.runtime.stop_pod_sandbox(self.sandbox_id)
            await self.kl.runtime.remove_pod_sandbox(self.sandbox_id)
            self.sandbox_id = None
            self.kl.remove_pod_cgroup(self.pod)
        await self.kl.volumes.unmount_pod(self.uid)
        self.kl.remove_pod_files(self.uid)

    # -- status ---------------------------------------------------------------------

    async def compute_status(self, terminal: bool = False) -> Obj:
        spec = self.pod.get("spec") or {}
        inst = await self.instances()
        kl = self.kl

        def view(c: Obj, init: bool, blocked: bool) -> ContainerView:
            runs = inst.get(c["name"]) or []
            cur = runs[-1] if runs else None
            prev = runs[-2] if len(runs) > 1 else None
            waiting = None
            name = c["name"]
            if cur is None:
                if self.sandbox_error or blocked:
                    waiting = ("PodInitializing", "") if blocked and not init else ("ContainerCreating", "")
                else:
                    waiting = self.waiting.get(name, ("ContainerCreating", ""))
            elif cur.state == EXITED and not terminal and not self.terminal and self.should_restart(cur) \
                    and name in self.waiting:
                waiting = self.waiting[name]
            elif cur.state == CREATED:
                waiting = ("ContainerCreating", "")
            if cur is not None and cur.state == RUNNING and name in self.waiting:
                self.waiting.pop(name, None)
            ready = False
            started: bool | None = None
            if cur is not None and cur.state == RUNNING:
                started = kl.probes.started(self.uid, name)
                ready = started and kl.probes.result(self.uid, name, "readiness") is True
            elif cur is not None and cur.state == EXITED and init and cur.exit_code == 0:
                ready = True
            image, image_id = self.images.get(name, ("", ""))
            return ContainerView(c, cur, prev, waiting, ready, started, image, image_id)

        pending_init = False
        init_statuses = []
        for ic in spec.get("initContainers") or ():
            v = view(ic, True, pending_init)
            init_statuses.append(container_status(v))
            cur = v.current
            done = ic.get("restartPolicy") == "Always" and cur is not None and cur.state == RUNNING
            if not done and not (cur is not None and cur.state == EXITED and cur.exit_code == 0):
                pending_init = True
        regular = [container_status(view(c, False, pending_init)) for c in spec.get("containers") or ()]
        return pod_status(self.pod, init=init_statuses, regular=regular, pending_init=pending_init,
                          sandbox_ready=self.sandbox_id is not None, pod_ips=self.pod_ips,
                          host_ip=kl.node_ip, start_time=self.start_time or now_rfc3339(),
                          qos=ctr.qos_class(self.pod), terminal=terminal or self.terminal)

    async def write_status(self, terminal: bool = False) -> Obj:
        async with self._status_lock:
            status = await self.compute_status(terminal)
            if _comparable(status) != _comparable(self.last_status):
                await self.kl.write_pod_status(self, status)
                self.last_status = status
            return status


def _comparable(status: Obj | None) -> Any:
    """The status without the times that change at every computation."""
    if status is None:
        return None
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k not in ("lastProbeTime",)} for c in status["conditions"]]
    return out
