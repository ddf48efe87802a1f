"""The kubelet's volume manager: a pod's volumes on the node, as kube lays them out.

Usage (by the kubelet's pod worker)::

    vm = VolumeManager("/var/lib/k8py/kubelet/pods", node_allocatable=alloc)
    try:
        paths = await vm.mount_pod(pod, get, pod_ip=ip, host_ip=node_ip, node_name=node)
    except VolumeError as e:          # e.reason "FailedMount": event, pod stays ContainerCreating
        ...
    env = await envvars.container_env(...)
    mounts = vm.mounts_for(pod, container, paths, env=env)   # VolumeError("CreateContainerConfigError", ...)
    ...
    await vm.update_pod(pod, get)     # periodically / on ConfigMap or Secret change: re-project
    ...
    await vm.unmount_pod(uid)         # after the pod's containers are gone
    for uid in vm.orphaned(live_uids): await vm.unmount_pod(uid)   # after a restart

``get(kind, namespace, name)`` is the kubelet's async getter ("configmaps",
"secrets", "persistentvolumeclaims", "persistentvolumes"; None: not found).

Every volume lives at ``<root>/<uid>/volumes/<plugin>/<name>`` with kube's plugin
names (``kubernetes.io~empty-dir``, ``~configmap``, ``~secret``, ``~downward-api``,
``~projected``).  ``emptyDir`` with ``medium: Memory`` is a tmpfs sized as kube
sizes it (the smallest of sizeLimit, the pod's memory limit, the node's
allocatable memory); secret and projected volumes are tmpfs too when running
as root, as in kube, so secrets never reach the disk.  ``hostPath`` and
persistent volumes (a bound PVC's PV: ``hostPath`` or ``local``) are used in
place: nothing of theirs is ever created beyond kube's ``*OrCreate`` types or
removed.  configMap, secret, downwardAPI and projected volumes are written by
kube's AtomicWriter (see atomic_writer.py), so :meth:`update_pod` swaps a new
version in with one rename and running containers see it; a ``subPath``
mount binds the file as resolved at container start, so it keeps its old
content, as in kube.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import stat
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from k8py.kubelet import execute
from k8py.api import quantity
from k8py.kubelet import envvars
from k8py.kubelet.envvars import CreateContainerConfigError
from k8py.kubelet.runtime.interface import Mount
from k8py.kubelet.volumes import podfiles
from k8py.kubelet.volumes.atomic_writer import AtomicWriter, FileProjection, PayloadError

log = logging.getLogger(__name__)

__all__ = [
    "PLUGIN_CONFIGMAP",
    "PLUGIN_DOWNWARD_API",
    "PLUGIN_EMPTY_DIR",
    "PLUGIN_PROJECTED",
    "PLUGIN_SECRET",
    "VolumeError",
    "VolumeManager",
]

Getter = Callable[[str, str, str], Awaitable[dict | None]]

PLUGIN_EMPTY_DIR = "kubernetes.io~empty-dir"
PLUGIN_CONFIGMAP = "kubernetes.io~configmap"
PLUGIN_SECRET = "kubernetes.io~secret"
PLUGIN_DOWNWARD_API = "kubernetes.io~downward-api"
PLUGIN_PROJECTED = "kubernetes.io~projected"

DEFAULT_MODE = 0o644
# volume types whose content the kubelet writes from API objects: re-projected by
# update_pod and always mounted read-only (kube's ReadOnlyAPIDataVolumes)
API_DATA_TYPES = ("configMap", "secret", "downwardAPI", "projected")
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                   "CharDevice", "BlockDevice")


class VolumeError(Exception):
    """A volume could not be set up or torn down.

    ``reason`` is the event reason the kubelet reports: "FailedMount" (the pod
    stays ContainerCreating and the kubelet retries), "FailedUnmount", or
    "CreateContainerConfigError" for a bad volumeMount (subPath) of one container.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class _SetupError(Exception):
    """A volume plugin's error, before it is wrapped in kube's "MountVolume.SetUp failed" text."""


# -- mounts -----------------------------------------------------------------------

def _unescape_mountinfo(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mountpoints() -> list[str]:
    """Every mount point of this process's mount namespace."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return [_unescape_mountinfo(line.split()[4]) for line in f if line.strip()]


def _is_mountpoint(path: str) -> bool:
    return os.path.realpath(path) in set(mountpoints())


async def _run(*argv: str) -> None:
    returncode, out, err = await execute.run(argv)
    if returncode != 0:
        raise _SetupError(f"{' '.join(argv)} failed: exit status {returncode}: "
                          f"{(err or out).decode(errors='replace').strip()}")


async def _mount_tmpfs(path: str, size: int | None) -> None:
    if _is_mountpoint(path):
        return
    opts = f"size={size}" if size else ""
    argv = ["mount", "-t", "tmpfs"] + (["-o", opts] if opts else []) + ["tmpfs", path]
    await _run(*argv)


# -- helpers ----------------------------------------------------------------------

def _set_ownership(path: str, fs_group: int, readonly: bool) -> None:
    """kube's SetVolumeOwnership: group fsGroup, group read(/write) bits, setgid dirs."""
    def change(p: str) -> None:
        st = os.lstat(p)
        os.lchown(p, -1, fs_group)
        if stat.S_ISLNK(st.st_mode):
            return
        mask = 0o440 if readonly else 0o660
        if stat.S_ISDIR(st.st_mode):
            mask |= stat.S_ISGID | 0o110
        os.chmod(p, stat.S_IMODE(st.st_mode) | mask)
    change(path)
    for dirpath, dirs, files in os.walk(path):
        for n in dirs + files:
            change(os.path.join(dirpath, n))


def _fs_group(pod: dict) -> int | None:
    g = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return int(g) if g is not None else None


def _secret_bytes(v: str) -> bytes:
    return base64.b64decode(v)


def _pod_memory_limit(pod: dict) -> int | None:
    """The pod's memory limit as its cgroup gets it: the sum over containers if all
    have one, and at least the largest init container's; None if any is unlimited."""
    spec = pod.get("spec") or {}
    total = 0
    for c in spec.get("containers") or []:
        lim = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if lim is None:
            return None
        total += quantity.parse(lim).value()
    for c in spec.get("initContainers") or []:
        lim = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if lim is None:
            if c.get("restartPolicy") == "Always":
                return None
            continue
        total = max(total, quantity.parse(lim).value())
    return total or None


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


# -- the manager ------------------------------------------------------------------

class VolumeManager:
    """Sets up, refreshes and tears down the volumes of the pods on this node."""

    def __init__(self, root: str, *, node_allocatable: Mapping[str, Any] | None = None,
                 tmpfs: bool | None = None, memory_backed_secrets: bool | None = None) -> None:
        """``tmpfs``: may mount tmpfs (default: when root).  Without it (the process
        runtime, unprivileged) a Memory emptyDir is a plain directory, with a warning,
        and secrets are written to disk.  ``memory_backed_secrets`` defaults to ``tmpfs``."""
        self.root = root
        self.node_allocatable = dict(node_allocatable or {})
        self.tmpfs = (os.geteuid() == 0) if tmpfs is None else tmpfs
        # kube keeps secrets in tmpfs; that needs mount(2), so only as root
        self.memory_backed_secrets = self.tmpfs if memory_backed_secrets is None else memory_backed_secrets
        self._locks: dict[str, asyncio.Lock] = {}

    # -- paths --------------------------------------------------------------------
    def pod_dir(self, uid: str) -> str:
        return os.path.join(self.root, uid)

    def volume_dir(self, uid: str, plugin: str, name: str) -> str:
        return os.path.join(self.root, uid, "volumes", plugin, name)

    def _lock(self, uid: str) -> asyncio.Lock:
        lock = self._locks.get(uid)
        if lock is None:
            lock = self._locks[uid] = asyncio.Lock()
        return lock

    # -- the kubelet's own pod files ----------------------------------------------
    def write_etc_hosts(self, pod: dict, pod_ips: Sequence[str], cluster_domain: str,
                        host_hosts: str = "/etc/hosts") -> str:
        """``<root>/<uid>/etc-hosts`` (kube's managed hosts file); returns the path."""
        return podfiles.write_etc_hosts(self.pod_dir(pod["metadata"]["uid"]), pod, pod_ips,
                                        cluster_domain, host_hosts)

    def write_resolv_conf(self, pod: dict, cluster_dns: Sequence[str], cluster_domain: str,
                          host_resolv: str | None = "/etc/resolv.conf") -> str:
        """``<root>/<uid>/resolv.conf`` for the pod's dnsPolicy/dnsConfig; returns the path."""
        return podfiles.write_resolv_conf(self.pod_dir(pod["metadata"]["uid"]), pod, cluster_dns,
                                          cluster_domain, host_resolv)

    # -- set up -------------------------------------------------------------------
    async def mount_pod(self, pod: dict, get: Getter, *, pod_ip: str = "", host_ip: str = "",
                        node_name: str = "", pod_ips: Sequence[str] | None = None,
                        node_allocatable: Mapping[str, Any] | None = None) -> dict[str, str]:
        """Set up every volume of the pod (idempotent: call it on every sync).

        Returns volume name -> host path.  Raises VolumeError("FailedMount", message)
        with kube's message (``MountVolume.SetUp failed for volume "x" : ...``, or
        ``error processing PVC ns/claim: PVC is not bound``) for the first volume
        that fails; the others are still set up.
        """
        uid = pod["metadata"]["uid"]
        alloc = dict(node_allocatable) if node_allocatable is not None else self.node_allocatable
        async with self._lock(uid):
            for d in (self.pod_dir(uid), os.path.join(self.pod_dir(uid), "volumes"),
                      os.path.join(self.pod_dir(uid), "plugins")):
                os.makedirs(d, mode=0o750, exist_ok=True)
            paths: dict[str, str] = {}
            first: VolumeError | None = None
            for vol in (pod.get("spec") or {}).get("volumes") or []:
                try:
                    paths[vol["name"]] = await self._setup(pod, vol, get, alloc)
                except VolumeError as e:
                    first = first or e
                    log.warning("pod %s: %s", uid, e.message)
            if first is not None:
                raise first
            return paths

    async def update_pod(self, pod: dict, get: Getter, *,
                         node_allocatable: Mapping[str, Any] | None = None, **_: Any) -> list[str]:
        """Re-project the pod's configMap, secret, downwardAPI and projected volumes.

        Swaps a volume's content only when it changed; returns the names of the
        volumes that changed.  A volume whose source is now missing keeps its old
        content (the error is raised after the other volumes were refreshed).
        """
        uid = pod["metadata"]["uid"]
        alloc = dict(node_allocatable) if node_allocatable is not None else self.node_allocatable
        changed: list[str] = []
        first: VolumeError | None = None
        async with self._lock(uid):
            for vol in (pod.get("spec") or {}).get("volumes") or []:
                if not any(vol.get(t) is not None for t in API_DATA_TYPES):
                    continue
                try:
                    if await self._setup_api_data(pod, vol, get, alloc):
                        changed.append(vol["name"])
                except VolumeError as e:
                    first = first or e
        if first is not None:
            raise first
        return changed

    async def _setup(self, pod: dict, vol: dict, get: Getter, alloc: Mapping[str, Any]) -> str:
        name = vol["name"]
        uid = pod["metadata"]["uid"]
        try:
            if vol.get("persistentVolumeClaim") is not None or vol.get("ephemeral") is not None:
                return await self._pvc_path(pod, vol, get)
            if vol.get("emptyDir") is not None:
                return await self._setup_empty_dir(pod, vol, alloc)
            if vol.get("hostPath") is not None:
                hp = vol["hostPath"]
                await asyncio.to_thread(check_host_path, hp.get("path", ""), hp.get("type") or "")
                return hp.get("path", "")
            if any(vol.get(t) is not None for t in API_DATA_TYPES):
                await self._setup_api_data(pod, vol, get, alloc)
                return self.volume_dir(uid, _plugin(vol), name)
            kinds = [k for k in vol if k != "name"]
            raise _SetupError(f"no volume plugin in k8py for {kinds[0] if kinds else 'an empty volume source'}")
        except VolumeError:
            raise
        except (_SetupError, OSError, PayloadError, CreateContainerConfigError) as e:
            raise VolumeError("FailedMount", f'MountVolume.SetUp failed for volume "{name}" : {e}') from e

    async def _setup_empty_dir(self, pod: dict, vol: dict, alloc: Mapping[str, Any]) -> str:
        ed = vol["emptyDir"] or {}
        medium = ed.get("medium") or ""
        path = self.volume_dir(pod["metadata"]["uid"], PLUGIN_EMPTY_DIR, vol["name"])
        if medium not in ("", "Memory"):
            raise _SetupError(f"k8py does not support emptyDir medium {medium}")
        os.makedirs(path, mode=0o750, exist_ok=True)
        if medium == "Memory":
            if self.tmpfs:
                await _mount_tmpfs(path, self._memory_size(pod, ed, alloc))
            else:
                log.warning("pod %s: emptyDir %s with medium Memory is a plain directory: "
                            "this kubelet cannot mount tmpfs", pod["metadata"].get("uid"), vol["name"])
        os.chmod(path, 0o777)
        gid = _fs_group(pod)
        if gid is not None:
            await asyncio.to_thread(_set_ownership, path, gid, False)
        return path

    @staticmethod
    def _memory_size(pod: dict, ed: dict, alloc: Mapping[str, Any]) -> int | None:
        """kube's calculateEmptyDirMemorySize (SizeMemoryBackedVolumes)."""
        size = quantity.parse(alloc["memory"]).value() if alloc.get("memory") is not None else None
        pod_limit = _pod_memory_limit(pod)
        if pod_limit and (size is None or pod_limit <= size):
            size = pod_limit
        if ed.get("sizeLimit") is not None:
            limit = quantity.parse(ed["sizeLimit"]).value()
            if limit > 0 and (size is None or limit <= size):
                size = limit
        return size

    async def _setup_api_data(self, pod: dict, vol: dict, get: Getter, alloc: Mapping[str, Any]) -> bool:
        name = vol["name"]
        uid = pod["metadata"]["uid"]
        plugin = _plugin(vol)
        path = self.volume_dir(uid, plugin, name)
        try:
            payload = await self._payload(pod, vol, get, alloc)
            os.makedirs(path, mode=0o750, exist_ok=True)
            if plugin in (PLUGIN_SECRET, PLUGIN_PROJECTED) and self.memory_backed_secrets:
                await _mount_tmpfs(path, None)
            os.chmod(path, 0o777)
            gid = _fs_group(pod)
            set_perms = (lambda _ts: _set_ownership(path, gid, True)) if gid is not None else None
            return await asyncio.to_thread(AtomicWriter(path).write, payload, set_perms)
        except VolumeError:
            raise
        except (_SetupError, OSError, PayloadError, CreateContainerConfigError) as e:
            raise VolumeError("FailedMount", f'MountVolume.SetUp failed for volume "{name}" : {e}') from e

    async def _payload(self, pod: dict, vol: dict, get: Getter, alloc: Mapping[str, Any]) -> dict[str, FileProjection]:
        ns = pod["metadata"].get("namespace", "default")
        if vol.get("configMap") is not None:
            src = vol["configMap"]
            return await _configmap_payload(src, ns, get, _mode(src.get("defaultMode")))
        if vol.get("secret") is not None:
            src = vol["secret"]
            return await _secret_payload(src, ns, get, _mode(src.get("defaultMode")), src.get("secretName", ""))
        if vol.get("downwardAPI") is not None:
            src = vol["downwardAPI"]
            return _downward_payload(pod, src.get("items") or [], _mode(src.get("defaultMode")), alloc)
        src = vol["projected"] or {}
        default_mode = _mode(src.get("defaultMode"))
        payload: dict[str, FileProjection] = {}
        errors: list[str] = []
        for s in src.get("sources") or []:
            try:
                if s.get("configMap") is not None:
                    payload.update(await _configmap_payload(s["configMap"], ns, get, default_mode))
                elif s.get("secret") is not None:
                    payload.update(await _secret_payload(s["secret"], ns, get, default_mode,
                                                         s["secret"].get("name", "")))
                elif s.get("downwardAPI") is not None:
                    payload.update(_downward_payload(pod, s["downwardAPI"].get("items") or [],
                                                     default_mode, alloc))
                elif s.get("serviceAccountToken") is not None:
                    # TODO(k8py): needs the TokenRequest API (serviceaccounts/token), which the
                    # API server does not serve yet; the token file is left out until it does.
                    log.info("pod %s: projected serviceAccountToken not supported yet; skipped",
                             pod["metadata"].get("uid"))
                # clusterTrustBundle and podCertificate sources are alpha/beta in kube: skipped
            except _SetupError as e:
                errors.append(str(e))
        if errors:
            raise _SetupError(", ".join(errors) if len(errors) > 1 else errors[0])
        return payload

    async def _pvc_path(self, pod: dict, vol: dict, get: Getter) -> str:
        ns = pod["metadata"].get("namespace", "default")
        if vol.get("ephemeral") is not None:
            claim = f'{pod["metadata"]["name"]}-{vol["name"]}'
        else:
            claim = vol["persistentVolumeClaim"].get("claimName", "")

        def fail(msg: str) -> VolumeError:
            return VolumeError("FailedMount", f"error processing PVC {ns}/{claim}: {msg}")

        pvc = await get("persistentvolumeclaims", ns, claim)
        if pvc is None:
            raise fail(f'failed to fetch PVC from API server: persistentvolumeclaims "{claim}" not found')
        if (pvc.get("metadata") or {}).get("deletionTimestamp"):
            raise VolumeError("FailedMount", f"can't start pod because PVC {ns}/{claim} is being deleted")
        if vol.get("ephemeral") is not None:
            owners = (pvc.get("metadata") or {}).get("ownerReferences") or []
            if not any(o.get("uid") == pod["metadata"]["uid"] and o.get("controller") for o in owners):
                raise fail(f"PVC {ns}/{claim} was not created for the pod")
        if (pvc.get("status") or {}).get("phase") != "Bound":
            raise fail("PVC is not bound")
        pv_name = (pvc.get("spec") or {}).get("volumeName") or ""
        if not pv_name:
            raise fail("PVC has empty pvc.Spec.VolumeName")
        pv = await get("persistentvolumes", "", pv_name)
        if pv is None:
            raise fail(f'failed to fetch PV {pv_name} from API server: persistentvolumes "{pv_name}" not found')
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref is None:
            raise fail(f"found PV object {pv_name} but it has a nil pv.Spec.ClaimRef "
                       "indicating it is not yet bound to the claim")
        pvc_uid = (pvc.get("metadata") or {}).get("uid", "")
        if ref.get("uid") != pvc_uid:
            raise fail(f"found PV object {pv_name} but its pv.Spec.ClaimRef.UID {ref.get('uid')} "
                       f"does not point to claim.UID {pvc_uid}")
        spec = pv.get("spec") or {}
        try:
            if spec.get("volumeMode") == "Block":
                raise _SetupError(f"k8py does not support block volumes (PV {pv_name})")
            if spec.get("hostPath") is not None:
                hp = spec["hostPath"]
                await asyncio.to_thread(check_host_path, hp.get("path", ""), hp.get("type") or "")
                return hp.get("path", "")
            if spec.get("local") is not None:
                p = spec["local"].get("path", "")
                if not os.path.exists(p):
                    raise _SetupError(f"path {p!r} does not exist")
                return p
            kinds = [k for k in ("nfs", "csi", "iscsi", "rbd", "cephfs", "fc") if k in spec]
            raise _SetupError(f"no volume plugin in k8py for PV {pv_name}"
                              + (f" ({kinds[0]})" if kinds else ""))
        except (_SetupError, OSError) as e:
            raise VolumeError("FailedMount", f'MountVolume.SetUp failed for volume "{pv_name}" : {e}') from e

    # -- container mounts -----------------------------------------------------------
    def mounts_for(self, pod: dict, container: dict, volume_paths: Mapping[str, str],
                   env: Iterable[tuple[str, str]] = ()) -> list[Mount]:
        """The container's volumeMounts as runtime Mounts (kube's makeMounts).

        ``readOnly`` from the mount, and always for configMap, secret, downwardAPI and
        projected volumes and for PVCs with readOnly.  ``subPath`` (or ``subPathExpr``
        expanded with the container's ``env``) is made inside the volume if missing,
        with the volume directory's mode, and must resolve inside the volume; the
        resolved path is what is bound.  Errors: VolumeError("CreateContainerConfigError", ...).
        """
        vols = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
        env_map = dict(env)
        out: list[Mount] = []
        cname = container.get("name", "")
        for vm in container.get("volumeMounts") or []:
            name = vm.get("name", "")
            if name not in volume_paths:
                raise VolumeError("CreateContainerConfigError",
                                  f'cannot find volume "{name}" to mount into container "{cname}"')
            host = volume_paths[name]
            vol = vols.get(name, {})
            readonly = bool(vm.get("readOnly")) or any(vol.get(t) is not None for t in API_DATA_TYPES) \
                or bool((vol.get("persistentVolumeClaim") or {}).get("readOnly"))
            sub = vm.get("subPath") or ""
            if vm.get("subPathExpr"):
                missing: set[str] = set()

                def lookup(key: str) -> str:
                    val = env_map.get(key, "")
                    if not val:
                        missing.add(key)
                    return val
                sub = envvars.expand(vm["subPathExpr"], lookup)
                if missing:
                    raise VolumeError("CreateContainerConfigError",
                                      f"missing value for {', '.join(sorted(missing))}")
            if sub:
                host = self._subpath(host, sub)
            out.append(Mount(container_path=vm.get("mountPath", ""), host_path=host, readonly=readonly))
        return out

    @staticmethod
    def _subpath(volume_path: str, sub: str) -> str:
        if os.path.isabs(sub):
            raise VolumeError("CreateContainerConfigError", f"error SubPath `{sub}` must not be an absolute path")
        if ".." in sub.split("/"):
            raise VolumeError("CreateContainerConfigError",
                              f"unable to provision SubPath `{sub}`: must not contain '..'")
        full = os.path.join(volume_path, sub)
        base = os.path.realpath(volume_path)
        try:
            if not os.path.lexists(full):
                # made now, with the volume's mode, so that it does not appear later
                # root-owned 0755 when the runtime creates the mount point
                mode = stat.S_IMODE(os.stat(volume_path).st_mode)
                parent = os.path.realpath(os.path.dirname(full))
                if not _within(parent, base):
                    raise VolumeError("CreateContainerConfigError",
                                      f'subpath "{full}" not within volume path "{base}"')
                os.makedirs(full, exist_ok=True)
                os.chmod(full, mode)
        except OSError as e:
            raise VolumeError("CreateContainerConfigError",
                              f"failed to create subPath directory for volumeMount: {e}") from e
        real = os.path.realpath(full)
        if not _within(real, base):
            raise VolumeError("CreateContainerConfigError", f'subpath "{real}" not within volume path "{base}"')
        return real

    # -- tear down ------------------------------------------------------------------
    async def unmount_pod(self, uid: str, *, remove_pod_dir: bool = True) -> None:
        """Unmount the pod's tmpfs (and any other mount under its directory) and remove
        its volume directories (the whole pod directory with ``remove_pod_dir``).

        hostPath and PV content is never touched: those are used in place, never
        under the pod's directory.  Raises VolumeError("FailedUnmount") if a mount
        cannot be removed; then nothing is deleted.
        """
        pod_dir = os.path.realpath(self.pod_dir(uid))
        async with self._lock(uid):
            if not os.path.isdir(pod_dir):
                self._locks.pop(uid, None)
                return
            for mp in sorted((m for m in mountpoints() if _within(m, pod_dir)), key=len, reverse=True):
                try:
                    await _run("umount", mp)
                except _SetupError as e:
                    raise VolumeError("FailedUnmount", f"UnmountVolume.TearDown failed: {e}") from e
            left = [m for m in mountpoints() if _within(m, pod_dir)]
            if left:
                raise VolumeError("FailedUnmount", f"still mounted under {pod_dir}: {', '.join(left)}")
            target = pod_dir if remove_pod_dir else os.path.join(pod_dir, "volumes")
            await asyncio.to_thread(shutil.rmtree, target, True)
        self._locks.pop(uid, None)

    def orphaned(self, uids_known: Iterable[str]) -> list[str]:
        """Pod directories under the root whose pod the kubelet no longer has."""
        known = set(uids_known)
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n not in known and os.path.isdir(os.path.join(self.root, n)))


# -- payloads ----------------------------------------------------------------------

def _plugin(vol: dict) -> str:
    if vol.get("configMap") is not None:
        return PLUGIN_CONFIGMAP
    if vol.get("secret") is not None:
        return PLUGIN_SECRET
    if vol.get("downwardAPI") is not None:
        return PLUGIN_DOWNWARD_API
    return PLUGIN_PROJECTED


def _mode(m: int | None) -> int:
    return DEFAULT_MODE if m is None else int(m)


def _items_payload(items: list[dict], data: Mapping[str, bytes], default_mode: int, optional: bool,
                   missing_msg: str) -> dict[str, FileProjection]:
    """kube's configmap/secret MakePayload: every key, or only the listed items."""
    payload: dict[str, FileProjection] = {}
    if not items:
        for k, v in data.items():
            payload[k] = FileProjection(v, default_mode)
        return payload
    for it in items:
        key = it.get("key", "")
        if key not in data:
            if optional:
                continue
            raise _SetupError(f"{missing_msg}: {key}")
        mode = it.get("mode")
        payload[it.get("path", key)] = FileProjection(data[key], default_mode if mode is None else int(mode))
    return payload


async def _configmap_payload(src: dict, ns: str, get: Getter, default_mode: int) -> dict[str, FileProjection]:
    name = src.get("name", "")
    optional = bool(src.get("optional"))
    cm = await get("configmaps", ns, name)
    if cm is None:
        if not optional:
            raise _SetupError(f'configmap "{name}" not found')
        cm = {}
    data: dict[str, bytes] = {k: v.encode("utf-8", "surrogateescape") for k, v in (cm.get("data") or {}).items()}
    for k, v in (cm.get("binaryData") or {}).items():
        data[k] = _secret_bytes(v)
    return _items_payload(src.get("items") or [], data, default_mode, optional,
                          "configmap references non-existent config key")


async def _secret_payload(src: dict, ns: str, get: Getter, default_mode: int,
                          name: str) -> dict[str, FileProjection]:
    optional = bool(src.get("optional"))
    sec = await get("secrets", ns, name)
    if sec is None:
        if not optional:
            raise _SetupError(f'secret "{name}" not found')
        sec = {}
    data = {k: _secret_bytes(v) for k, v in (sec.get("data") or {}).items()}
    for k, v in (sec.get("stringData") or {}).items():      # only if a caller hands an unconverted object
        data[k] = v.encode()
    return _items_payload(src.get("items") or [], data, default_mode, optional,
                          "references non-existent secret key")


def _downward_payload(pod: dict, items: list[dict], default_mode: int,
                      alloc: Mapping[str, Any]) -> dict[str, FileProjection]:
    payload: dict[str, FileProjection] = {}
    errors: list[str] = []
    for it in items:
        path = os.path.normpath(it.get("path", ""))
        mode = default_mode if it.get("mode") is None else int(it["mode"])
        try:
            if it.get("fieldRef") is not None:
                value = envvars.metadata_field_value(pod, it["fieldRef"].get("fieldPath", ""))
            elif it.get("resourceFieldRef") is not None:
                value = envvars.container_resource_value(it["resourceFieldRef"], pod, None, alloc)
            else:
                value = ""
        except CreateContainerConfigError as e:
            errors.append(str(e))
            continue
        payload[path] = FileProjection(value.encode("utf-8", "surrogateescape"), mode)
    if errors:
        raise _SetupError(", ".join(errors))
    return payload


# -- hostPath ------------------------------------------------------------------------

def check_host_path(path: str, type_: str) -> None:
    """kube's hostPath type check (makes the *OrCreate kinds); raises _SetupError."""
    def exists() -> bool:
        return os.path.exists(path)

    def mode() -> int | None:
        try:
            return os.stat(path).st_mode
        except OSError:
            return None

    if type_ == "":
        return
    if type_ not in HOST_PATH_TYPES:
        raise _SetupError(f"{type_} is an invalid volume type")
    if type_ == "DirectoryOrCreate" and not exists():
        os.makedirs(path, mode=0o755, exist_ok=True)
        return
    if type_ in ("DirectoryOrCreate", "Directory"):
        m = mode()
        if m is None or not stat.S_ISDIR(m):
            raise _SetupError(f"hostPath type check failed: {path} is not a directory")
        return
    if type_ == "FileOrCreate" and not exists():
        fd = os.open(path, os.O_CREAT | os.O_RDONLY, 0o644)
        os.close(fd)
        return
    m = mode()
    checks = {
        "FileOrCreate": (lambda: m is not None and not stat.S_ISDIR(m), "a file"),
        "File": (lambda: m is not None and not stat.S_ISDIR(m), "a file"),
        "Socket": (lambda: m is not None and stat.S_ISSOCK(m), "a socket file"),
        "CharDevice": (lambda: m is not None and stat.S_ISCHR(m), "a character device"),
        "BlockDevice": (lambda: m is not None and stat.S_ISBLK(m), "a block device"),
    }
    ok, what = checks[type_]
    if not ok():
        raise _SetupError(f"hostPath type check failed: {path} is not {what}")
