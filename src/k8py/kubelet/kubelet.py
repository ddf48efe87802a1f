"""The kubelet: one node's agent.

    Kubelet(client, KubeletConfig(...)).run()

What it wires together (each part has its own module):

- the runtime (``runtime/``: runc, or plain processes without root), asked
  to ``recover()`` first so that containers left running by a previous
  kubelet are adopted instead of restarted;
- pod networking (``network/``: CNI bridge on the node's podCIDR, with the
  service CIDR routed through the bridge), images (``images/``), volumes
  and env (``volumes/``, ``envvars.py``), probes (``prober.py``);
- the Node and its Lease (``node.py``);
- the pods bound to this node (one informer, field selector
  ``spec.nodeName``) and static pods from ``--pod-manifest-path``, each run
  by a ``PodWorker`` (``podworker.py``); static pods are mirrored into the API;
- the kubelet server (``server.py``) for logs, exec, attach, port-forward, stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from ..client.events import EventRecorder
from ..client.informer import Informer
from ..client.rest import APIError, Client, resource
from . import containers as ctr
from .node import NodeAgent, NodeOptions
from .podworker import PodWorker
from .runtime.interface import EXITED, RUNNING
from .static import CONFIG_HASH, MIRROR, mirror_pod, read_manifests

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PODS = resource("pods")
SERVICES = resource("services")
NODES = resource("nodes")
RESOURCES = {"configmaps": resource("configmaps"), "secrets": resource("secrets"),
             "persistentvolumeclaims": resource("persistentvolumeclaims"),
             "persistentvolumes": resource("persistentvolumes")}


@dataclass
class KubeletConfig:
    node_name: str
    node_ip: str
    root_dir: str = "/var/lib/k8py/kubelet"
    log_dir: str = "/var/log/pods"
    runtime: str = "auto"                       # auto | runc | process
    runtime_root: str = "/var/lib/k8py/runtime"
    image_root: str = "/var/lib/k8py/images"
    cni_data_dir: str = "/var/lib/k8py/cni"
    cni_bin_dirs: tuple[str, ...] = ("/usr/lib/cni", "/opt/cni/bin")
    bridge: str = "k8py0"
    cgroup_root: str = "k8py"
    port: int = 10250
    address: str = "0.0.0.0"
    tls_dir: str = ""                           # default <root_dir>/pki
    static_pod_path: str = ""
    file_check_frequency: float = 20.0
    sync_frequency: float = 10.0
    crashloop_backoff: float = 10.0
    crashloop_backoff_max: float = 300.0
    image_pull_backoff: float = 10.0
    image_pull_backoff_max: float = 300.0
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    service_cidr: str = "10.43.0.0/16"
    cluster_cidr: str = ""                      # set: pods route it via the bridge; host-gw routes (routes.py)
    max_pods: int = 110
    node_labels: dict[str, str] = field(default_factory=dict)
    register_with_taints: str = ""
    registry_mirrors: dict[str, list[str]] = field(default_factory=dict)
    insecure_registries: tuple[str, ...] = ()
    lease_period: float = 10.0
    status_update_period: float = 10.0
    container_log_max_size: int = 10 * 1024 * 1024
    container_log_max_files: int = 5
    image_gc_high: int = 85
    image_gc_low: int = 80


class Kubelet:
    def __init__(self, client: Client, cfg: KubeletConfig) -> None:
        self.client = client
        self.cfg = cfg
        self.node_name = cfg.node_name
        self.node_ip = cfg.node_ip
        self.recorder = EventRecorder(client, "kubelet", host=cfg.node_name)
        self.workers: dict[str, PodWorker] = {}
        self.finished_uids: set[str] = set()
        self.recovered: dict[str, str] = {}        # pod uid -> sandbox id found at start
        self.static_pods: dict[str, Obj] = {}      # uid -> static pod
        self.mirrors: dict[str, Obj] = {}          # "<ns>/<name>" -> mirror pod in the API
        self.services: dict[str, Obj] = {}
        self.network: Any = None
        self.node_subnet = ""                      # host-gw (--cluster-cidr): the nodes' link, routed in pods
        self.cgroups = False
        self._tasks: list[asyncio.Task[Any]] = []
        self.pods_synced = asyncio.Event()
        self.runtime: Any = None
        self.node: NodeAgent | None = None
        self.server: Any = None

    # -- setup ----------------------------------------------------------------------

    def _make_runtime(self) -> Any:
        kind = self.cfg.runtime
        if kind == "auto":
            kind = "runc" if os.geteuid() == 0 and shutil.which("runc") else "process"
        if kind == "runc":
            from .runtime.runc import RuncRuntime
            self.cgroups = True
            return RuncRuntime(self.cfg.runtime_root, cgroup_root=self.cfg.cgroup_root,
                               log_max_size=self.cfg.container_log_max_size,
                               log_max_files=self.cfg.container_log_max_files, zygote=True)
        from .runtime.process import ProcessRuntime
        return ProcessRuntime(self.cfg.runtime_root)

    def runtime_kind(self) -> str:
        return "runc" if self.cgroups else "process"

    def _make_images(self) -> Any:
        from .images.puller import ImageManager
        from .images.store import ImageStore
        self.image_store = ImageStore(self.cfg.image_root)
        return ImageManager(self.image_store, mirrors=self.cfg.registry_mirrors,
                            insecure=list(self.cfg.insecure_registries),
                            backoff_base=self.cfg.image_pull_backoff, backoff_max=self.cfg.image_pull_backoff_max)

    def pod_cidr(self) -> str:
        node = self.node.node if self.node else None
        return ((node or {}).get("spec") or {}).get("podCIDR") or ""

    def _node_changed(self, old: Obj | None, node: Obj) -> None:
        """The kubelet's own Node, watched: a podCIDR assigned by the controller-manager is used at once."""
        if self.node is not None:
            self.node.node = node
            if self.network is None and self._ensure_network():
                self.node.poke()

    def _ensure_network(self) -> bool:
        """Make the PodNetwork once the node has a podCIDR (runc only); True when it was made now."""
        if self.network is not None or not self.cgroups:
            return False
        cidr = self.pod_cidr()
        if not cidr:
            return False
        from .network import PodNetwork, PodNetworkConfig
        self.network = PodNetwork(PodNetworkConfig(
            pod_cidr=cidr, bridge=self.cfg.bridge, data_dir=self.cfg.cni_data_dir,
            routes=tuple(c for c in (self.cfg.service_cidr, self.cfg.cluster_cidr, self.node_subnet) if c),
            cni_path=self.cfg.cni_bin_dirs))
        log.info("pod network: %s on bridge %s", cidr, self.cfg.bridge)
        for w in self.workers.values():
            w.poke()
        return True

    def ready(self) -> tuple[bool, str]:
        if self.runtime is None:
            return False, "container runtime is not up"
        if self.cgroups and self.network is None:
            return False, "network plugin not ready: waiting for the node's podCIDR"
        return True, ""

    # -- the main loop ------------------------------------------------------------------

    async def run(self) -> None:
        cfg = self.cfg
        for d in (cfg.root_dir, cfg.log_dir):
            os.makedirs(d, exist_ok=True)
        self.runtime = self._make_runtime()
        if cfg.cluster_cidr:
            from .routes import node_subnet
            self.node_subnet = await node_subnet(self.node_ip)
        await self.runtime.recover()
        for sid, config in await self.runtime.list_sandboxes():
            self.recovered[config.uid] = sid
        self.images = self._make_images()
        from .prober import ProbeManager
        from .volumes import VolumeManager
        self.volumes = VolumeManager(os.path.join(cfg.root_dir, "pods"))
        self.probes = ProbeManager(self._probe_changed, self.runtime)
        self.node = NodeAgent(self.client, NodeOptions(
            name=cfg.node_name, node_ip=cfg.node_ip, root_dir=cfg.root_dir, port=cfg.port,
            max_pods=cfg.max_pods, labels=cfg.node_labels, taints=cfg.register_with_taints,
            runtime_version=f"{self.runtime_kind()}://{_runtime_version(self.runtime_kind())}",
            status_update_period=cfg.status_update_period, lease_period=cfg.lease_period),
            ready=self.ready, images=self._node_images)
        self.node.on_node = lambda node: self._ensure_network()
        from .stats import StatsProvider
        self.stats = StatsProvider(self)
        await self._start_server()
        informer = Informer(self.client, PODS, field_selector=f"spec.nodeName={cfg.node_name}")
        informer.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        nodes = Informer(self.client, NODES, field_selector=f"metadata.name={cfg.node_name}")
        nodes.add_handler(lambda n: self._node_changed(None, n), self._node_changed)
        svc = Informer(self.client, SERVICES)
        svc.add_handler(self._svc_put, lambda o, n: self._svc_put(n), self._svc_del)
        try:
            await self.node.register()
            self._ensure_network()
            if cfg.static_pod_path:
                self._set_static(await asyncio.to_thread(read_manifests, cfg.static_pod_path, self.node_name))
            informer.start()
            svc.start()
            nodes.start()
            if cfg.static_pod_path:
                self._tasks.append(asyncio.create_task(self._static_loop(), name="static pods"))
            self._tasks.append(asyncio.create_task(self._mirror_loop(), name="mirror pods"))
            self._tasks.append(asyncio.create_task(self._image_gc_loop(), name="image gc"))
            self._tasks.append(asyncio.create_task(self.stats.run(), name="stats"))
            if cfg.cluster_cidr:
                from .routes import HostGwRoutes
                self._tasks.append(asyncio.create_task(
                    HostGwRoutes(self.client, cfg.node_name, cfg.cluster_cidr).run(), name="host-gw routes"))
            await informer.synced.wait()
            self.pods_synced.set()
            await self._remove_orphans()
            await self.node.run()
        finally:
            for t in self._tasks:
                t.cancel()
            await informer.stop()
            await svc.stop()
            await nodes.stop()
            for w in list(self.workers.values()):
                if w.task:
                    w.task.cancel()
            if self.server is not None:
                await self.server.stop()
            if hasattr(self.runtime, "close"):
                await self.runtime.close()
            await self.recorder.stop()

    async def _start_server(self) -> None:
        from .server import KubeletServer, issue_kubelet_serving_cert
        tls = self.cfg.tls_dir or os.path.join(self.cfg.root_dir, "pki")
        cert, key = issue_kubelet_serving_cert(tls, self.node_name, [self.node_ip, "127.0.0.1"])
        ca = os.path.join(tls, "client-ca.crt")
        ca_data = self.client.cfg.ca_data
        if ca_data:
            with open(ca, "wb") as f:
                f.write(ca_data if isinstance(ca_data, bytes) else ca_data.encode())
        self.server = KubeletServer(self, port=self.cfg.port, bind_address=self.cfg.address, tls_cert=cert,
                                    tls_key=key, client_ca=ca if ca_data else "")
        await self.server.start()

    # -- pods from the API ------------------------------------------------------------------

    def _pod_added(self, pod: Obj) -> None:
        self._pod_updated(None, pod)

    def _pod_updated(self, old: Obj | None, pod: Obj) -> None:
        md = pod["metadata"]
        if MIRROR in (md.get("annotations") or {}):
            self.mirrors[f"{md.get('namespace')}/{md['name']}"] = pod
            return
        uid = md["uid"]
        w = self.workers.get(uid)
        if w is not None:
            w.update(pod)
            return
        if uid in self.finished_uids:
            return
        self._start_worker(pod)

    def _pod_deleted(self, pod: Obj) -> None:
        md = pod["metadata"]
        if MIRROR in (md.get("annotations") or {}):
            key = f"{md.get('namespace')}/{md['name']}"
            if self.mirrors.get(key, {}).get("metadata", {}).get("uid") == md.get("uid"):
                self.mirrors.pop(key, None)
            return
        w = self.workers.get(md["uid"])
        if w is not None:
            w.remove()

    def _start_worker(self, pod: Obj, static: bool = False) -> PodWorker:
        w = PodWorker(self, pod, static=static)
        self.workers[w.uid] = w
        w.start()
        assert w.task is not None
        w.task.add_done_callback(lambda t, uid=w.uid: self._worker_done(uid))
        return w

    def _worker_done(self, uid: str) -> None:
        w = self.workers.pop(uid, None)
        if w is not None and w.finished.is_set():
            self.finished_uids.add(uid)

    def _svc_put(self, svc: Obj) -> None:
        md = svc["metadata"]
        self.services[f"{md.get('namespace')}/{md['name']}"] = svc

    def _svc_del(self, svc: Obj) -> None:
        md = svc["metadata"]
        self.services.pop(f"{md.get('namespace')}/{md['name']}", None)

    def _probe_changed(self, uid: str, container: str, probe: str, ok: bool) -> None:
        w = self.workers.get(uid)
        if w is not None:
            if not ok and probe in ("liveness", "startup"):
                w.event("Warning", "Unhealthy", f"{probe.capitalize()} probe failed",
                        f"spec.containers{{{container}}}")
            w.poke()

    async def _remove_orphans(self) -> None:
        """Sandboxes whose pod is gone (deleted while the kubelet was away) are removed."""
        live = set(self.workers) | set(self.static_pods)
        for sid, config in await self.runtime.list_sandboxes():
            if config.uid not in live:
                self.recovered.pop(config.uid, None)
                log.info("removing orphaned sandbox %s of pod %s/%s", sid, config.namespace, config.name)
                with contextlib.suppress(Exception):
                    await self.runtime.stop_pod_sandbox(sid)
                    await self.runtime.remove_pod_sandbox(sid)
                await self.teardown_network(config.uid)
                with contextlib.suppress(Exception):
                    await self.volumes.unmount_pod(config.uid)
                self.remove_pod_files(config.uid)

    # -- what workers call ----------------------------------------------------------------

    def event_target(self, w: PodWorker) -> Obj | None:
        if w.static:
            return self.mirrors.get(f"{w.namespace}/{w.name}")
        return w.pod

    async def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return await self.client.get(RESOURCES[kind], name,
                                         namespace if kind != "persistentvolumes" else None)
        except APIError as e:
            if e.code == 404:
                return None
            raise

    def node_allocatable(self) -> dict[str, str]:
        node = self.node.node if self.node else None
        return ((node or {}).get("status") or {}).get("allocatable") or {}

    async def container_env(self, w: PodWorker, c: Obj) -> list[tuple[str, str]]:
        from . import envvars
        spec = w.pod.get("spec") or {}
        services = [s for s in self.services.values()]
        svc_env = envvars.service_env_vars(services, w.namespace, spec.get("enableServiceLinks", True) is not False)
        return await envvars.container_env(
            w.pod, c, self.get, pod_ip=w.pod_ips[0] if w.pod_ips else "", pod_ips=list(w.pod_ips),
            host_ip=self.node_ip, node_name=self.node_name, node_allocatable=self.node_allocatable(),
            service_env=svc_env)

    async def ensure_image(self, w: PodWorker, c: Obj) -> Any:
        image = c.get("image") or ""
        secrets = []
        for ref in (w.pod.get("spec") or {}).get("imagePullSecrets") or ():
            s = await self.get("secrets", w.namespace, ref.get("name", ""))
            if s is not None:
                secrets.append(s)
        present = await asyncio.to_thread(self.image_store.find, image) is not None
        policy = ctr.image_policy(c)
        fp = w.field_path(c)
        if present and policy != "Always":
            img = await self.images.ensure_image(image, policy, secrets, backoff_key=f"{w.uid}_{image}")
            if w.waiting.get(c["name"], ("",))[0] != "pulled":
                w.event("Normal", "Pulled", f'Container image "{image}" already present on machine', fp)
            return img
        w.event("Normal", "Pulling", f'Pulling image "{image}"', fp)
        t0 = time.monotonic()
        img = await self.images.ensure_image(image, policy, secrets, backoff_key=f"{w.uid}_{image}")
        took = time.monotonic() - t0
        w.event("Normal", "Pulled", f'Successfully pulled image "{image}" in {took:.3f}s. '
                f"Image size: {img.size} bytes.", fp)
        return img

    async def pod_files(self, pod: Obj, pod_ips: tuple[str, ...]) -> tuple[str | None, str | None]:
        """The pod's /etc/hosts (not for hostNetwork pods: they see the host's) and resolv.conf."""
        host_net = bool((pod.get("spec") or {}).get("hostNetwork"))
        hosts = None if host_net else await asyncio.to_thread(
            self.volumes.write_etc_hosts, pod, list(pod_ips), self.cfg.cluster_domain)
        resolv = await asyncio.to_thread(self.volumes.write_resolv_conf, pod, list(self.cfg.cluster_dns),
                                         self.cfg.cluster_domain)
        return hosts, resolv

    def remove_pod_cgroup(self, pod: Obj) -> None:
        """rmdir the pod's cgroup (kubelet owns the QoS/pod levels; the runtime made the containers')."""
        if not self.cgroups:
            return
        from .runtime.runc import cgroup_mounts
        rel = ctr.cgroup_parent(self.cfg.cgroup_root, pod)
        for point, _ in cgroup_mounts():
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(point, rel))

    def remove_pod_files(self, uid: str) -> None:
        d = os.path.join(self.cfg.root_dir, "pods", uid)
        for f in ("etc-hosts", "resolv.conf"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(d, f))
        with contextlib.suppress(OSError):
            os.rmdir(d)

    async def teardown_network(self, key: str) -> None:
        if self.network is None:
            return
        try:
            await self.network.teardown(key)
        except Exception as e:  # noqa: BLE001
            log.warning("network teardown of %s failed: %s", key, e)

    async def run_hook(self, w: PodWorker, c: Obj, cid: str, handler: Obj, timeout: float) -> tuple[bool, str]:
        """A lifecycle hook: exec in the container, an HTTP GET to the pod, or a sleep."""
        if "sleep" in handler:
            await asyncio.sleep(float((handler["sleep"] or {}).get("seconds", 0)))
            return True, ""
        if "exec" in handler:
            cmd = list((handler["exec"] or {}).get("command") or [])
            try:
                res = await self.runtime.exec_sync(cid, cmd, timeout=timeout)
            except Exception as e:  # noqa: BLE001
                return False, f"Exec lifecycle hook ({cmd}) for Container \"{c.get('name')}\" in Pod " \
                              f"\"{w.full_name}\" failed - error: {e}"
            if res.exit_code != 0:
                out = (res.stdout + res.stderr).decode(errors="replace")
                return False, f"Exec lifecycle hook ({cmd}) for Container \"{c.get('name')}\" in Pod " \
                              f"\"{w.full_name}\" failed - error: command '{' '.join(cmd)}' exited with " \
                              f"{res.exit_code}: {out}, message: \"{out}\""
            return True, ""
        from .prober import run_probe
        ports = ctr.container_port_names(w.pod).get(c.get("name", ""), {})
        res = await run_probe(dict(handler, timeoutSeconds=max(1, int(timeout))),
                              pod_ip=w.pod_ips[0] if w.pod_ips else "",
                              exec_fn=lambda cmd, t: self.runtime.exec_sync(cid, cmd, timeout=t),
                              netns_path=w.netns, port_names=ports)
        ok = res.result == "success"
        return ok, "" if ok else f"Http lifecycle hook failed: {res.output}"

    async def write_pod_status(self, w: PodWorker, status: Obj) -> None:
        if w.static:
            mirror = self.mirrors.get(f"{w.namespace}/{w.name}")
            if mirror is None:
                return
            name, uid = mirror["metadata"]["name"], mirror["metadata"]["uid"]
        else:
            name, uid = w.name, w.uid
        try:
            await self.client.patch(PODS, name, {"metadata": {"uid": uid}, "status": status}, w.namespace,
                                    subresource="status")
        except APIError as e:
            if e.code in (404, 409):
                return
            raise

    async def delete_pod(self, w: PodWorker) -> None:
        """The status manager's last act: the terminated pod is removed from the API."""
        try:
            await self.client.delete(PODS, w.name, w.namespace, uid=w.uid, grace_period=0)
        except APIError as e:
            if e.code not in (404, 409):
                log.warning("pod %s: delete failed: %s", w.full_name, e)
        except OSError as e:
            log.warning("pod %s: delete failed: %s", w.full_name, e)

    def _node_images(self) -> list[Obj]:
        try:
            images = self.image_store.list()
        except Exception:  # noqa: BLE001
            return []
        out = []
        for img in images[:50]:
            names = list(img.repo_digests) + list(img.repo_tags)
            if names:
                out.append({"names": names, "sizeBytes": img.size})
        return out

    async def _image_gc_loop(self) -> None:
        while True:
            await asyncio.sleep(300)
            in_use: set[str] = set()
            try:
                for w in self.workers.values():
                    for _, image_id in w.images.values():
                        in_use.add(image_id)
                await self.images.garbage_collect(in_use, high_percent=self.cfg.image_gc_high,
                                                  low_percent=self.cfg.image_gc_low)
            except Exception as e:  # noqa: BLE001
                log.warning("image garbage collection failed: %s", e)

    # -- static pods ----------------------------------------------------------------------

    async def _static_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.file_check_frequency)
            try:
                pods = await asyncio.to_thread(read_manifests, self.cfg.static_pod_path, self.node_name)
            except Exception as e:  # noqa: BLE001
                log.warning("static pods: %s", e)
                pods = None
            if pods is not None:
                self._set_static(pods)

    def _set_static(self, pods: dict[str, Obj]) -> None:
        for uid in list(self.static_pods):
            if uid not in pods:
                del self.static_pods[uid]
                w = self.workers.get(uid)
                if w is not None:
                    w.remove()
        for uid, pod in pods.items():
            if uid not in self.static_pods:
                self.static_pods[uid] = pod
                if uid not in self.workers:
                    self._start_worker(pod, static=True)

    async def _mirror_loop(self) -> None:
        """Every static pod has a mirror pod in the API (recreated when deleted, replaced when stale or
        being deleted, as kubelet's syncPod does); a mirror whose static pod is gone is deleted
        (kubelet's HandlePodCleanups)."""
        while True:
            for uid, pod in list(self.static_pods.items()):
                md = pod["metadata"]
                key = f"{md['namespace']}/{md['name']}"
                mirror = self.mirrors.get(key)
                want = md["annotations"][CONFIG_HASH]
                try:
                    if mirror is not None and ((mirror["metadata"].get("annotations") or {}).get(MIRROR) != want
                                               or mirror["metadata"].get("deletionTimestamp")):
                        await self._delete_mirror(key, mirror)
                        mirror = None
                    if mirror is None and self.node and self.node.uid:
                        created = await self.client.create(PODS, mirror_pod(pod, self.node_name, self.node.uid))
                        self.mirrors[key] = created
                        w = self.workers.get(uid)
                        if w is not None:
                            w.last_status = None
                            w.poke()
                except APIError as e:
                    if e.code != 409:
                        log.info("mirror pod %s: %s", key, e)
                except OSError as e:
                    log.info("mirror pod %s: %s", key, e)
            if self.pods_synced.is_set():
                wanted = {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in self.static_pods.values()}
                for key, mirror in list(self.mirrors.items()):
                    if key not in wanted:
                        with contextlib.suppress(APIError, OSError):
                            await self._delete_mirror(key, mirror)
            await asyncio.sleep(2.0)

    async def _delete_mirror(self, key: str, mirror: Obj) -> None:
        """Delete this mirror pod now (grace 0, only this uid: never a newer mirror of the same name)."""
        md = mirror["metadata"]
        try:
            await self.client.delete(PODS, md["name"], md.get("namespace"), uid=md["uid"], grace_period=0)
        except APIError as e:
            if e.code not in (404, 409):
                raise
        if self.mirrors.get(key) is mirror:
            self.mirrors.pop(key, None)

    # -- for the kubelet server (server.KubeletHost) ----------------------------------------

    def _worker(self, namespace: str, name: str) -> PodWorker:
        from .server import NotFound
        for w in self.workers.values():
            if w.name == name and w.namespace == namespace:
                return w
        raise NotFound(f'pod "{name}" not found on node {self.node_name}')

    def _instances(self, namespace: str, pod: str, container: str | None) -> tuple[PodWorker, str, list[Any]]:
        from .server import BadRequest, NotFound
        w = self._worker(namespace, pod)
        spec = w.pod.get("spec") or {}
        names = [c["name"] for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or [])]
        if not container:
            regular = [c["name"] for c in spec.get("containers") or ()]
            if len(regular) != 1:
                raise BadRequest(f"a container name must be specified for pod {pod}, choose one of: "
                                 f"[{' '.join(regular)}]")
            container = regular[0]
        if container not in names:
            raise NotFound(f"container {container} is not valid for pod {pod}")
        return w, container, list(w.last_instances.get(container) or [])

    def container_for(self, namespace: str, pod: str, container: str | None) -> Any:
        from .server import BadRequest, ContainerRef
        w, name, runs = self._instances(namespace, pod, container)
        running = [r for r in runs if r.state == RUNNING]
        if not running:
            why = w.waiting.get(name, ("ContainerCreating", ""))[0] if not runs else "not running"
            raise BadRequest(f'container {name} is {why}' if runs else
                             f'container "{name}" in pod "{pod}" is waiting to start: {why}')
        return ContainerRef(running[-1].id, w.uid)

    def log_file(self, namespace: str, pod: str, container: str, previous: bool) -> str:
        from .server import BadRequest
        w, name, runs = self._instances(namespace, pod, container)
        if previous:
            if len(runs) < 2 and not (runs and runs[-1].state == EXITED and name in w.waiting):
                raise BadRequest(f'previous terminated container "{name}" in pod "{pod}" not found')
            inst = runs[-2] if len(runs) >= 2 else runs[-1]
            return inst.log_path
        if not runs:
            why = w.waiting.get(name, ("ContainerCreating", ""))[0]
            raise BadRequest(f'container "{name}" in pod "{pod}" is waiting to start: {why}')
        return runs[-1].log_path

    def pod_netns(self, namespace: str, pod: str) -> str | None:
        return self._worker(namespace, pod).netns

    def pods(self) -> list[Obj]:
        return [w.pod for w in self.workers.values()]

    def stats_summary(self) -> Obj:
        return self.stats.summary()
def _runtime_version(kind: str) -> str:
    if kind != "runc":
        return "0.1.0"
    import subprocess
    try:
        out = subprocess.run(["runc", "--version"], capture_output=True, text=True, timeout=5).stdout
        return out.split()[2]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"

